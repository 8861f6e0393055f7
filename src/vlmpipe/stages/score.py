"""The score stage: runs every enabled, available metric over the run's successful generations.

Results are cached in the store per generation and metric; a metric is re-run only for rows it has not
scored, or for all rows when its version (scorer, settings, references) changed.

The rows are read from the store and scored in chunks, never held whole, so memory stays flat as runs grow. Each
metric's :meth:`~vlmpipe.metrics.base.Metric.prepare` runs first (the grounding metric reads the screenshots' text
there, once per distinct screenshot). The metrics that declare ``parallel`` (the model-free ones) then score the
chunks in worker processes, one per core, when the run is large enough for that to pay (``POOL_MIN_ROWS``); the
others (model-based: perplexity, BLEURT, BERTScore, plugins) score them in this process, one metric at a time.
Last, each (model, item)'s consistency across repeats (chrF++ between every two repeats) and distinct share are
computed where the texts changed, in the same workers, and kept in the store for the summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from vlmpipe.core.config import ConfigError, RunConfig
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY, Metric, ScoreContext
from vlmpipe.metrics.overlap import consistency, distinct_share, texts_key

log = logging.getLogger("vlmpipe.score")

#: Metrics left out of the default set (``metrics.enabled`` unset), e.g. ``perplexity`` for quick runs.
EXCLUDE_ENV = "VLMPIPE_DEFAULT_METRICS_EXCLUDE"
#: Worker processes for the ``parallel`` metrics (default: one per core; 1: score in this process).
WORKERS_ENV = "VLMPIPE_SCORE_WORKERS"
#: Rows per chunk handed to the ``parallel`` metrics, and to the others (which batch inside a chunk).
CHUNK = 500
SERIAL_CHUNK = 5000
#: Fewer successful rows than this are scored in this process: starting workers (~2 s each) would not pay.
POOL_MIN_ROWS = 4000

Triple = tuple[str, str, float | None, Any]  # (generation key, column, value, detail)


def enabled_metrics(cfg: RunConfig) -> list[Metric]:
    """The metrics a run computes: ``metrics.enabled``, or every default one not excluded by the environment."""
    names = cfg.metrics.enabled
    if names is None:
        excluded = {n.strip() for n in os.environ.get(EXCLUDE_ENV, "").split(",") if n.strip()}
        names = [n for n, cls in REGISTRY.items() if cls.default_enabled and n not in excluded]
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"metrics.enabled: unknown metric(s) {unknown}; known: {sorted(REGISTRY)}")
    unknown = [n for n in cfg.metrics.settings if n not in REGISTRY]  # a typo here was silently ignored
    if unknown:
        raise ConfigError(f"metrics.settings: unknown metric(s) {unknown}; known: {sorted(REGISTRY)}")
    return [REGISTRY[n]() for n in names]


def _references_hash(items: dict[str, dict[str, Any]]) -> str:
    payload = json.dumps(
        sorted((k, v.get("reference"), v.get("facts")) for k, v in items.items()), ensure_ascii=False
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def default_workers() -> int:
    """``VLMPIPE_SCORE_WORKERS``, else the cores this process may use."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"{WORKERS_ENV}={env!r}: expected a number of worker processes") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8))


