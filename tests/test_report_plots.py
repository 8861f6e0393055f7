"""Plots: written when their numbers exist, left out when not, Cyrillic labels without missing glyphs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from report_fixtures import enrich, make_synthetic_run
from vlmpipe.analysis.aggregate import build_summary, generation_table
from vlmpipe.core.stats import pareto_front
from vlmpipe.core.store import Store
from vlmpipe.render.plots import write_plots

ALL = {"tech_stats", "latency", "bar_perplexity", "bar_rouge1_f", "bar_chrf", "judge_ratio", "decision",
       "paired_differences", "stability"}


def _inputs(tmp_path: Path, enriched: bool = True) -> tuple[dict, list]:
    cfg, run_dir = make_synthetic_run(tmp_path, with_judge=enriched)
    with Store(run_dir / "run.sqlite") as store:
        summary, table = build_summary(cfg, store), generation_table(store)
    return (enrich(summary, table) if enriched else summary), table


def test_every_plot_with_its_numbers_and_no_missing_glyphs(tmp_path: Path) -> None:
    summary, table = _inputs(tmp_path)
    out = tmp_path / "plots"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = write_plots(summary, table, out)
    glyphs = [str(w.message) for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    assert glyphs == [] and result.glyph_warnings == []
    assert {p.name for p in result.plots} == ALL, result.skipped
    assert "bar_bleurt" in result.skipped  # BLEURT absent here: left out, not drawn as zero
    for p in result.plots:
        assert p.path.stat().st_size > 8_000, p.name
        with Image.open(p.path) as im:
            assert im.width > 300 and im.height > 150


TIMINGS_ONLY = ("role", "n", "n_errors", "errors_by_kind", "latency_s", "ttft_s", "length_chars_mean",
                "chars_per_s_mean", "unavailable")


def test_absent_metrics_are_left_out(tmp_path: Path) -> None:
    summary, table = _inputs(tmp_path, enriched=False)
    for name, m in summary["models"].items():  # a run with timings only: no metrics, no judge, no repeats
        summary["models"][name] = {k: m.get(k) for k in TIMINGS_ONLY}
    summary.pop("pairwise", None)
    for r in table:
        r["metrics"] = {}
    result = write_plots(summary, table, tmp_path / "plots")
    assert {p.name for p in result.plots} == {"tech_stats", "latency"}
    assert set(result.skipped) == ALL - {"tech_stats", "latency"} | {"bar_bleurt"}
    assert result.skipped["judge_ratio"] == "judge not run"


def test_glyph_check_catches_an_undrawable_label(tmp_path: Path) -> None:
    """The glyph check is live: a model name in Chinese (not in DejaVu Sans) is reported."""
    summary, table = _inputs(tmp_path, enriched=False)
    summary["models"]["模型-中文"] = summary["models"].pop("ocr-baseline")
    for r in table:
        if r["model"] == "ocr-baseline":
            r["model"] = "模型-中文"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = write_plots(summary, table, tmp_path / "plots")
    assert any("missing from font" in w for w in result.glyph_warnings)


def test_latency_log_scale_only_when_a_model_freezes(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from vlmpipe.render.plots import latency

    summary, table = _inputs(tmp_path, enriched=False)
    fig, _ = latency(summary, table)
    assert fig.axes[0].get_xscale() == "log"  # the AWQ variant's 60 s answer vs a 0.7 s median
    plt.close(fig)
    calm = [r for r in table if r["model"] != "Qwen2-VL-7B-Instruct-AWQ"]
    del summary["models"]["Qwen2-VL-7B-Instruct-AWQ"]
    fig, _ = latency(summary, calm)
    assert fig.axes[0].get_xscale() == "linear"
    plt.close(fig)


@pytest.mark.parametrize(("points", "front"), [
    ({"a": (0.9, 100.0), "b": (0.8, 200.0), "c": (0.7, 150.0)}, ["a", "b"]),
    ({"a": (0.9, 100.0, -17.0), "b": (0.8, 90.0, -5.0), "c": (0.7, 80.0, -8.0)}, ["a", "b"]),
    ({"a": (0.5, 1.0), "b": (0.5, 1.0)}, ["a", "b"]),
])
def test_pareto_front(points: dict, front: list) -> None:
    assert pareto_front(points) == front
