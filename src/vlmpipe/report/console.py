"""The compact ranking table printed at the end of ``run``/``demo``/``score``/``report``, and the compare table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from . import data

#: (title, summary path, format); a column is shown when any model has it.
COLUMNS = [("n", "n", "{:.0f}"), ("errors", "n_errors", "{:.0f}"), ("judge ratio [95%]", "judge.ratio_mean", "{:.3f}"),
           ("chrF", "chrf_mean", "{:.1f}"), ("ROUGE-1", "rouge1_f_mean", "{:.3f}"),
           ("fact recall", "fact_recall_mean", "{:.2f}"), ("invented", "hallucinated_number_rate", "{:.0%}"),
           ("off-lang", "off_language_rate", "{:.0%}"), ("latency p50 s", "latency_s.p50", "{:.2f}"),
           ("max s", "latency_s.max", "{:.1f}"), ("chars", "length_chars_mean", "{:.0f}"),
           ("chars/s", "chars_per_s_mean", "{:.0f}"), ("GPU GB", "gpu_memory_gb_peak", "{:.1f}")]


def ranking_table(summary: dict[str, Any]) -> Table:
    """Models ranked by the run's quality measure (judge ratio, else chrF, else ROUGE-1), best first."""
    run = summary.get("run", {})
    names = data.models(summary)
    q = data.quality_field(summary, data.models(summary, role="candidate") or names)
    if q:
        names = sorted(names, key=lambda n: -(data.value(summary, n, q[0]) or float("-inf")))
    title = f"run {run.get('name')}: {run.get('items')} items × {run.get('repeats')} repeats"
    if q:
        title += f", ranked by {q[1]}"
    table = Table(title=title)
    cols = [c for c in COLUMNS if data.present(summary, c[1], names)]
    table.add_column("model", justify="left")
    for t, _, _ in cols:
        table.add_column(t, justify="right")
    for n in names:
        cells = [n]
        for _, path, fmt in cols:
            v = data.value(summary, n, path)
            text = "—" if v is None else fmt.format(v)
            if path == "judge.ratio_mean" and (ci := data.interval(summary, n)):
                text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append(text)
        table.add_row(*cells)
    return table


def compare_table(result: dict[str, Any], fields: list[str] | None = None) -> Table:
    """One row per (model, field) both runs have: A, B, B − A and whether the 95% intervals overlap."""
    table = Table(title="B − A per model and field")
    for t in ("model", "field", "A", "B", "B − A", "95% intervals"):
        table.add_column(t, justify="left" if t in ("model", "field") else "right")
    for model, metrics in result["models"].items():
        for f, v in metrics.items():
            if fields and f not in fields:
                continue
            ov = v.get("intervals_overlap")
            table.add_row(model, f, f"{v['a']:.4g}", f"{v['b']:.4g}", f"{v['diff']:+.4g}",
                          "" if ov is None else ("overlap" if ov else "do not overlap"))
    return table