def score_run(cfg: RunConfig, store: Store, *, show_progress: bool = True, workers: int | None = None,
              pool_min_rows: int = POOL_MIN_ROWS) -> dict[str, str]:
    """Score the current plan's generations; returns ``{column: why unavailable}``.

    ``workers``: processes for the ``parallel`` metrics (default :func:`default_workers`); they are used when the
    run has at least ``pool_min_rows`` rows to score."""
    items = {i["id"]: i for i in store.items()}
    ctx = ScoreContext(cfg=cfg, items=items, store=store, show_progress=show_progress)
    unavailable: dict[str, str] = {}
    refs_hash = _references_hash(items)
    n_rows = store.count_planned(ok=True)
    todo: list[tuple[Metric, bool, str]] = []  # (metric, only its unscored rows, version)
    for metric in enabled_metrics(cfg):
        version = metric.version(ctx)  # cheap: names the scorer without loading it
        if metric.needs & {"reference", "facts"}:
            version += f"+refs:{refs_hash}"
        current = store.get_meta(f"metric_version:{metric.name}") == version
        if current and (not n_rows or not store.count_unscored(metric.columns)):
            continue  # every row has this version's scores: no model to load (a resume, a re-score)
        if not n_rows:  # no successful generation at all: nothing to score, no model to load
            for col in metric.columns:
                unavailable[col] = "no successful generation to score"
            continue
        why = metric.unavailable(ctx)
        if why:
            for col in metric.columns:
                unavailable[col] = why
            continue
        todo.append((metric, current, version))
    if todo:
        scored_items = store.planned_items(ok=True)
        for metric, _current, _version in todo:
            metric.prepare(ctx, scored_items)
        parallel = [t for t in todo if t[0].parallel]
        n_workers = default_workers() if workers is None else max(1, workers)
        use_pool = n_workers > 1 and n_rows >= pool_min_rows and bool(parallel)
        label = "score " + ", ".join(m.name for m, _c, _v in parallel)
        try:
            with _executor(ctx, [m for m, _c, _v in parallel], n_workers if use_pool else 1) as pool:
                if parallel:
                    with progress_bar(label, n_rows, enabled=show_progress) as advance:
                        _score_chunks(store, ctx, parallel, CHUNK, pool, advance, max_pending=2 * n_workers)
                _score_stability(store, pool, max_pending=2 * n_workers)
        except BrokenProcessPool as err:  # e.g. a script without `if __name__ == "__main__":` re-run by a worker
            log.warning("scoring in this process: the worker processes failed (%s)", err)
            if parallel:
                with progress_bar(label, n_rows, enabled=show_progress) as advance:
                    _score_chunks(store, ctx, parallel, CHUNK, None, advance)
            _score_stability(store, None)
        for entry in (t for t in todo if not t[0].parallel):
            with progress_bar(f"score {entry[0].name}", n_rows, enabled=show_progress) as advance:
                _score_chunks(store, ctx, [entry], SERIAL_CHUNK, None, advance)
        for metric, _current, version in todo:
            store.set_meta(f"metric_version:{metric.name}", version)
    else:
        _score_stability(store, None)
    enabled = {m.name: m for m in enabled_metrics(cfg)}
    for name in REGISTRY:  # which scorer/checkpoint produced each metric, for summary.json
        store.set_meta(f"metric_info:{name}", enabled[name].summary_info(ctx) if name in enabled else {})
    store.set_meta("unavailable", unavailable)
    return unavailable


def _score_chunks(store: Store, ctx: ScoreContext, metrics: list[tuple[Metric, bool, str]], chunk: int,
                  pool: ProcessPoolExecutor | None, advance: Any, max_pending: int = 2) -> None:
    """Score every chunk of the successful rows with ``metrics`` (in ``pool``, or here), writing each chunk's
    scores as it is done. A metric marked current scores only the rows that lack one of its columns."""
    pending: dict[Future[list[Triple]], int] = {}  # in the workers: rows in the chunk

    def collect(block: bool) -> None:
        while pending and (block or len(pending) >= max_pending):
            done, _ = wait(pending, return_when="FIRST_COMPLETED")
            for f in done:
                store.put_scores(f.result())
                advance(pending.pop(f))

    for rows in store.iter_generations(ok=True, chunk=chunk):
        plan: list[tuple[str, list[int] | None]] = []
        for metric, only_unscored, _version in metrics:
            if only_unscored:
                missing = store.unscored_keys([r["key"] for r in rows], metric.columns)
                idx = [i for i, r in enumerate(rows) if r["key"] in missing]
                if idx:
                    plan.append((metric.name, idx))
            else:
                plan.append((metric.name, None))
        if not plan:
            advance(len(rows))
            continue
        if pool is None:
            store.put_scores(_score_here(rows, plan, ctx, {m.name: m for m, _c, _v in metrics}, advance))
            continue
        pending[pool.submit(_worker_score, rows, plan)] = len(rows)
        collect(block=False)
    collect(block=True)


