"""compare: two runs' summaries side by side, differences, interval overlap; the CLI command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vlmpipe.analysis.compare import compare_runs, compare_summaries
from vlmpipe.app.cli import app


def _summary(ratio: float, ci: list[float], latency: float, extra_model: str | None = None) -> dict:
    models = {"qwen-7b": {"role": "candidate", "n": 50, "n_errors": 0, "latency_s": {"p50": latency, "max": 2.0},
                          "chrf_mean": 50.0, "judge": {"ratio_mean": ratio, "ratio_ci95": ci}, "unavailable": {}},
              "qwen-2b": {"role": "candidate", "n": 50, "n_errors": 1, "latency_s": {"p50": 0.5, "max": 1.0},
                          "judge": {"ratio_mean": 0.6, "ratio_ci95": [0.55, 0.65]}, "bleurt_mean": None}}
    if extra_model:
        models[extra_model] = {"role": "candidate", "n": 1}
    return {"schema": 1, "run": {"name": "r", "items": 10, "repeats": 5}, "models": models}


def test_compare_summaries() -> None:
    a = _summary(0.80, [0.76, 0.84], 1.0, extra_model="only-a")
    b = _summary(0.90, [0.86, 0.94], 1.5)
    r = compare_summaries(a, b)
    q = r["models"]["qwen-7b"]
    assert q["judge.ratio_mean"]["diff"] == 0.9 - 0.8
    assert q["judge.ratio_mean"]["intervals_overlap"] is False
    assert q["latency_s.p50"] == {"a": 1.0, "b": 1.5, "diff": 0.5}
    assert r["models"]["qwen-2b"]["judge.ratio_mean"]["intervals_overlap"] is True
    assert "bleurt_mean" not in r["models"]["qwen-2b"]  # null in both: nothing to compare, not a zero
    assert r["only_a"] == ["only-a"] and r["only_b"] == []


def test_compare_cli(tmp_path: Path) -> None:
    for name, s in (("a", _summary(0.80, [0.76, 0.84], 1.0)), ("b", _summary(0.82, [0.78, 0.86], 1.0))):
        (tmp_path / name / "report").mkdir(parents=True)
        (tmp_path / name / "report" / "summary.json").write_text(json.dumps(s))
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "judge.ratio_mean" in res.output and "overlap" in res.output and "+0.02" in res.output
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved == compare_runs(tmp_path / "a", tmp_path / "b") | {"a": saved["a"], "b": saved["b"]}
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "empty")],
                                 env={"COLUMNS": "300"})
    assert missing.exit_code == 2 and "no report/summary.json" in missing.output


def test_compare_out_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "report").mkdir(parents=True)
        (tmp_path / name / "report" / "summary.json").write_text(json.dumps(_summary(0.8, [0.76, 0.84], 1.0)))
    blocker = tmp_path / "out.txt"
    blocker.write_text("x")
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(blocker)])
    assert res.exit_code == 2  # was a FileExistsError traceback
    assert f"--out {blocker}: cannot create the folder: a file is in the way" in " ".join(res.stderr.split())


def test_compare_with_a_broken_summary_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a" / "report").mkdir(parents=True)
    (tmp_path / "a" / "report" / "summary.json").write_text(json.dumps(_summary(0.8, [0.76, 0.84], 1.0)))
    (tmp_path / "b" / "report").mkdir(parents=True)
    (tmp_path / "b" / "report" / "summary.json").write_text('{"schema": 1, "mod')  # cut short
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 2  # was a JSONDecodeError traceback
    text = " ".join(res.stderr.split())
    assert f"{tmp_path / 'b' / 'report' / 'summary.json'}: not valid JSON" in text
    assert f"run `vlmpipe report {tmp_path / 'b'}` to write it again" in text
