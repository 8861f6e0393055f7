"""The end-of-run ranking table and the compare table, on real runs: ranked by quality, only the columns the run has,
fits the terminal."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from rich.console import Console

from reliability_helpers import make_images
from report_runs import AWQ, FORMULA, GOOD, INT8, SMALL, after_rows, import_run
from vlmpipe.analysis.compare import compare_summaries, read_summary
from vlmpipe.app.pipeline import run
from vlmpipe.core.config import config_from_dict
from vlmpipe.render.console import compare_table, failures_note, ranking_table


def _render(table: Any, width: int) -> list[str]:
    console = Console(width=width, record=True)
    console.print(table)
    return console.export_text().splitlines()


def test_ranked_by_judge_ratio_with_intervals_and_the_run_s_columns(planted: Any) -> None:
    lines = _render(ranking_table(read_summary(planted.run_dir), width=200), 200)
    rows = [ln.split() for ln in lines if ln.strip().startswith(("Qwen", "Модель", "formula"))]
    assert [r[0] for r in rows] == [GOOD, AWQ, SMALL, FORMULA]
    # the judge's fixed scores 8, 6 and 4 against the reference's 8, the same for every answer: zero-width intervals
    assert " ".join(rows[0][3:6]) == "1.000 [1.000, 1.000]" and " ".join(rows[2][3:6]) == "0.500 [0.500, 0.500]"
    assert rows[3][3] == "—"  # the formula bot was never graded
    assert rows[0][1:3] == ["8", "2"] and rows[1][1:3] == ["8", "5"]  # n, errors
    header = next(ln for ln in lines if "model" in ln)
    for title in ("judge [95%]", "R-1", "chrF", "facts", "inv.num", "off-lang", "p50 s", "max s", "ch/s"):
        assert title in header
    assert "BLEURT" not in header and "GPU GB" not in header  # absent here: no column
    assert "ranked by judge ratio" in lines[0]


def test_narrow_terminal_drops_columns_not_names(planted: Any) -> None:
    lines = _render(ranking_table(read_summary(planted.run_dir), width=72), 72)
    assert all(len(ln) <= 72 for ln in lines)
    assert "…" not in "".join(lines)
    header = next(ln for ln in lines if "model" in ln)
    assert "judge [95%]" in header and "chrF" in header and "ch/s" not in header
    assert any(AWQ in ln for ln in lines)


def test_a_run_with_failures_says_which_in_one_line(planted: Any, tmp_path: Path) -> None:
    # 1 lost screenshot; 4 models × its 2 repeats + 2 × HTTP 500 + 1 × 429 + 1 timeout; the formula bot's 6 answers
    # the judge could not grade
    assert failures_note(read_summary(planted.run_dir)) == (
        "completed with failures: 1 screenshot(s) could not be used, 12 generation(s) failed, 6 judgement(s) failed "
        "(counted per model in summary.json and the report)")
    clean = import_run(tmp_path, "clean", [r for r in after_rows() if not r["error"]])
    assert failures_note(read_summary(clean)) is None


def test_a_narrow_table_keeps_its_title_on_one_line(tmp_path: Path) -> None:
    """A run whose only model's server is not there: every generation fails; the table has n and errors only."""
    data = tmp_path / "data"
    make_images(data, 2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config_from_dict({"name": "down", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(data)},
                            "models": [{"name": "dead", "base_url": f"http://127.0.0.1:{port}/v1",
                                        "max_retries": 0, "connect_timeout_s": 1}],
                            "repeats": 2, "metrics": {"enabled": []}})
    result = run(cfg, show_progress=False)
    assert result.exit_code == 1
    lines = [ln.strip() for ln in _render(ranking_table(result.summary, width=80), 80) if ln.strip()]
    assert lines[0] == "run down: 2 items × 2 repeats"  # was wrapped: "run down: 2 items" / "× 2 repeats"
    assert lines[1].split() == ["model", "n", "err"] and lines[-1].split() == ["dead", "4", "4"]


def test_compare_table_names_every_model_and_field_whole_in_80_columns(imported_pair: tuple[Path, Path]) -> None:
    comparison = compare_summaries(*(read_summary(r) for r in imported_pair))
    lines = _render(compare_table(comparison, ["n_errors", "latency_s.p50", "hallucinated_number_rate"]), 80)
    assert all(len(ln) <= 80 for ln in lines) and "…" not in "".join(lines)  # names were cut to "Qwen2-VL-7B-Ins…"
    titles = [ln.strip() for ln in lines if ln.strip().endswith(": B − A")]
    assert titles[:2] == [f"{GOOD}: B − A", f"{INT8}: B − A"]
    rows = [ln.strip("│ ").split() for ln in lines if ln.startswith("│")]
    # the 7B model: recorded latencies 1.0, 1.5, 1.0, 1.5 s in A, 1.5 s ×3 in B; one recorded failure in B
    assert ["latency_s.p50", "│", "1.25", "│", "1.5", "│", "+0.25"] in rows
    assert ["n_errors", "│", "0", "│", "1", "│", "+1"] in rows
