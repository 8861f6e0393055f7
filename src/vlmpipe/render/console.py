"""The compact ranking table printed at the end of ``run``/``demo``/``score``/``report``, and the compare table."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table

from vlmpipe.analysis import access

#: (title, summary path, format); a column is shown when any model has it.
COLUMNS = [("n", "n", "{:.0f}"), ("err", "n_errors", "{:.0f}"), ("judge [95%]", "judge.ratio_mean", "{:.3f}"),
           ("chrF", "chrf_mean", "{:.1f}"), ("R-1", "rouge1_f_mean", "{:.2f}"),
           ("facts", "fact_recall_mean", "{:.2f}"), ("inv.num", "hallucinated_number_rate", "{:.0%}"),
           ("off-lang", "off_language_rate", "{:.0%}"), ("p50 s", "latency_s.p50", "{:.2f}"),
           ("max s", "latency_s.max", "{:.1f}"), ("ch/s", "chars_per_s_mean", "{:.0f}"),
           ("GPU GB", "gpu_memory_gb_peak", "{:.1f}")]


#: Which columns go first when the terminal is too narrow (the last listed go first).
KEEP_ORDER = ["judge.ratio_mean", "chrf_mean", "off_language_rate", "hallucinated_number_rate", "chars_per_s_mean",
              "latency_s.p50", "gpu_memory_gb_peak", "n_errors", "latency_s.max", "fact_recall_mean",
              "rouge1_f_mean", "n"]


def ranking_table(summary: dict[str, Any], width: int | None = None) -> Table:
    """Models ranked by the run's quality measure (judge ratio, else chrF, else ROUGE-1), best first.

    With ``width``, the least important columns are left out until the table fits (never the model names).
    """
    run = summary.get("run", {})
    names = access.models(summary)
    q = access.quality_field(summary, access.models(summary, role="candidate") or names)
    if q:
        names = sorted(names, key=lambda n: -(access.value(summary, n, q[0]) or float("-inf")))
    items, repeats = run.get("items"), run.get("repeats")
    title = (f"run {run.get('name')}: {items} item{'' if items == 1 else 's'} × {repeats} "
             f"repeat{'' if repeats == 1 else 's'}")
    if q:
        title += f", ranked by {q[1]}"
    cols = [c for c in COLUMNS if access.present(summary, c[1], names)]
    cells = {c[1]: [_cell(summary, n, c[1], c[2]) for n in names] for c in cols}
    if width:
        def need(cs: list[tuple[str, str, str]]) -> int:
            model_w = max([len("model"), *(len(n) for n in names)])
            return model_w + 3 + sum(max(len(t), *(len(x) for x in cells[p])) + 3 for t, p, _ in cs)

        for path in reversed(KEEP_ORDER):
            if need(cols) <= width:
                break
            cols = [c for c in cols if c[1] != path]
    # a narrow table (a run with failed models only) must not wrap its title over several lines
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False,
                  min_width=min(len(title), width) if width else len(title))
    table.add_column("model", justify="left", no_wrap=True)
    for t, _, _ in cols:
        table.add_column(t, justify="right", no_wrap=True)
    for i, n in enumerate(names):
        table.add_row(n, *(cells[p][i] for _, p, _ in cols))
    return table


def failures_note(summary: dict[str, Any]) -> str | None:
    """What made a run "completed with failures" (exit code 1), in one line; ``None`` when nothing failed."""
    models = summary.get("models", {}).values()
    counts = [(summary.get("run", {}).get("items_failed") or 0, "screenshot(s) could not be used"),
              (sum(m.get("n_errors") or 0 for m in models), "generation(s) failed"),
              (sum((m.get("judge") or {}).get("n_failed") or 0 for m in models), "judgement(s) failed")]
    parts = [f"{n} {what}" for n, what in counts if n]
    if not parts:
        return None
    return f"completed with failures: {', '.join(parts)} (counted per model in summary.json and the report)"


def _cell(summary: dict[str, Any], name: str, path: str, fmt: str) -> str:
    v = access.value(summary, name, path)
    text = "—" if v is None else fmt.format(v)
    if path == "judge.ratio_mean" and (ci := access.interval(summary, name)):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def compare_table(result: dict[str, Any], fields: list[str] | None = None) -> Group:
    """Per model both runs have, one row per field: A, B, B − A and whether the 95% intervals overlap.

    One small table per model, titled with its name, so that neither the name nor a field is cut to
    "Qwen2-VL-7B-Ins…" in an 80-column terminal.
    """
    tables = []
    for model, metrics in result["models"].items():
        table = Table(title=f"{model}: B − A", title_justify="left")
        table.add_column("field", justify="left", overflow="fold")
        for t in ("A", "B", "B − A", "95% intervals"):
            table.add_column(t, justify="right", no_wrap=True)
        for f, v in metrics.items():
            if fields and f not in fields:
                continue
            ov = v.get("intervals_overlap")
            table.add_row(f, f"{v['a']:.4g}", f"{v['b']:.4g}", f"{v['diff']:+.4g}",
                          "" if ov is None else ("overlap" if ov else "do not overlap"))
        tables.append(table)
    return Group(*tables)
