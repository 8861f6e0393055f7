"""Writes ``report/`` of a run directory: summary.json (with findings), the tables (CSV and xlsx), the plots and
index.html — every view from the typed summary that aggregation produced and what the store holds.

Nothing here holds the run: the summary is accumulated from one streamed pass over the store, the per-generation
tables and the gallery from one further pass each (:mod:`vlmpipe.render.tables`, :mod:`vlmpipe.render.gallery`), so
memory stays flat as runs grow. On a large run (``PARALLEL_MIN_ROWS``) the tables and the gallery are made by two
worker processes while this one builds the summary and the plots: the three passes use the machine's cores.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from vlmpipe.analysis.aggregate import build_summary, iter_table
from vlmpipe.analysis.findings import derive_findings
from vlmpipe.analysis.judge import human_scores, plan_judgements
from vlmpipe.analysis.summary import RunSummary
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY
from vlmpipe.render.bench_plot import plot_bench
from vlmpipe.render.html import GALLERY_PAGE, PACK_ABOVE, gallery_view, write_index
from vlmpipe.render.judge_files import write_judge_files
from vlmpipe.render.plots import Plot, write_plots
from vlmpipe.render.tables import SheetParts, write_row_tables, write_workbook
from vlmpipe.render.xlsx import MAX_ROWS

log = logging.getLogger("vlmpipe.render")

#: Runs with at least this many generations have their tables and gallery made by worker processes.
PARALLEL_MIN_ROWS = 4000


def write_report(cfg: RunConfig, store: Store, run_dir: Path, *, max_sheet_rows: int = MAX_ROWS,
                 gallery_page: int = GALLERY_PAGE, pack_above: int = PACK_ABOVE,
                 parallel_min_rows: int = PARALLEL_MIN_ROWS) -> RunSummary:
    """Write summary.json, the CSVs, results.xlsx, the plots, index.html and report/images/; returns the summary.

    ``max_sheet_rows``: rows per workbook sheet (Excel's limit; longer sheets are split); ``gallery_page``: cards per
    page of the gallery; ``pack_above``: generations above which only the first page's cards are HTML, the others
    packed; ``parallel_min_rows``: generations from which worker processes make the tables and the gallery."""
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    items = store.items()
    by_id = {i["id"]: i for i in items}
    judgements = plan_judgements(store)
    human = human_scores(store, store.judge_meta())
    models = [m["name"] for m in store.models()]  # the summary's order
    images = out / "images"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = store.count_planned()
    parallel = cores > 1 and n >= parallel_min_rows
    static = None if n <= pack_above else gallery_page
    with tempfile.TemporaryDirectory(prefix=".sheets-", dir=out) as tmp:
        parts = Path(tmp)
        jobs: dict[str, Future[Any]] = {}
        pool = _pool() if parallel else None
        if pool is not None:
            names = sorted(REGISTRY)
            try:
                payload = pickle.dumps((cfg, models, items, judgements, human))
            except Exception as err:  # e.g. a config holding a class defined at run time
                log.info("report made in this process: the config cannot be sent to workers (%s)", err)
                payload = None
            if payload is not None:
                jobs["tables"] = pool.submit(_tables_job, str(store.path), str(out), by_id, str(parts),
                                             max_sheet_rows, names)
                jobs["gallery"] = pool.submit(_gallery_job, str(store.path), payload, str(images), gallery_page,
                                              static, names)
        try:
            summary = build_summary(cfg, store)
            summary.findings = derive_findings(summary)
            (out / "summary.json").write_text(summary.to_json(), encoding="utf-8")
            plots = write_plots(summary, store.latencies(), out)
            if summary.bench and plot_bench(summary.bench, out / "bench.png"):
                plots.plots.append(Plot("bench", "Serving benchmark (vlmpipe bench)", out / "bench.png", wide=True))
            write_judge_files(store, out)  # judgements.csv (when judged) and references.csv
            tables: list[SheetParts] | None = _result(jobs.get("tables"), "tables")
            if tables is None:
                tables = write_row_tables(out, store, by_id, parts, max_rows=max_sheet_rows)
            write_workbook(out, summary, judgements, by_id, tables, max_rows=max_sheet_rows)
            gallery = _result(jobs.get("gallery"), "gallery")
            if gallery is None:
                gallery = gallery_view(cfg, models, items, iter_table(store, order="screenshot"), judgements, human,
                                       images_dir=images, page_size=gallery_page, static_cards=static)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        write_index(out / "index.html", cfg, summary, items, None, plots.plots, judgements, human, gallery=gallery)
    return summary


# --- worker processes ---------------------------------------------------------------------------------------

def _pool() -> ProcessPoolExecutor | None:
    try:
        return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
    except Exception as err:  # pragma: no cover - no processes here
        log.info("report made in this process: %s", err)
        return None


def _result(job: Future[Any] | None, what: str) -> Any:
    """A worker's result, or ``None`` (made here instead) when it failed or could not run."""
    if job is None:
        return None
    try:
        return job.result()
    except Exception as err:  # a worker that died, or one that lacks a metric registered at run time
        log.warning("report: the %s were made in this process: the worker failed (%s)", what, err)
        return None


def _same_metrics(names: list[str]) -> None:
    if sorted(REGISTRY) != names:
        raise RuntimeError(f"this process knows the metrics {sorted(REGISTRY)}, the report's {names}")


def _tables_job(db: str, out: str, items: dict[str, dict[str, Any]], parts: str, max_rows: int,
                names: list[str]) -> list[SheetParts]:
    _same_metrics(names)
    with Store(db) as store:
        return write_row_tables(Path(out), store, items, Path(parts), max_rows=max_rows)


def _gallery_job(db: str, payload: bytes, images: str, page: int, static: int | None,
                 names: list[str]) -> dict[str, Any]:
    _same_metrics(names)
    cfg, models, items, judgements, human = pickle.loads(payload)
    with Store(db) as store:
        return gallery_view(cfg, models, items, iter_table(store, order="screenshot"), judgements, human,
                            images_dir=Path(images), page_size=page, static_cards=static)
