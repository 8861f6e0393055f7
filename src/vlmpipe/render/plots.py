"""The report's plots (PNG, matplotlib Agg, DejaVu Sans so Cyrillic labels render).

Every plot is a view of the typed summary and the field catalogue (:mod:`vlmpipe.analysis.catalogue`):

- ``tech_stats.png``: the technical-statistics table, one column per :func:`technical_fields` field the run has;
- ``field_<key>.png`` (dots in the key become ``_``: ``field_chrf_mean.png``, ``field_judge_ratio_mean.png``), one
  per :func:`plot_fields` field the run has: each model's value with its 95% interval from the cluster bootstrap
  over screenshots (``fields.<key>.ci95``) and the naive one (``ci95_naive``), the field's reference line;
- ``latency.png``: the latency of every generation per model (box plot);
- ``decision.png``: the run's quality field against speed (and GPU memory), with the Pareto front;
- ``paired_differences.png``: the quality field's paired differences between variants of one model family.

Each plot is drawn only when the run has its numbers: a field that is absent is left out, never drawn as zero.
``write_plots`` returns the plots written and records every missing-glyph warning matplotlib raises in
``PlotResult.glyph_warnings`` (a label the font cannot draw would be silently boxes otherwise).
"""

from __future__ import annotations

import logging
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from vlmpipe.analysis.catalogue import plot_fields, technical_fields
from vlmpipe.analysis.families import same_family
from vlmpipe.analysis.summary import RunSummary, number
from vlmpipe.core.fields import SummaryField
from vlmpipe.core.stats import pareto_front

log = logging.getLogger("vlmpipe.render")
_MPL = tuple(int(x) for x in matplotlib.__version__.split(".")[:2])

STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 11, "figure.dpi": 100,
         "savefig.dpi": 110, "axes.grid": True, "grid.alpha": 0.3}

#: Freeze rule shared with the findings: a model whose slowest answer is this many times its median.
LOG_SCALE_RATIO = 20.0

#: How the two intervals of an interval plot are drawn and labelled.
CLUSTER_STYLE = {"color": "#1f5f99", "lw": 3.5, "solid_capstyle": "butt",
                 "label": "95% interval: cluster bootstrap over screenshots (ci95)"}
NAIVE_STYLE = {"color": "#e08214", "lw": 1.5, "ls": "--",
               "label": "naive 95% interval: mean ± 1.96·sd/√n, repeats as if independent (ci95_naive)"}

Drawn = tuple[Figure, str] | str  # a figure and its caption, or why the plot is left out


@dataclass
class Plot:
    name: str
    title: str
    path: Path
    wide: bool = False  # shown across the page's plot grid (tables, many panels)


@dataclass
class PlotResult:
    plots: list[Plot] = field(default_factory=list)
    glyph_warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def plot_name(f: SummaryField) -> str:
    """The file stem of a field's interval plot: ``field_judge_ratio_mean``."""
    return "field_" + f.key.replace(".", "_")


#: What the latency plot needs of a run: its generation rows, or ``{model: latencies}`` (``Store.latencies()``).
Latencies = Iterable[dict[str, Any]] | Mapping[str, list[float]]


def drawers(summary: RunSummary, table: Latencies) -> list[tuple[str, bool, Callable[[], Drawn]]]:
    """Every plot of the report as ``(name, wide, draw)``, in page order (a draw says why when it has nothing)."""
    return [("tech_stats", True, lambda: tech_table(summary)),
            *((plot_name(f), False, lambda f=f: interval_plot(summary, f)) for f in plot_fields()),
            ("latency", False, lambda: latency(summary, table)),
            ("decision", False, lambda: decision(summary)),
            ("paired_differences", False, lambda: paired_differences(summary))]


