"""Plots of real runs: one interval plot per catalogue plot field the run has (the cluster-bootstrap and the naive
95% intervals of summary.json, drawn distinctly), the technical table, latency, decision and paired differences;
a field that is absent is left out with its reason; Cyrillic labels draw without missing glyphs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from PIL import Image

from report_runs import AWQ, GOOD, NEW_MODELS, SMALL
from vlmpipe.analysis.aggregate import generation_table
from vlmpipe.analysis.compare import read_summary
from vlmpipe.app.pipeline import open_store
from vlmpipe.core.fields import field
from vlmpipe.core.stats import pareto_front
from vlmpipe.render.plots import CLUSTER_STYLE, NAIVE_STYLE, interval_plot, latency, tech_table, write_plots

PEER_FIELDS = {"chrf_mean", "rouge1_f_mean", "fact_recall_mean", "judge.ratio_mean", "consistency_mean"}


def test_planted_run_plots_with_no_missing_glyphs(planted: Any) -> None:
    """Every plot of a run with a Cyrillic model name, drawn without a missing glyph; BLEURT and BERTScore are not
    configured here: their plots are left out, with the reason the summary gives."""
    summary = read_summary(planted.run_dir)
    with open_store(planted.run_dir) as store:
        table = generation_table(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = write_plots(summary, table, planted.run_dir / "plots-again")
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == [] and result.glyph_warnings == []
    assert {p.name for p in result.plots} == {
        "tech_stats", "field_judge_ratio_mean", "field_rouge1_f_mean", "field_chrf_mean", "field_fact_recall_mean",
        "field_perplexity_mean", "field_consistency_mean", "latency", "decision", "paired_differences"}
    assert set(result.skipped) == {"field_bleurt_mean", "field_bertscore_f_mean"}
    assert "no checkpoint configured" in result.skipped["field_bleurt_mean"]
    for p in result.plots:
        assert p.path.stat().st_size > 8_000, p.name
        with Image.open(p.path) as im:
            assert im.width > 300 and im.height > 150
    written = {p.name for p in planted.report_dir.glob("*.png")}  # the report stage wrote the same set
    assert written == {f"{p.name}.png" for p in result.plots}


def _lines(ax: Any, style: dict[str, Any]) -> list[tuple[float, float]]:
    return [tuple(ln.get_xdata()) for ln in ax.get_lines()  # type: ignore[misc]
            if ln.get_color() == style["color"] and ln.get_linewidth() == style["lw"]]


def test_interval_plot_draws_both_intervals_of_the_summary(peer_run: Path) -> None:
    """The chrF plot of the peer's data: per model (ranked by the judge ratio) a point at chrf_mean, the cluster
    interval and the naive one exactly as summary.json has them, labelled apart; no reference line."""
    summary = read_summary(peer_run)
    data = json.loads((peer_run / "report" / "summary.json").read_text(encoding="utf-8"))
    chrf = field("chrf_mean")
    fig, title = interval_plot(summary, chrf)
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[:2] == ["Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8"]  # judge ratio 0.868, 0.852
    assert len(names) == 8
    cluster, naive = _lines(ax, CLUSTER_STYLE), _lines(ax, NAIVE_STYLE)
    assert cluster == [tuple(data["models"][n]["fields"]["chrf_mean"]["ci95"]) for n in names]
    assert naive == [tuple(data["models"][n]["fields"]["chrf_mean"]["ci95_naive"]) for n in names]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [CLUSTER_STYLE["label"], NAIVE_STYLE["label"]]
    assert "cluster bootstrap over screenshots" in legend[0] and "naive" in legend[1]
    assert title == "chrF: value and 95% intervals per model" and "higher is better" in ax.get_xlabel()
    plt.close(fig)

    fig, _ = interval_plot(summary, field("judge.ratio_mean"))  # the judge ratio has its reference line at 1.0
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[-1] == "reference = 1" and [1.0, 1.0] in [list(ln.get_xdata()) for ln in fig.axes[0].get_lines()]
    plt.close(fig)
    written = {p.name for p in (peer_run / "report").glob("*.png")}
    assert {f"field_{k.replace('.', '_')}.png" for k in PEER_FIELDS} <= written
    assert not written & {"bar_chrf.png", "judge_ratio.png", "stability.png"}  # the hand-kept plots are gone


def test_lower_is_better_is_noted(planted: Any) -> None:
    """Perplexity (from the stand-in's /v1/completions log-probabilities) is lower-is-better: the plot says so."""
    fig, title = interval_plot(read_summary(planted.run_dir), field("perplexity_mean"))
    assert title.endswith("(lower is better)") and "lower is better" in fig.axes[0].get_title()
    plt.close(fig)


def test_a_long_description_wraps_and_the_legend_stays_below_it(imported_pair: tuple[Path, Path]) -> None:
    """A field's description (a plugin's may be long) is the axis label; it wraps, and the legend is placed below
    it instead of over it (the judge ratio's two-line label used to run into the legend)."""
    from dataclasses import replace

    a, _b = imported_pair
    summary = read_summary(a)
    for words in (2, 60):
        f = replace(field("chrf_mean"), description=" ".join(["character n-gram F-score"] * words))
        fig, _ = interval_plot(summary, f)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        label = ax.xaxis.label.get_window_extent(renderer)
        box = ax.get_legend().get_window_extent(renderer)
        lines = ax.xaxis.label.get_text().count("\n") + 1
        assert lines == (1 if words == 2 else 15)  # 60 × 25 characters at 110 a line
        assert box.y1 <= label.y0, (words, box, label)  # window coordinates: the legend's top below the label
        plt.close(fig)


def test_technical_table_is_the_technical_fields(planted: Any) -> None:
    fig, _ = tech_table(read_summary(planted.run_dir))
    cells = fig.axes[0].tables[0].get_celld()
    header = [cells[(0, c)].get_text().get_text() for c in range(len({c for _r, c in cells}))]
    rows = {cells[(r, 0)].get_text().get_text(): [cells[(r, c)].get_text().get_text() for c in range(len(header))]
            for r in range(1, 5)}
    plt.close(fig)
    # technical fields the run has, in catalogue order; GPU memory is not measured against a stand-in server
    assert header[:4] == ["model", "n", "errors", "non-ru/en letters Σ"]
    assert {"off-language", "spelling Σ", "perplexity", "latency p95, s", "TTFT p50, s", "chars/s"} <= set(header)
    assert not {"GPU, GB", "chrF"} & set(header)
    assert rows[AWQ][header.index("errors")] == "5" and rows[SMALL][header.index("errors")] == "3"
    assert rows[GOOD][header.index("n")] == "8"  # 4 screenshots × 2 repeats, the lost one included


def test_glyph_check_catches_an_undrawable_label(imported_pair: tuple[Path, Path]) -> None:
    """The glyph check is live: run B has a model named in Chinese, which DejaVu Sans cannot draw."""
    _a, b = imported_pair
    assert NEW_MODELS[1] == "模型-中文"
    with open_store(b) as store:
        table = generation_table(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = write_plots(read_summary(b), table, b / "plots-again")
    assert any("missing from font" in w for w in result.glyph_warnings)


def test_latency_log_scale_only_when_a_model_freezes(peer_run: Path, imported_pair: tuple[Path, Path]) -> None:
    """The peer's 2B-AWQ took 602.7 s once against a 1.45 s median: log scale; the recorded 0.4–1.5 s of the
    imported run: linear."""
    for run_dir, scale in ((peer_run, "log"), (imported_pair[0], "linear")):
        with open_store(run_dir) as store:
            table = generation_table(store)
        fig, _ = latency(read_summary(run_dir), table)
        assert fig.axes[0].get_xscale() == scale
        plt.close(fig)


@pytest.mark.parametrize(("points", "front"), [
    ({"a": (0.9, 100.0), "b": (0.8, 200.0), "c": (0.7, 150.0)}, ["a", "b"]),
    ({"a": (0.9, 100.0, -17.0), "b": (0.8, 90.0, -5.0), "c": (0.7, 80.0, -8.0)}, ["a", "b"]),
    ({"a": (0.5, 1.0), "b": (0.5, 1.0)}, ["a", "b"]),
])
def test_pareto_front(points: dict, front: list) -> None:
    assert pareto_front(points) == front
