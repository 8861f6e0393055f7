"""The score stage: runs every enabled, available metric over the run's successful generations.

Results are cached in the store per generation and metric; a metric is re-run only for rows it has not
scored, or for all rows when its version (scorer, settings, references) changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from vlmpipe.core.config import ConfigError, RunConfig
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY, Metric, ScoreContext

#: Metrics left out of the default set (``metrics.enabled`` unset), e.g. ``perplexity`` for quick runs.
EXCLUDE_ENV = "VLMPIPE_DEFAULT_METRICS_EXCLUDE"


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


def score_run(cfg: RunConfig, store: Store, *, show_progress: bool = True) -> dict[str, str]:
    """Score the current plan's generations; returns ``{column: why unavailable}``."""
    rows = [r for r in store.generations() if r["error"] is None and r["text"] is not None]
    items = {i["id"]: i for i in store.items()}
    ctx = ScoreContext(cfg=cfg, items=items, store=store)
    unavailable: dict[str, str] = {}
    refs_hash = _references_hash(items)
    for metric in enabled_metrics(cfg):
        version = metric.version(ctx)  # cheap: names the scorer without loading it
        if metric.needs & {"reference", "facts"}:
            version += f"+refs:{refs_hash}"
        meta_key = f"metric_version:{metric.name}"
        current = store.get_meta(meta_key) == version
        if current:
            done = set.intersection(*(store.scored_keys(c) for c in metric.columns))
            todo = [r for r in rows if r["key"] not in done]
            if not todo:
                continue  # every row has this version's scores: no model to load (a resume, a re-score)
        else:
            todo = rows
        if not todo:  # no successful generation at all: nothing to score, no model to load
            for col in metric.columns:
                unavailable[col] = "no successful generation to score"
            continue
        why = metric.unavailable(ctx)
        if why:
            for col in metric.columns:
                unavailable[col] = why
            continue
        if todo:
            with progress_bar(f"score {metric.name}", len(todo), enabled=show_progress) as advance:
                reported = 0

                def report(n: int = 1, _advance=advance) -> None:
                    nonlocal reported
                    reported += n
                    _advance(n)

                ctx.progress = report
                results = metric.score(todo, ctx)
                ctx.progress = None
                advance(max(0, len(todo) - reported))
            store.put_scores(
                (row["key"], col, value, detail)
                for row, result in zip(todo, results, strict=True)
                for col, (value, detail) in result.items()
            )
        store.set_meta(meta_key, version)
    enabled = {m.name: m for m in enabled_metrics(cfg)}
    for name in REGISTRY:  # which scorer/checkpoint produced each metric, for summary.json
        store.set_meta(f"metric_info:{name}", enabled[name].summary_info(ctx) if name in enabled else {})
    store.set_meta("unavailable", unavailable)
    return unavailable
