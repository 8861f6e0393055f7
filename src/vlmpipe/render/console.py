"""The compact ranking table printed at the end of ``run``/``demo``/``score``/``report``, and the compare table.

Its columns are the catalogue's fields with a ``console`` priority (:mod:`vlmpipe.analysis.catalogue`), in catalogue
order; a column is shown when any model has it, and in a narrow terminal the lowest-priority ones go first.
"""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table

from vlmpipe.analysis.catalogue import console_fields
from vlmpipe.analysis.compare import Comparison
from vlmpipe.analysis.summary import RunSummary
from vlmpipe.core.fields import SummaryField


def _title(f: SummaryField, summary: RunSummary) -> str:
    ci = f.quality is not None and any(m.interval(f.key) for m in summary.models.values())
    return f"{f.console_title} [95%]" if ci else f.console_title


def ranking_table(summary: RunSummary, width: int | None = None) -> Table:
    """Models ranked by the run's quality measure (judge ratio, else chrF, else ROUGE-1), best first.

    With ``width``, the least important columns are left out until the table fits (never the model names).
    """
    run = summary.run
    names = summary.ranked()
    q = summary.quality_field()
    title = (f"run {run.name}: {run.items} item{'' if run.items == 1 else 's'} × {run.repeats} "
             f"repeat{'' if run.repeats == 1 else 's'}")
    if q:
        title += f", ranked by {q.label}"
    cols = [f for f in console_fields() if summary.present(f.key, names)]
    cells = {f.key: [_cell(summary, n, f, q) for n in names] for f in cols}
    titles = {f.key: _title(f, summary) if f is q else f.console_title for f in cols}
    if width:
        def need(cs: list[SummaryField]) -> int:
            model_w = max([len("model"), *(len(n) for n in names)])
            return model_w + 3 + sum(max(len(titles[f.key]), *(len(x) for x in cells[f.key])) + 3 for f in cs)

        for f in sorted(cols, key=lambda f: -(f.console or 0)):  # least important first
            if need(cols) <= width:
                break
            cols = [c for c in cols if c is not f]
    # a narrow table (a run with failed models only) must not wrap its title over several lines
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False,
                  min_width=min(len(title), width) if width else len(title))
    table.add_column("model", justify="left", no_wrap=True)
    for f in cols:
        table.add_column(titles[f.key], justify="right", no_wrap=True)
    for i, n in enumerate(names):
        table.add_row(n, *(cells[f.key][i] for f in cols))
    return table


def failures_note(summary: RunSummary) -> str | None:
    """What made a run "completed with failures" (exit code 1), in one line; ``None`` when nothing failed."""
    models = summary.models.values()
    counts = [(summary.run.items_failed or 0, "screenshot(s) could not be used"),
              (sum(m.n_errors for m in models), "generation(s) failed"),
              (sum(m.judge.n_failed for m in models if m.judge), "judgement(s) failed")]
    parts = [f"{n} {what}" for n, what in counts if n]
    if not parts:
        return None
    return f"completed with failures: {', '.join(parts)} (counted per model in summary.json and the report)"


def _cell(summary: RunSummary, name: str, f: SummaryField, quality: SummaryField | None) -> str:
    text = f.format(summary.value(name, f.key))
    if f is quality and (ci := summary.models[name].interval(f.key)):
        text += f" [{f.format(ci[0])}, {f.format(ci[1])}]"
    return text


def compare_table(result: Comparison, fields: list[str] | None = None) -> Group:
    """Per model both runs have, one row per field: A, B, B − A and whether the 95% intervals overlap.

    One small table per model, titled with its name, so that neither the name nor a field is cut to
    "Qwen2-VL-7B-Ins…" in an 80-column terminal.
    """
    tables = []
    for model, metrics in result.models.items():
        table = Table(title=f"{model}: B − A", title_justify="left")
        table.add_column("field", justify="left", overflow="fold")
        for t in ("A", "B", "B − A", "95% intervals"):
            table.add_column(t, justify="right", no_wrap=True)
        for f, v in metrics.items():
            if fields and f not in fields:
                continue
            ov = v.intervals_overlap
            table.add_row(f, f"{v.a:.4g}", f"{v.b:.4g}", f"{v.diff:+.4g}",
                          "" if ov is None else ("overlap" if ov else "do not overlap"))
        tables.append(table)
    return Group(*tables)