def write_plots(summary: RunSummary, table: Latencies, out: Path) -> PlotResult:
    """Draw every plot this run has the numbers for into ``out`` (``<name>.png``)."""
    out.mkdir(parents=True, exist_ok=True)
    result = PlotResult()
    with warnings.catch_warnings(record=True) as caught, plt.rc_context(STYLE):
        warnings.simplefilter("always")
        for name, wide, draw in drawers(summary, table):
            try:
                made = draw()
            except Exception as err:  # a plot that fails must not lose the rest of the report
                log.warning("plot %s failed: %s", name, err)
                result.skipped[name] = f"failed: {err}"
                continue
            if isinstance(made, str):
                result.skipped[name] = made
                continue
            fig, title = made
            path = out / f"{name}.png"
            fig.savefig(path, bbox_inches="tight")
            plt.close(fig)
            result.plots.append(Plot(name, title, path, wide))
    result.glyph_warnings = [str(w.message) for w in caught
                             if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    for w in result.glyph_warnings:
        log.warning("plot label not drawable: %s", w)
    return result


def _height(n: int) -> float:
    return max(2.2, 0.45 * n + 1.2)


def _direction(f: SummaryField) -> str:
    return {True: "higher is better", False: "lower is better"}.get(f.higher_is_better, "")  # type: ignore[arg-type]


# --- the plots ----------------------------------------------------------------------------------------------

def tech_table(summary: RunSummary) -> Drawn:
    """The technical fields the run has, one row per model (ranking order), as a table image."""
    names = summary.ranked()
    if not names:
        return "no models"
    cols = [f for f in technical_fields() if summary.present(f.key, names)]
    cells = [[name] + [f.format(summary.value(name, f.key)) for f in cols] for name in names]
    labels = ["model"] + [f.title for f in cols]
    chars = [max(4, len(labels[j]), *(len(row[j]) for row in cells)) + 2 for j in range(len(labels))]
    fig, ax = plt.subplots(figsize=(0.085 * sum(chars) + 0.2 * len(chars), 0.3 * len(names) + 0.8))
    ax.axis("off")
    tbl = ax.table(cellText=cells, colLabels=labels, loc="center", cellLoc="right",
                   colWidths=[c / sum(chars) for c in chars])
    tbl.auto_set_font_size(False)
    tbl.set_fontsize(9)
    tbl.scale(1, 1.4)
    for (row, col), cell in tbl.get_celld().items():
        if row == 0:
            cell.set_facecolor("#e8edf3")
            cell.set_text_props(weight="bold")
        if col == 0:
            cell.set_text_props(ha="left")
    ax.set_title("Technical statistics per model")
    return fig, "Technical statistics"


def interval_plot(summary: RunSummary, f: SummaryField) -> Drawn:
    """Field ``f`` per model (ranking order): its value, the cluster-bootstrap and the naive 95% intervals, the
    field's reference line when it has one."""
    names = [n for n in summary.ranked() if summary.value(n, f.key) is not None]
    if not names:
        why = next((w for m in summary.models.values() if (w := m.why_missing(f.key))), None)
        return f"{f.key} not in this run" + (f" ({why})" if why else "")
    fig, ax = plt.subplots(figsize=(7.5, _height(len(names)) + 0.4))
    labelled: set[str] = set()

    def line(xs: tuple[float, float], y: float, style: dict[str, Any]) -> None:
        label = style["label"] if style["label"] not in labelled else None
        labelled.add(style["label"])
        ax.plot(list(xs), [y, y], **{**style, "label": label})

    for i, n in enumerate(names):
        m = summary.models[n]
        v = m.value(f.key)
        ci, naive = m.interval(f.key), m.interval(f.key, naive=True)
        if ci:
            line(ci, i, CLUSTER_STYLE)
        if naive:
            line(naive, i + 0.25, NAIVE_STYLE)
        ax.plot([v], [i], "o", color="#0b2a45", zorder=3)
        right = max([v, *(ci or ()), *(naive or ())])  # type: ignore[type-var]
        text = f.format(v) + (f" [{f.format(ci[0])}, {f.format(ci[1])}]" if ci else "")
        ax.annotate(text, (right, i), xytext=(6, 0), textcoords="offset points", fontsize=7,  # type: ignore[arg-type]
                    va="center")
    if f.reference is not None:
        ax.axvline(f.reference, color="#c0392b", ls=":", lw=1.2, label=f"reference = {f.reference:g}")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.6)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + 0.3 * (hi - lo))  # room for the labels right of the intervals
    direction = _direction(f)
    label = f.title + (f" ({direction})" if direction else "") + (f": {f.description}" if f.description else "")
    ax.set_xlabel(textwrap.fill(label, 110))
    # the legend goes right below the axis label, however many lines a field's description (a plugin's) takes and
    # however long the model names are (the saved figure grows to fit: bbox_inches="tight")
    fig.canvas.draw()
    below = ax.xaxis.label.get_window_extent(fig.canvas.get_renderer()).y0
    top = ax.transAxes.inverted().transform((0, below))[1]
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, top - 0.02), ncol=1, fontsize=7, frameon=False)
    note = " — lower is better" if f.higher_is_better is False else ""
    ax.set_title(f"{f.label} per model with 95% intervals{note}")
    return fig, f"{f.label}: value and 95% intervals per model" + (" (lower is better)" if note else "")


