"""The report's plots (PNG, matplotlib Agg, DejaVu Sans so Cyrillic labels render).

Each plot is drawn only when the run has its numbers: a metric that is absent is left out, never drawn as zero.
``write_plots`` returns the plots written (name → path, title) and records every missing-glyph warning matplotlib
raises in ``PlotResult.glyph_warnings`` (a label the font cannot draw would be silently boxes otherwise).
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from vlmpipe.analysis import access
from vlmpipe.core.stats import pareto_front

log = logging.getLogger("vlmpipe.render")
_MPL = tuple(int(x) for x in matplotlib.__version__.split(".")[:2])

STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 11, "figure.dpi": 100,
         "savefig.dpi": 110, "axes.grid": True, "grid.alpha": 0.3}

#: Bars with error bars: (summary field, per-generation column, label).
BAR_METRICS = [("perplexity_mean", "perplexity", "Perplexity (lower is better)"),
               ("rouge1_f_mean", "rouge1_f", "ROUGE-1 F"),
               ("chrf_mean", "chrf", "chrF"),
               ("bleurt_mean", "bleurt", "BLEURT")]

#: Freeze rule shared with the findings: a model whose slowest answer is this many times its median.
LOG_SCALE_RATIO = 20.0


@dataclass
class Plot:
    name: str
    title: str
    path: Path


@dataclass
class PlotResult:
    plots: list[Plot] = field(default_factory=list)
    glyph_warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def write_plots(summary: dict[str, Any], table: list[dict[str, Any]], out: Path) -> PlotResult:
    """Draw every plot this run has the numbers for into ``out`` (``<name>.png``)."""
    out.mkdir(parents=True, exist_ok=True)
    result = PlotResult()
    drawers = [tech_table, latency, *[_bar_drawer(*m) for m in BAR_METRICS], judge_forest, decision,
               paired_differences, stability]
    with warnings.catch_warnings(record=True) as caught, plt.rc_context(STYLE):
        warnings.simplefilter("always")
        for draw in drawers:
            name = getattr(draw, "plot_name", draw.__name__)
            try:
                made = draw(summary, table)
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
            result.plots.append(Plot(name, title, path))
    result.glyph_warnings = [str(w.message) for w in caught
                             if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    for w in result.glyph_warnings:
        log.warning("plot label not drawable: %s", w)
    return result


# --- helpers ---------------------------------------------------------------------------------------------

def _by_model(table: list[dict[str, Any]], column: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in table:
        if r.get("error") is not None:
            continue
        v = r.get(column) if column in r else r.get("metrics", {}).get(column, (None, None))[0]
        v = access.number(v)
        if v is not None:
            out[r["model"]].append(v)
    return out


def _ci95_of_mean(values: list[float]) -> float:
    """Half-width of the normal 95% interval of a mean (0 for a single value): error bars, not a test."""
    if len(values) < 2:
        return 0.0
    return float(1.96 * np.std(values, ddof=1) / np.sqrt(len(values)))


def _height(n: int) -> float:
    return max(2.2, 0.45 * n + 1.2)


# --- the plots ----------------------------------------------------------------------------------------------

TECH_COLUMNS = [("n", "n", "{:.0f}"), ("errors", "n_errors", "{:.0f}"), ("latency mean, s", "latency_s.mean", "{:.2f}"),
                ("p50, s", "latency_s.p50", "{:.2f}"), ("p95, s", "latency_s.p95", "{:.2f}"),
                ("max, s", "latency_s.max", "{:.2f}"), ("TTFT p50, s", "ttft_s.p50", "{:.2f}"),
                ("length, chars", "length_chars_mean", "{:.1f}"), ("chars/s", "chars_per_s_mean", "{:.1f}"),
                ("spelling Σ", "spelling_errors_sum", "{:.0f}"), ("non-ru/en Σ", "non_ru_en_letters_sum", "{:.0f}"),
                ("off-language", "off_language_rate", "{:.1%}"), ("perplexity", "perplexity_mean", "{:.2f}"),
                ("GPU GB", "gpu_memory_gb_peak", "{:.1f}")]


def tech_table(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    names = access.models(summary)
    if not names:
        return "no models"
    cols = [c for c in TECH_COLUMNS if access.present(summary, c[1])]
    cells = [[name] + ["—" if (v := access.value(summary, name, p)) is None else fmt.format(v) for _, p, fmt in cols]
             for name in names]
    labels = ["model"] + [c[0] for c in cols]
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


tech_table.plot_name = "tech_stats"  # type: ignore[attr-defined]


def latency(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    per = _by_model(table, "latency_s")
    names = [n for n in access.models(summary) if per.get(n)]
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


def _bar_drawer(field_name: str, column: str, label: str):
    def draw(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
        names = [n for n in access.models(summary) if access.value(summary, n, field_name) is not None]
        if not names:
            why = next((m.get("unavailable", {}).get(field_name) for m in summary["models"].values()
                        if m.get("unavailable", {}).get(field_name)), None)
            return f"{field_name} not in this run" + (f" ({why})" if why else "")
        per = _by_model(table, column)
        means = [access.value(summary, n, field_name) for n in names]
        errs = [_ci95_of_mean(per.get(n, [])) for n in names]
        fig, ax = plt.subplots(figsize=(7.5, _height(len(names))))
        y = np.arange(len(names))
        ax.barh(y, means, xerr=errs, capsize=3, color="#4c78a8", alpha=0.85)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        for yi, m in zip(y, means, strict=True):
            ax.annotate(f"{m:.3f}", (m, yi), xytext=(4, -9), textcoords="offset points", fontsize=8)
        ax.set_xlabel(f"{label}: mean per model, error bars = 95% interval of the mean over generations")
        ax.set_title(label)
        return fig, label

    draw.plot_name = f"bar_{column}"  # type: ignore[attr-defined]
    return draw


def judge_forest(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    names = [n for n in access.models(summary) if access.value(summary, n, "judge.ratio_mean") is not None]
    if not names:
        return "judge not run"
    fig, ax = plt.subplots(figsize=(7.5, _height(len(names))))
    for i, n in enumerate(names):
        m = access.value(summary, n, "judge.ratio_mean")
        ci = access.interval(summary, n, "judge.ratio_ci95")
        naive = access.interval(summary, n, "judge.ratio_ci95_naive")
        if naive:
            ax.plot(naive, [i + 0.18] * 2, color="#bbbbbb", lw=2, label="naive 95% interval" if i == 0 else None)
        if ci:
            ax.plot(ci, [i, i], color="#4c78a8", lw=3, label="95% interval (bootstrap over screenshots)"
                    if i == 0 else None)
        ax.plot([m], [i], "o", color="#1f3b5c")
        ax.annotate(f"{m:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""), (m, i), xytext=(6, 5),
                    textcoords="offset points", fontsize=8)
    ax.axvline(1.0, color="#c0392b", ls="--", lw=1, label="reference = 1.0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("judge ratio: candidate score / reference score")
    ax.margins(x=0.15, y=0.25)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22 if len(names) < 4 else -0.12), ncol=3, fontsize=7,
              frameon=False)
    ax.set_title("Judge ratio per model with 95% intervals")
    return fig, "Judge ratio (forest plot)"


judge_forest.plot_name = "judge_ratio"  # type: ignore[attr-defined]


def decision(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    cands = access.models(summary, role="candidate") or access.models(summary)
    q = access.quality_field(summary, cands)
    if q is None:
        return "no quality measure (judge ratio, chrF or ROUGE-1) in this run"
    qpath, qlabel = q
    names = [n for n in cands if access.value(summary, n, qpath) is not None
             and access.value(summary, n, "chars_per_s_mean") is not None]
    if not names:
        return "no model has both quality and speed"
    mem = {n: access.value(summary, n, "gpu_memory_gb_peak") for n in names}
    with_mem = all(v is not None for v in mem.values())
    points = {n: (access.value(summary, n, qpath), access.value(summary, n, "chars_per_s_mean"))
              + ((-mem[n],) if with_mem else ()) for n in names}
    front = set(pareto_front(points))  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [points[n][1] for n in names]
    ys = [points[n][0] for n in names]
    if with_mem:
        top = max(mem.values()) or 1.0  # type: ignore[type-var]
        sizes = [60 + 600 * (mem[n] or 0) / top for n in names]
    else:
        sizes = [70] * len(names)
    colors = ["#d95f02" if n in front else "#7f7f7f" for n in names]
    ax.scatter(xs, ys, s=sizes, c=colors, alpha=0.75, edgecolors="black", linewidths=0.5)
    for n, x, y in zip(names, xs, ys, strict=True):
        label = n + (f" ({mem[n]:.1f} GB)" if with_mem else "")
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=7)
    front_pts = sorted((points[n][1], points[n][0]) for n in names if n in front)
    if len(front_pts) > 1 and not with_mem:  # on two axes the front is a line; on three it is a set
        ax.plot([p[0] for p in front_pts], [p[1] for p in front_pts], color="#d95f02", lw=1, ls=":")
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel("speed: characters per second (higher is better)")
    ax.set_ylabel(f"quality: {qlabel} (higher is better)")
    if qpath == "judge.ratio_mean":
        ax.axhline(1.0, color="#c0392b", ls="--", lw=0.8)
    note = "marker size = peak GPU memory; " if with_mem else "GPU memory not measured; "
    ax.set_title(f"Quality vs speed — orange: Pareto front ({note.rstrip('; ')})", fontsize=10)
    return fig, "Decision chart: quality vs speed" + (" and GPU memory" if with_mem else "")


decision.plot_name = "decision"  # type: ignore[attr-defined]


def paired_differences(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    pairs = [p for p in access.pairwise(summary) if access.family(p["a"]) == access.family(p["b"])]
    if not pairs:
        return "no paired comparisons between variants of one model (summary has no `pairwise` for a family)"
    fig, ax = plt.subplots(figsize=(7.5, _height(len(pairs))))
    for i, p in enumerate(pairs):
        if p["ci95"]:
            ax.plot(p["ci95"], [i, i], color="#4c78a8", lw=3)
        ax.plot([p["diff"]], [i], "o", color="#1f3b5c")
        txt = f"{p['diff']:+.3f}" + (f" [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]" if p["ci95"] else "")
        if p["p_a_better"] is not None:
            txt += f", P(A>B)={p['p_a_better']:.2f}"
        ax.annotate(txt, (p["diff"], i), xytext=(6, 5), textcoords="offset points", fontsize=7)
    ax.axvline(0.0, color="#c0392b", ls="--", lw=1)
    ax.set_yticks(range(len(pairs)), [f"{p['a']}\n− {p['b']}" for p in pairs], fontsize=7)
    ax.invert_yaxis()
    metric = {"judge.ratio": "judge ratio", "judge.ratio_mean": "judge ratio"}.get(pairs[0]["metric"],
                                                                              pairs[0]["metric"] or "judge ratio")
    ax.set_xlabel(f"paired difference in {metric} on the same screenshots (A − B), 95% interval")
    ax.set_title("Variants of one model, compared on the same screenshots")
    return fig, "Paired differences between variants"


paired_differences.plot_name = "paired_differences"  # type: ignore[attr-defined]


def stability(summary: dict[str, Any], table: list[dict[str, Any]]) -> tuple[Any, str] | str:
    names = [n for n in access.models(summary) if access.value(summary, n, "consistency_mean") is not None]
    if not names:
        return "consistency not measured (needs repeats > 1 and the consistency metric)"
    per = _by_model(table, "consistency")
    fig, ax = plt.subplots(figsize=(7.5, _height(len(names))))
    y = np.arange(len(names))
    vals = [access.value(summary, n, "consistency_mean") for n in names]
    ax.barh(y, vals, xerr=[_ci95_of_mean(per.get(n, [])) for n in names], capsize=3, color="#59a14f", alpha=0.85)
    distinct = {n: access.value(summary, n, "distinct_answer_rate") for n in names}
    for yi, n, v in zip(y, names, vals, strict=True):
        d = distinct[n]
        ax.annotate(f"{v:.1f}" + (f"  (distinct answers {d:.0%})" if d is not None else ""), (v, yi),
                    xytext=(4, -9), textcoords="offset points", fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 118)
    ax.set_xlabel("consistency across repeats of one screenshot: chrF++ between repeats (100 = identical)")
    ax.set_title("Stability per model")
    return fig, "Stability across repeats"
