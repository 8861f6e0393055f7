"""Bad input gives one clear message naming the item, field or file; the item fails, the run goes on.

Exit codes: 1 = the run completed with failed items, 2 = the run could not start.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import image_responder, make_images, model, png_header_only, write_config, write_manifest
from test_images import rgba16_png
from vlmpipe.app.cli import app
from vlmpipe.core.images import ImageError, prepare_image


def _url_in(body: dict[str, Any]) -> str | None:
    for msg in body.get("messages", []):
        for part in msg.get("content") if isinstance(msg.get("content"), list) else []:
            url = (part.get("image_url") or {}).get("url", "")
            if url.startswith("http"):
                return url
    return None


def _behaviour(index: int, body: dict[str, Any]) -> Behavior:
    url = _url_in(body)
    if url:  # like OpenAI: a URL the server cannot download is a 400 naming it
        return Behavior("status", status=400, text=f"Error while downloading {url}: 404 Not Found")
    return Behavior()


def test_bad_items_fail_alone_with_clear_messages_and_the_run_completes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 1, prefix="good")
    (data / "rgba16.jpg").write_bytes(rgba16_png())  # a 16-bit RGBA PNG named .jpg must just work
    good = data / "good_0.png"
    (data / "corrupt.png").write_bytes(good.read_bytes()[:60])
    (data / "zero.png").write_bytes(b"")
    (data / "notes.jpg").write_text("this is a text file, not a screenshot")
    (data / "huge.png").write_bytes(png_header_only(20000, 20000))
    (data / "drawing.png").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    rows: list[dict[str, Any] | str] = [
        {"id": "good", "image": "good_0.png"},
        {"id": "rgba16", "image": "rgba16.jpg"},
        {"id": "corrupt", "image": "corrupt.png"},
        {"id": "zero", "image": "zero.png"},
        {"id": "notes", "image": "notes.jpg"},
        {"id": "huge", "image": "huge.png"},
        {"id": "svg", "image": "drawing.png"},
        {"id": "good", "image": "rgba16.jpg"},
        {"id": "noimage"},
        {"id": "badfacts", "image": "good_0.png", "facts": 5},
        {"id": "escape", "image": "../../etc/passwd"},
        {"id": "missing", "image": "nowhere.png"},
        '{"id": "broken", ',
        {"id": "remote", "image": "http://127.0.0.1:9/missing.png"},
    ]
    write_manifest(data, rows)
    with FakeOpenAIServer(responder=image_responder, behavior_fn=_behaviour) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)],
                           dataset={"path": str(data), "manifest": str(data / "manifest.jsonl")})
        result = CliRunner().invoke(app, ["run", str(cfg), "--quiet"])
    assert result.exit_code == 1, result.output
    run = tmp_path / "runs" / "r"
    gens = {g["item"]: g for g in _csv(run / "report" / "generations.csv")}
    # every manifest row is an item with exactly one generation row: nothing silently dropped
    assert len(gens) == len(rows)
    assert gens["good"]["error"] == "" and gens["good"]["text"].startswith("Здравствуйте")
    assert gens["rgba16"]["error"] == "" and gens["rgba16"]["text"]
    expected = {
        "corrupt": "corrupt.png: corrupt or truncated image",
        "zero": "zero.png: empty file (0 bytes)",
        "notes": "notes.jpg: not a recognised image",
        "huge": "huge.png: image too large: Image size (400000000 pixels) exceeds limit",
        "svg": "drawing.png: not a recognised image",
        "good@row-8": "manifest.jsonl: row 8: duplicate id 'good' (first used in row 1)",
        "noimage": "manifest.jsonl: row 9: field image: Field required",
        "badfacts": "manifest.jsonl: row 10: field facts: Input should be a valid list",
        "escape": "../../etc/passwd: image path '../../etc/passwd' points outside the dataset folder",
        "missing": "nowhere.png: image file not found: nowhere.png",
        "row-13": "manifest.jsonl: row 13: not valid JSON",
        "remote": "HTTP 400: Error while downloading http://127.0.0.1:9/missing.png: 404 Not Found",
    }
    for item, message in expected.items():
        assert gens[item]["error"].startswith(message), (item, gens[item]["error"])
    assert {gens[i]["error_kind"] for i in expected} == {"image", "http_400"}
    summary = json.loads((run / "report" / "summary.json").read_text())
    assert summary["run"]["items"] == 14 and summary["run"]["items_failed"] == 11  # all but good/rgba16/remote
    assert summary["models"]["m"]["n_errors"] == 12 and summary["models"]["m"]["n"] == 14
    # the only request sent for a failed item is the URL one; bad local files never reach the server
    assert len(srv.requests) == 3  # good, rgba16 and the URL item (a 400 is not retried)


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_decompression_bomb_is_refused_from_the_header_without_decoding() -> None:
    bomb = png_header_only(20000, 20000)
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match=r"image too large: Image size \(400000000 pixels\) exceeds limit"):
            prepare_image(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # decoding would need 1.2 GB; the header check allocates almost nothing


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"modles": []}, "modles: unknown key"),
        ({"[/bold]": 1}, "[/bold]: unknown key"),  # user text in the message is not console markup
        ({"repeats": "many"}, "repeats: Input should be a valid integer"),
        ({"models": [{"name": "m", "temperature": "hot"}]}, "models.0.temperature: Input should be a valid number"),
        # found before any request is sent (it was found by the score stage, after every generation)
        ({"metrics": {"enabled": ["chrf", "bleu"]}}, "metrics.enabled: unknown metric(s) ['bleu']"),
        ({"metrics": {"settings": {"bluert": {"checkpoint": "/m"}}}}, "metrics.settings: unknown metric(s) ['bluert']"),
        # an old skeleton key that nothing reads: a value there would silently do nothing (`serving: {}` still loads)
        ({"serving": {"gpu_memory_utilization": 0.5}}, "serving: Value error, a top-level serving section is not "
                                                       "read: how a model is served goes in its own models[i].launch"),
        # the config's own mistake comes before what the environment lacks (the key was named first, so a user
        # exported a variable only to learn that the task name was wrong)
        ({"task": "vqaa", "models": [model("m", "http://127.0.0.1:9/v1", api_key_env="VLMPIPE_TEST_UNSET_KEY")]},
         "task: unknown task 'vqaa'; known: request, vqa"),
    ],
)
def test_bad_config_cannot_start_and_names_the_field(tmp_path: Path, config: dict[str, Any], message: str) -> None:
    data = tmp_path / "data"
    make_images(data, 1)
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    doc = yaml.safe_load(path.read_text()) | config
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2
    assert f"{path}: {message}" in " ".join(result.stderr.split())
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_empty_dataset_and_missing_manifest_cannot_start(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2 and f"{data}: the dataset has no items" in " ".join(result.stderr.split())
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")],
                        dataset={"path": str(data), "manifest": str(data / "m.jsonl")})
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2 and "m.jsonl: manifest not found" in " ".join(result.stderr.split())


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_dataset_that_cannot_be_used_leaves_no_run_directory(tmp_path: Path, command: str) -> None:
    """Exit code 2 means nothing was started: no run directory, config copy or empty store is left behind."""
    empty = tmp_path / "empty"
    empty.mkdir()
    shots = tmp_path / "shots"
    make_images(shots, 2)
    study = shots / "qa.csv"  # the study's column names; every row has a question
    study.write_text("File_name,Question,Answer\nshot_0.png,Где кнопка?,Внизу.\nshot_1.png,Что за ошибка?,05.\n",
                     encoding="utf-8")
    mapped = {"image": "File_name", "reference": "Answer"}
    cases = {
        "missing folder": (tmp_path / "nowhere", None, {}, "nowhere: dataset folder not found"),
        "empty folder": (empty, None, {}, "empty: the dataset has no items"),
        "missing manifest": (empty, empty / "m.jsonl", {}, "m.jsonl: manifest not found"),
        # a mistyped column mapping, and a VQA run whose question column is not mapped: one error each, not a
        # failed item per row
        "mistyped column": (shots, study, {"columns": {**mapped, "question": "Questoin"}},
                            "qa.csv: dataset.columns.question names the column 'Questoin', which this manifest does "
                            "not have; did you mean 'Question'?"),
        "no question": (shots, study, {"columns": mapped, "task": "vqa"},
                        "qa.csv: task vqa needs a question per item, and none of the 2 usable item(s) has one; name "
                        "the manifest's column 'question', or map it: dataset.columns: {question: <column>}"),
    }
    for data, manifest, extra, message in cases.values():
        dataset = {"path": str(data)} | ({"manifest": str(manifest)} if manifest else {})
        dataset |= {"columns": extra["columns"]} if "columns" in extra else {}
        task = {"task": extra["task"]} if "task" in extra else {}
        path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")], dataset=dataset, **task)
        result = CliRunner().invoke(app, [command, str(path), "--quiet"])
        assert result.exit_code == 2 and message in " ".join(result.stderr.split())
        assert not (tmp_path / "runs").exists()


def test_a_run_directory_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    """A file where the run directory should go: exit 2 and one line naming it, not a traceback."""
    data = tmp_path / "data"
    make_images(data, 1)
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (f"{path}: output_dir: cannot write the run directory {blocker / 'r'}: a file is in the way"
            in " ".join(result.stderr.split()))
    result = CliRunner().invoke(app, ["demo", "--out", str(blocker), "--quiet"])
    assert result.exit_code == 2
    assert f"--out {blocker}: cannot create the folder: a file is in the way" in " ".join(result.stderr.split())


def test_a_store_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 1)
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    write_config(run_dir / "config.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    (run_dir / "run.sqlite").write_text("not a database")
    for command in ("report", "score"):
        result = CliRunner().invoke(app, [command, str(run_dir)])
        assert result.exit_code == 2, result.output  # was a sqlite3.DatabaseError traceback
        assert (f"{run_dir / 'run.sqlite'}: cannot be read as the run's store (file is not a database)"
                in " ".join(result.stderr.split()))


def test_a_folder_with_a_config_but_no_store_is_not_a_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 1)
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    write_config(folder / "config.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    for command in ("report", "score", "judge"):
        result = CliRunner().invoke(app, [command, str(folder)])
        assert result.exit_code == 2, result.output
        if command != "judge":  # judge first says the config has no judge
            assert (f"{folder / 'run.sqlite'}: not found; {folder} is not a run directory"
                    in " ".join(result.stderr.split()))
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]  # no empty store left behind


def test_config_and_manifest_saved_as_windows_1251_are_clear_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 1)
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")])
    path.write_bytes((path.read_text(encoding="utf-8") + "system_prompt: Привет\n").encode("cp1251"))
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2  # was a UnicodeDecodeError traceback
    assert f"{path}: not UTF-8 text (invalid continuation byte at byte" in " ".join(result.stderr.split())
    manifest = data / "m.jsonl"
    manifest.write_bytes('{"id": "a", "image": "img_0.png", "reference": "Привет"}\n'.encode("cp1251"))  # byte 48: "П"
    path = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")],
                        dataset={"path": str(data), "manifest": str(manifest)})
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 2
    assert f"{manifest}: not UTF-8 text (invalid continuation byte at byte 48); save the manifest as UTF-8" in " ".join(
        result.stderr.split())
    assert not (tmp_path / "runs").exists()


def test_a_vqa_row_without_a_question_fails_alone(tmp_path: Path) -> None:
    """Among rows that have a question, one without fails alone, naming its file and row; the run completes (exit
    1: completed, with failed items). The OCR baseline answers, so no server is needed."""
    shots = tmp_path / "shots"
    make_images(shots, 2)
    (shots / "qa.csv").write_text("image,question,reference\nshot_0.png,Где кнопка?,Внизу.\nshot_1.png,,05.\n",
                                  encoding="utf-8")
    path = write_config(tmp_path / "c.yaml", shots, [{"name": "ocr", "provider": "ocr"}], task="vqa",
                        dataset={"path": str(shots), "manifest": str(shots / "qa.csv")})
    result = CliRunner().invoke(app, ["run", str(path), "--quiet"])
    assert result.exit_code == 1, result.output
    summary = json.loads((tmp_path / "runs" / "r" / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["run"]["items"] == 2 and summary["run"]["items_failed"] == 1
    assert summary["models"]["ocr"]["n"] == 2 and summary["models"]["ocr"]["n_errors"] == 1
    log = (tmp_path / "runs" / "r" / "logs" / "run.log").read_text(encoding="utf-8")
    assert "item shot_1.png#1: no question (task vqa needs it)" in log