def latency(summary: RunSummary, table: Latencies) -> Drawn:
    """Every successful generation's end-to-end latency per model (ranking order), as box plots."""
    per: dict[str, list[float]] = defaultdict(list)
    if isinstance(table, Mapping):
        per.update({m: [v for v in map(number, vals) if v is not None] for m, vals in table.items()})
    else:
        for r in table:
            if r.get("error") is None and (v := number(r.get("latency_s"))) is not None:
                per[r["model"]].append(v)
    names = [n for n in summary.ranked() if per.get(n)]
    if not names:
        return "no successful generations with a latency"
    fig, ax = plt.subplots(figsize=(7.5, _height(len(names))))
    series = [per[n] for n in names]
    horizontal = {"orientation": "horizontal"} if _MPL >= (3, 10) else {"vert": False}
    ax.boxplot(series, tick_labels=names, showmeans=True, widths=0.6, **horizontal)
    ratio = max((max(v) / max(np.median(v), 1e-9)) for v in series)
    if ratio > LOG_SCALE_RATIO:
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency, s (log scale: a model's slowest answer is "
                      f"{ratio:.0f}× its median)")
    else:
        ax.set_xlabel("end-to-end latency, s")
    ax.invert_yaxis()
    ax.set_title("Latency per generation")
    return fig, "Latency distribution"


def decision(summary: RunSummary) -> Drawn:
    """The run's quality field against chars/s, marker size = peak GPU memory when measured, Pareto front."""
    cands = summary.candidates()
    q = summary.quality_field(cands)
    if q is None:
        return "no quality measure (judge ratio, chrF or ROUGE-1) in this run"
    names = [n for n in cands if summary.value(n, q.key) is not None
             and summary.value(n, "chars_per_s_mean") is not None]
    if not names:
        return "no model has both quality and speed"
    sign = -1.0 if q.higher_is_better is False else 1.0
    mem = {n: summary.value(n, "gpu_memory_gb_peak") for n in names}
    with_mem = all(v is not None for v in mem.values())
    quality = {n: summary.value(n, q.key) or 0.0 for n in names}
    speed = {n: summary.value(n, "chars_per_s_mean") or 0.0 for n in names}
    points = {n: (sign * quality[n], speed[n]) + ((-(mem[n] or 0.0),) if with_mem else ()) for n in names}
    front = set(pareto_front(points))
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [speed[n] for n in names]
    ys = [quality[n] for n in names]
    if with_mem:
        top = max(v or 0.0 for v in mem.values()) or 1.0
        sizes = [60 + 600 * (mem[n] or 0) / top for n in names]
    else:
        sizes = [70] * len(names)
    colors = ["#d95f02" if n in front else "#7f7f7f" for n in names]
    ax.scatter(xs, ys, s=sizes, c=colors, alpha=0.75, edgecolors="black", linewidths=0.5)
    for n, x, y in zip(names, xs, ys, strict=True):
        label = n + (f" ({mem[n]:.1f} GB)" if with_mem else "")
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=7)
    front_pts = sorted((speed[n], quality[n]) for n in names if n in front)
    if len(front_pts) > 1 and not with_mem:  # on two axes the front is a line; on three it is a set
        ax.plot([p[0] for p in front_pts], [p[1] for p in front_pts], color="#d95f02", lw=1, ls=":")
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel("speed: characters per second (higher is better)")
    ax.set_ylabel(f"quality: {q.title} ({_direction(q) or 'see the ranking'})")
    if q.reference is not None:
        ax.axhline(q.reference, color="#c0392b", ls="--", lw=0.8)
    note = "marker size = peak GPU memory" if with_mem else "GPU memory not measured"
    ax.set_title(f"Quality vs speed — orange: Pareto front ({note})", fontsize=10)
    return fig, "Decision chart: quality vs speed" + (" and GPU memory" if with_mem else "")


def paired_differences(summary: RunSummary) -> Drawn:
    """The quality field's paired differences (A − B on the screenshots both have) between variants of one model
    family, with their 95% intervals and P(A > B)."""
    q = summary.quality_field()
    if q is None:
        return "no quality measure in this run"
    pairs = [p for p in summary.pairs(q.key) if same_family(p.a, p.b)]
    if not pairs:
        return f"no paired comparisons of {q.label} between variants of one model (pairwise.{q.key})"
    fig, ax = plt.subplots(figsize=(7.5, _height(len(pairs))))
    for i, p in enumerate(pairs):
        if p.ci95:
            ax.plot(p.ci95, [i, i], color=CLUSTER_STYLE["color"], lw=3)
        ax.plot([p.diff], [i], "o", color="#0b2a45")
        txt = f"{p.diff:+.3f}" + (f" [{p.ci95[0]:+.3f}, {p.ci95[1]:+.3f}]" if p.ci95 else "")
        if p.p_a_better is not None:
            txt += f", P(A>B)={p.p_a_better:.2f}"
        ax.annotate(txt, (p.diff, i), xytext=(6, 5), textcoords="offset points", fontsize=7)
    ax.axvline(0.0, color="#c0392b", ls="--", lw=1)
    ax.set_yticks(range(len(pairs)), [f"{p.a}\n− {p.b}" for p in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"paired difference in {q.label} on the same screenshots (A − B), 95% interval")
    ax.set_title("Variants of one model, compared on the same screenshots")
    return fig, f"Paired differences in {q.label} between variants"
