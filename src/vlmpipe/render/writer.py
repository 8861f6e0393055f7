"""Writes ``report/`` of a run directory: summary.json (with findings), the tables (CSV and xlsx), the plots and
index.html — every view from the typed summary that aggregation produced and what the store holds."""

from __future__ import annotations

import logging
from pathlib import Path

from vlmpipe.analysis.aggregate import build_summary, generation_table
from vlmpipe.analysis.findings import derive_findings
from vlmpipe.analysis.judge import human_scores, plan_judgements
from vlmpipe.analysis.summary import RunSummary
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.render.bench_plot import plot_bench
from vlmpipe.render.html import render_index
from vlmpipe.render.judge_files import write_judge_files
from vlmpipe.render.plots import Plot, write_plots
from vlmpipe.render.tables import generation_rows, write_csv, write_workbook

log = logging.getLogger("vlmpipe.render")


def write_report(cfg: RunConfig, store: Store, run_dir: Path) -> RunSummary:
    """Write summary.json, the CSVs, results.xlsx, the plots and index.html; returns the summary."""
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(cfg, store)
    summary.findings = derive_findings(summary)
    table = generation_table(store)
    items = store.items()
    by_id = {i["id"]: i for i in items}
    judgements = plan_judgements(store)
    (out / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    header, rows = generation_rows(table)
    write_csv(out / "generations.csv", header, rows)
    sheets = write_workbook(out / "results.xlsx", summary, table, by_id, judgements)
    for name, (h, r) in sheets.items():
        if name not in ("generations", "judgements"):
            write_csv(out / f"{name}.csv", h, r)
    write_judge_files(store, out)  # judgements.csv (when judged) and references.csv
    plots = write_plots(summary, table, out)
    if summary.bench and plot_bench(summary.bench, out / "bench.png"):
        plots.plots.append(Plot("bench", "Serving benchmark (vlmpipe bench)", out / "bench.png", wide=True))
    human = human_scores(store, store.judge_meta())
    (out / "index.html").write_text(render_index(cfg, summary, items, table, plots.plots, judgements, human),
                                    encoding="utf-8")
    return summary