def _score_here(rows: list[dict[str, Any]], plan: list[tuple[str, list[int] | None]], ctx: ScoreContext,
                metrics: dict[str, Metric], advance: Any = None) -> list[Triple]:
    """Score one chunk in this process: every ``(metric, row indices or all)`` of ``plan``."""
    out: list[Triple] = []
    for name, idx in plan:
        subset = rows if idx is None else [rows[i] for i in idx]
        reported = 0

        def report(n: int = 1) -> None:
            nonlocal reported
            reported += n
            if advance is not None and len(plan) == 1:
                advance(n)

        ctx.progress = report
        try:
            results = metrics[name].score(subset, ctx)
        finally:
            ctx.progress = None
        out += [(row["key"], col, value, detail)
                for row, result in zip(subset, results, strict=True) for col, (value, detail) in result.items()]
        if advance is not None and len(plan) == 1:
            advance(max(0, len(rows) - reported))
    if advance is not None and len(plan) != 1:
        advance(len(rows))
    return out


#: (model, item) groups per stability job.
STABILITY_BATCH = 200
StabilityRow = tuple[str, str, str, float | None, float | None]


def _stability_rows(groups: list[tuple[str, str, str, list[str]]]) -> list[StabilityRow]:
    return [(model, item, key, consistency(texts), distinct_share(texts)) for model, item, key, texts in groups]


def _score_stability(store: Store, pool: ProcessPoolExecutor | None, max_pending: int = 2) -> None:
    """Each (model, item) with two or more successful repeats: its consistency and distinct share, computed (in
    ``pool`` when given) where the store has none for its current texts."""
    stored = store.stability()
    pending: list[Future[list[StabilityRow]]] = []
    batch: list[tuple[str, str, str, list[str]]] = []

    def group_done(model: str, item: str, texts: list[str]) -> None:
        if len(texts) < 2:
            return
        key = texts_key(texts)
        if stored.get((model, item), ("",))[0] != key:
            batch.append((model, item, key, texts))
        if len(batch) >= STABILITY_BATCH:
            send()

    def send() -> None:
        nonlocal batch
        if not batch:
            return
        if pool is None:
            store.put_stability(_stability_rows(batch))
        else:
            pending.append(pool.submit(_stability_rows, batch))
            while len(pending) >= max_pending:
                done, _ = wait(pending, return_when="FIRST_COMPLETED")
                for f in done:
                    pending.remove(f)
                    store.put_stability(f.result())
        batch = []

    current: tuple[str, str] | None = None
    texts: list[str] = []
    for rows in store.iter_generations(ok=True, chunk=CHUNK):
        for r in rows:
            if (r["model"], r["item"]) != current:
                if current is not None:
                    group_done(*current, texts)
                current, texts = (r["model"], r["item"]), []
            texts.append(r["text"])
    if current is not None:
        group_done(*current, texts)
    send()
    for f in pending:
        store.put_stability(f.result())


# --- worker processes -----------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(payload: bytes) -> None:
    cfg, items, names = pickle.loads(payload)
    _WORKER["ctx"] = ScoreContext(cfg=cfg, items=items)
    _WORKER["metrics"] = {n: REGISTRY[n]() for n in names}


def _worker_score(rows: list[dict[str, Any]], plan: list[tuple[str, list[int] | None]]) -> list[Triple]:
    return _score_here(rows, plan, _WORKER["ctx"], _WORKER["metrics"])


@contextmanager
def _executor(ctx: ScoreContext, metrics: list[Metric], workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes that score with ``metrics`` (a fresh interpreter each: ``spawn``), or ``None`` to score
    here (one worker, or a config that cannot be sent to another process)."""
    if workers <= 1:
        yield None
        return
    try:
        payload = pickle.dumps((ctx.cfg, ctx.items, [m.name for m in metrics]))
    except Exception as err:  # e.g. a config holding a class defined at run time
        log.info("scoring in this process: the config cannot be sent to workers (%s)", err)
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(payload,))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
