"""compare: two real runs' summaries side by side (two imported runs, scored), differences, interval overlap; the CLI
command and its errors.

Run A and B (tests/report_runs.py): the 7B model answers with the references word for word in A (latencies 1.0,
1.5, 1.0, 1.5 s) and with other words in B (1.5 s ×3 and one recorded failure); the GPTQ-Int8 variant answers the
same in both; "retired" is only in A, two new models only in B.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from report_runs import AFTER_CARD, AFTER_ORDER, CARD, GOOD, INT8, NEW_MODELS, ORDER
from vlmpipe.analysis.compare import compare_runs, compare_summaries, read_summary
from vlmpipe.app.cli import app


def test_compare_summaries(imported_pair: tuple[Path, Path]) -> None:
    a, b = imported_pair
    r = compare_summaries(read_summary(a), read_summary(b), name_a="A", name_b="B")
    q = r.models[GOOD]
    assert (q["latency_s.p50"].a, q["latency_s.p50"].b, q["latency_s.p50"].diff) == (1.25, 1.5, 0.25)
    assert (q["latency_s.max"].a, q["latency_s.max"].b) == (1.5, 1.5)
    assert (q["n_errors"].a, q["n_errors"].b) == (0, 1)
    # lengths and chars/s from the recorded texts and latencies
    assert q["length_chars_mean"].a == (2 * len(ORDER) + 2 * len(CARD)) / 4
    assert q["length_chars_mean"].b == (2 * len(AFTER_ORDER) + len(AFTER_CARD)) / 3
    speeds = [len(ORDER) / 1.0, len(ORDER) / 1.5, len(CARD) / 1.0, len(CARD) / 1.5]
    assert abs(q["chars_per_s_mean"].a - sum(speeds) / 4) < 1e-9
    # chrF: every A answer is the reference (100, interval [100, 100]); no B answer is: its interval ends below 100
    chrf = q["chrf_mean"]
    assert chrf.a == 100.0 and chrf.ci95_a == [100.0, 100.0] and chrf.ci95_b[1] < 100
    assert chrf.intervals_overlap is False
    same = r.models[INT8]["chrf_mean"]  # the same answers in both runs
    assert same.diff == 0 and same.ci95_a == same.ci95_b and same.intervals_overlap is True
    assert "latency_s.p50" in r.models[INT8] and r.models[INT8]["latency_s.p50"].ci95_a is None  # no interval
    assert "bleurt_mean" not in q  # null in both: nothing to compare, not a zero
    assert "judge.ratio_mean" not in q  # neither run was judged
    keys = list(q)
    assert keys.index("n_errors") < keys.index("chrf_mean") < keys.index("latency_s.p50")  # catalogue order
    assert r.only_a == ["retired"] and r.only_b == NEW_MODELS


def test_compare_cli(imported_pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = imported_pair
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "latency_s.p50" in res.output and "do not overlap" in res.output and "+0.25" in res.output
    assert "only in A: retired" in res.output and f"only in B: {', '.join(NEW_MODELS)}" in res.output
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved == compare_runs(a, b).to_dict()
    assert saved["models"][GOOD]["latency_s.p50"] == {"a": 1.25, "b": 1.5, "diff": 0.25}  # no interval, no keys
    assert saved["a"]["name"] == str(a) and saved["a"]["run"]["name"] == "baseline"
    assert "summary_written" in saved["a"]
    everything = CliRunner().invoke(app, ["compare", str(a), str(b), "--all"], env={"COLUMNS": "200"})
    assert "rouge2_f_mean" in everything.output and "rouge2_f_mean" not in res.output  # not a headline field
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(app, ["compare", str(a), str(tmp_path / "empty")], env={"COLUMNS": "300"})
    assert missing.exit_code == 2 and "no report/summary.json" in missing.output


def test_compare_out_that_is_a_file_is_a_clear_error(imported_pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = imported_pair
    blocker = tmp_path / "out.txt"
    blocker.write_text("x")
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(blocker)])
    assert res.exit_code == 2  # was a FileExistsError traceback
    assert f"--out {blocker}: cannot create the folder: a file is in the way" in " ".join(res.stderr.split())


def test_compare_with_a_broken_summary_is_a_clear_error(imported_pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, _b = imported_pair
    broken = tmp_path / "b" / "report" / "summary.json"
    broken.parent.mkdir(parents=True)
    broken.write_text((a / "report" / "summary.json").read_text(encoding="utf-8")[:40])  # cut short
    res = CliRunner().invoke(app, ["compare", str(a), str(tmp_path / "b")])
    broken.unlink()  # not a summary of a run: keep it out of the end-of-session schema check
    assert res.exit_code == 2  # was a JSONDecodeError traceback
    text = " ".join(res.stderr.split())
    assert f"{broken}: not valid JSON" in text
    assert f"run `vlmpipe report {tmp_path / 'b'}` to write it again" in text


def test_compare_says_how_the_runs_differ_besides_their_models(imported_pair: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    """Two runs of the OCR baseline over the same three screenshots: screen annotation, and VQA with two questions
    on one of them. The same field measures different things in them, and the console, compare.json and
    compare.html say so; two runs of one task over the same data (the imported pair) get no note."""
    from html import unescape

    from reliability_helpers import make_images, write_config, write_manifest

    shots = tmp_path / "shots"
    names = make_images(shots, 3)
    write_manifest(shots, [{"image": names[0], "question": "Что на экране?", "reference": "Ошибка."},
                           {"image": names[0], "question": "Какой цвет?", "reference": "Синий."},
                           {"image": names[1], "question": "Что делать?", "reference": "Повторить."},
                           {"image": names[2], "question": "Где кнопка?", "reference": "Внизу."}], "qa.jsonl")
    ocr = [{"name": "ocr", "provider": "ocr"}]
    runs = tmp_path / "runs"
    request = write_config(tmp_path / "request.yaml", shots, ocr, name="request")
    vqa = write_config(tmp_path / "vqa.yaml", shots, ocr, name="vqa", task="vqa",
                       dataset={"path": str(shots), "manifest": str(shots / "qa.jsonl")})
    for config in (request, vqa):
        res = CliRunner().invoke(app, ["run", str(config), "--quiet"])
        assert res.exit_code == 0, res.output
    out = tmp_path / "cmp"
    res = CliRunner().invoke(app, ["compare", str(runs / "request"), str(runs / "vqa"), "--out", str(out)],
                             env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    prompts = [read_summary(runs / name).run.prompt_hash for name in ("request", "vqa")]
    notes = [
        "A is a request run and B a vqa run: the same field measures different things in them (other prompts, "
        "references and judge); compare runs of one task.",
        f"The two runs used different prompts (prompt hash {prompts[0]} in A, {prompts[1]} in B): a difference may "
        "come from the prompt, not the model.",
        "A has 3 screenshots, B 4 items on 3 screenshots: the runs are not over the same data, and a difference may "
        "come from the screenshots.",
    ]
    assert all(f"note: {n}" in res.output for n in notes), res.output
    assert json.loads((out / "compare.json").read_text())["notes"] == notes
    html = unescape((out / "compare.html").read_text(encoding="utf-8"))
    assert all(f'<p class="error note">{n}</p>' in html for n in notes)
    assert "<tr><th>task</th><td>request</td><td>vqa</td></tr>" in html
    a, b = imported_pair
    assert compare_runs(a, b).notes == []
    assert "note:" not in CliRunner().invoke(app, ["compare", str(a), str(b)], env={"COLUMNS": "200"}).output
