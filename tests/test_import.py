"""`vlmpipe import`: the original xlsx layout and any table, then score and report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import summary_json
from vlmpipe.app.cli import app
from vlmpipe.app.pipeline import open_store, score
from vlmpipe.stages.importers import ImportDataError
from vlmpipe.stages.importers.original import import_original
from vlmpipe.stages.importers.table import import_table, parse_mapping

runner = CliRunner()
REF = "Здравствуйте! Заказ 02632305-0222 на 3 270 ₽ отменили 23 октября. Почему?"


def write_original(folder: Path) -> None:
    folder.mkdir()
    texts = ['"Мой заказ 02632305-0222 отменили 23 октября"', "Заказ на 3 270 ₽ отменили",
             "Hello, my order was cancelled", "Заказ 02632305-0222 отменили"]
    summary = pd.DataFrame({
        "model_name": ["A", "A", "B", "B"], "Image": ["test_1"] * 4, "Temperature": [0.1] * 4,
        "candidate": texts, "Time Taken (sec)": [1.0, 0.5, 2.0, 61.6],
        "Text Length (char)": [len(t) for t in texts], "Chars/sec": [round(len(t) / s, 1) for t, s in
                                                                     zip(texts, [1.0, 0.5, 2.0, 61.6], strict=True)],
        "Errors (cnt)": [0, 0, 1, 0], "Error Words": ["[]", "[]", "['Hello']", "[]"],
        "Non cyrillic and non latin chars (cnt)": [0] * 4, "Perplexity": [10.5, 20.0, 99.0, 12.0],
    })
    summary.to_excel(folder / "summary_test_stats.xlsx", index=False)
    auto = pd.DataFrame({"Image": ["test_1"] * 4, "model_name": ["A", "A", "B", "B"], "candidate": texts,
                         "reference": [REF] * 4, "rouge1": [0.5, 0.4, 0.0, 0.6], "rouge2": [0.1] * 4,
                         "rougeL": [0.3] * 4, "bleurt": [0.7, 0.6, 0.2, 0.65]})
    auto.to_excel(folder / "auto_metrics_stats.xlsx", index=False)


def test_import_original_then_score(tmp_path: Path) -> None:
    res = tmp_path / "res"
    write_original(res)
    images = tmp_path / "shots"
    images.mkdir()
    run_dir = import_original(res, images, tmp_path / "run")
    with open_store(run_dir) as store:
        gens = store.generations()
        assert [(g["model"], g["item"], g["repeat"], g["latency_s"]) for g in gens] == [
            ("A", "test_1", 0, 1.0), ("A", "test_1", 1, 0.5), ("B", "test_1", 0, 2.0), ("B", "test_1", 1, 61.6)]
        assert gens[0]["text"].startswith('"')  # kept exactly as recorded
        assert store.items()[0]["reference"] == REF
        recorded = store.scores()[gens[2]["key"]]
        assert recorded["recorded_spelling_errors"] == (1.0, ["Hello"])
        assert recorded["recorded_bleurt"] == (0.2, None)
        assert recorded["recorded_perplexity"] == (99.0, None)
    result = score(run_dir, show_progress=False)
    a, b = summary_json(result)["models"]["A"], summary_json(result)["models"]["B"]
    assert summary_json(result)["run"]["repeats"] == 2
    assert a["latency_s"]["mean"] == pytest.approx(0.75)
    # chars/s per generation = length / recorded (rounded) time, then the mean: as the original computed it.
    t0, t1 = (g["text"] for g in gens[:2])
    assert (len(t0), len(t1)) == (45, 25)
    assert a["chars_per_s_mean"] == pytest.approx((45 / 1.0 + 25 / 0.5) / 2)
    assert b["off_language_rate"] == 0.5 and a["off_language_rate"] == 0.0
    assert a["rouge1_f_mean"] > 0 and a["fact_recall_mean"] > 0
    csv = (run_dir / "report" / "generations.csv").read_text(encoding="utf-8")
    header = csv.splitlines()[0].split(",")
    for col in ("rouge1_f", "chrf", "spelling_errors", "language", "fact_recall", "hallucinated_numbers",
                "recorded_rouge1", "recorded_bleurt"):
        assert col in header


def test_import_original_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ImportDataError, match="not found"):
        import_original(tmp_path / "nope", None, tmp_path / "run")
    (tmp_path / "res").mkdir()
    pd.DataFrame({"model_name": ["A"], "Image": ["x"]}).to_excel(tmp_path / "res" / "summary_test_stats.xlsx")
    with pytest.raises(ImportDataError, match="missing column"):
        import_original(tmp_path / "res", None, tmp_path / "run")


def test_import_table_jsonl_with_mapping(tmp_path: Path) -> None:
    src = tmp_path / "gens.jsonl"
    lines = [{"who": "m1", "answer": "Заказ 02632305-0222 отменили", "shot": "a.png", "secs": 2.0, "ref": REF,
              "my_score": 0.5},
             {"who": "m1", "answer": "Заказ отменили", "shot": "a.png", "secs": 1.0, "ref": REF, "my_score": 0.25}]
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    mapping = parse_mapping(["model=who", "text=answer", "image=shot", "latency_s=secs", "reference=ref"])
    run_dir = import_table(src, tmp_path / "run", mapping=mapping)
    with open_store(run_dir) as store:
        gens = store.generations()
        assert [(g["item"], g["repeat"], g["latency_s"]) for g in gens] == [("a", 0, 2.0), ("a", 1, 1.0)]
        assert store.scores()[gens[1]["key"]]["recorded_my_score"] == (0.25, None)
    result = score(run_dir, show_progress=False)
    assert summary_json(result)["models"]["m1"]["rouge1_f_mean"] > 0


def test_table_errors_name_the_columns(tmp_path: Path) -> None:
    src = tmp_path / "g.csv"
    src.write_text("model_name,candidate\nm,текст\n", encoding="utf-8")
    with pytest.raises(ImportDataError, match=r"required column\(s\) missing: model \(from column 'model'\), text"):
        import_table(src, tmp_path / "run")
    with pytest.raises(ImportDataError, match="unknown column"):
        parse_mapping(["txt=candidate"])
    run_dir = import_table(src, tmp_path / "run", mapping=parse_mapping(["text=candidate", "model=model_name"]))
    with pytest.raises(ImportDataError, match="already holds a run"):
        import_table(src, run_dir, mapping=parse_mapping(["text=candidate", "model=model_name"]))


def test_cli_import_exit_codes(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["import", "--format", "original", "--results", str(tmp_path / "none"),
                              "--out", str(tmp_path / "run")])
    assert bad.exit_code == 2
    assert "results folder not found" in " ".join(bad.output.split())
    assert runner.invoke(app, ["import", "--format", "xml", "--results", str(tmp_path),
                               "--out", str(tmp_path / "r")]).exit_code == 2
    src = tmp_path / "g.csv"
    src.write_text("model_name,candidate,time\nm,Заказ отменили,1.5\n", encoding="utf-8")
    ok = runner.invoke(app, ["import", "--format", "table", "--results", str(src), "--map", "text=candidate",
                             "--map", "model=model_name", "--map", "latency_s=time", "--out", str(tmp_path / "run")])
    assert ok.exit_code == 0, ok.output
    rep = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert rep.exit_code == 0, rep.output
    summary = json.loads((tmp_path / "run" / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["models"]["m"]["latency_s"]["mean"] == 1.5


def test_import_original_rejects_misaligned_auto_metrics(tmp_path: Path) -> None:
    res = tmp_path / "res"
    write_original(res)
    auto = pd.read_excel(res / "auto_metrics_stats.xlsx", engine="openpyxl").iloc[::-1]
    auto.to_excel(res / "auto_metrics_stats.xlsx", index=False)
    with pytest.raises(ImportDataError, match="do not match"):
        import_original(res, None, tmp_path / "run")


def test_cli_import_out_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    src = tmp_path / "g.csv"
    src.write_text("model,text\nm,Заказ отменили\n", encoding="utf-8")
    blocker = tmp_path / "run"
    blocker.write_text("x")
    res = runner.invoke(app, ["import", "--format", "table", "--results", str(src), "--out", str(blocker)])
    assert res.exit_code == 2  # was a FileExistsError traceback
    assert f"--out {blocker}: cannot create the run directory: a file is in the way" in " ".join(res.output.split())
