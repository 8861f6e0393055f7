"""Per-model aggregates: the typed ``summary.json`` (:class:`RunSummary`), built here and only here.

Every figure aggregated from a column — a metric's, the derived ``length_chars``/``chars_per_s``/``latency_s``,
the per-screenshot ``consistency``, the judge's ratio — is one field of the catalogue
(:mod:`vlmpipe.analysis.catalogue`) and goes through one aggregation (:func:`vlmpipe.analysis.intervals.field_value`):
its value under the schema-1 key (``chrf_mean``), and in ``fields.<key>`` its cluster-bootstrap and naive 95%
intervals, ``n`` and why it is missing. Fields marked ``paired`` get model-vs-model differences in ``pairwise``.

Per-generation derived columns follow the original pipeline: ``length_chars`` is the answer's length in
characters, ``chars_per_s`` is length / end-to-end latency of that generation, averaged per model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmpipe.analysis.bench import bench_section
from vlmpipe.analysis.catalogue import CONSISTENCY, JUDGE_RATIO, column_fields, paired_fields
from vlmpipe.analysis.injection import injection_blocks
from vlmpipe.analysis.intervals import Series, field_value, paired_differences
from vlmpipe.analysis.judge import JudgeResults, judge_results
from vlmpipe.analysis.stability import NEEDS_REPEATS, STABILITY_KEYS, per_item, within_item_std
from vlmpipe.analysis.summary import SCHEMA_VERSION, ModelSummary, PairwiseEntry, RunSummary
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY
from vlmpipe.stages.generation_cache import BATCH, CACHED

#: Columns every generation row has (not metric scores): derived from the generation itself.
DERIVED = ("latency_s", "length_chars", "chars_per_s", "output_tokens_per_s")


def length_chars(text: str | None) -> int | None:
    return None if text is None else len(text)


def chars_per_s(text: str | None, latency_s: float | None) -> float | None:
    if text is None or not latency_s or latency_s <= 0:
        return None
    return len(text) / latency_s


def _clean(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean(values: Iterable[Any]) -> float | None:
    vals = _clean(values)
    return float(np.mean(vals)) if vals else None


def distribution(values: Iterable[Any]) -> dict[str, float] | None:
    """``{mean, p50, p95, max}`` of the non-missing values, or ``None`` when there are none."""
    vals = _clean(values)
    if not vals:
        return None
    arr = np.asarray(vals)
    return {"mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)), "max": float(arr.max())}


def generation_table(store: Store) -> list[dict[str, Any]]:
    """One dict per planned generation: its row, derived columns, and every stored metric value."""
    scores = store.scores()
    out = []
    for g in store.generations():
        row = dict(g)
        ok = g["error"] is None
        row["length_chars"] = length_chars(g["text"]) if ok else None
        row["chars_per_s"] = chars_per_s(g["text"], g["latency_s"]) if ok else None
        tokens = g["completion_tokens"]
        row["output_tokens_per_s"] = tokens / g["latency_s"] if ok and tokens and g["latency_s"] else None
        row["metrics"] = dict(scores.get(g["key"], {}))
        out.append(row)
    return out


def column_series(rows: list[dict[str, Any]], columns: Iterable[str], cluster: dict[str, str]) -> dict[str, Series]:
    """``{column: Series}`` of the successful generations (derived columns and metric scores), each value under
    its item's screenshot (``cluster``)."""
    out = {c: Series() for c in columns}
    for r in rows:
        if r["error"] is not None:
            continue
        for c, s in out.items():
            s.add(r[c] if c in DERIVED else r["metrics"].get(c, (None, None))[0], cluster.get(r["item"], r["item"]))
    return out


@dataclass
class Context:
    """What every model's summary is made from, besides its own rows."""

    unavailable: dict[str, str]  # metric column -> why the score stage could not compute it
    metric_info: dict[str, Any]  # which scorer made each metric (perplexity_scorer...)
    judge: JudgeResults
    seed: int
    cluster: dict[str, str]  # item -> the screenshot intervals resample


def summarize_model(rows: list[dict[str, Any]], role: str, ctx: Context, *, model: str,
                    items: set[str] | None = None) -> tuple[dict[str, Any], dict[str, Series]]:
    """One model's summary (schema-1 keys plus ``fields``) from its generation rows, and the series of its column
    fields (for the paired differences). ``items``: the screenshots of a slice (the judge's are filtered too)."""
    ok = [r for r in rows if r["error"] is None]
    errors: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["error"] is not None:
            errors[r["error_kind"] or "error"] += 1
    s: dict[str, Any] = {
        "role": role,
        "n": len(rows),
        "n_errors": len(rows) - len(ok),
        "error_rate": (len(rows) - len(ok)) / len(rows) if rows else None,
        "errors_by_kind": dict(errors),
        "latency_s": distribution(r["latency_s"] for r in ok),
        "ttft_s": distribution(r["ttft_s"] for r in ok),
    }
    unavailable: dict[str, str] = {}
    fields = column_fields()
    series = column_series(rows, {f.column for f in fields if f.column not in (CONSISTENCY, JUDGE_RATIO)}, ctx.cluster)
    stability = per_item(ok)
    series[CONSISTENCY] = Series([c for c, _d in stability.values()], [ctx.cluster.get(i, i) for i in stability])
    if role == "candidate":
        block, why = ctx.judge.block(model, items)
        s["judge"] = block
        if why:
            unavailable["judge"] = why
        series[JUDGE_RATIO] = ctx.judge.ratios(model, items)
    else:
        s["judge"] = None
    values = {}
    for f in fields:
        if f.column == JUDGE_RATIO and role != "candidate":
            continue
        seed = ctx.judge.seed if f.column == JUDGE_RATIO else ctx.seed
        fv = field_value(series.get(f.column), f.aggregation, seed=seed)  # type: ignore[arg-type]
        if fv.value is None:
            fv.unavailable = _why_missing(f.column, rows, ctx) if f.column != JUDGE_RATIO else unavailable.get("judge")
        values[f.key] = fv
        if "." not in f.key:
            s[f.key] = fv.value
    no_latency = untimed_reason(ok)
    if no_latency:
        for key in SPEED_KEYS:
            unavailable.setdefault(key, no_latency)
        for key, fv in values.items():
            if fv.value is None and key.split(".")[0] in (*SPEED_KEYS, "latency_s") and not fv.unavailable:
                fv.unavailable = no_latency
    s["fields"] = values
    s["distinct_answer_rate"] = float(np.mean([d for _c, d in stability.values()])) if stability else None
    s["within_item_std"] = within_item_std(ok)
    if rows and not stability:
        unavailable.update({k: NEEDS_REPEATS for k in STABILITY_KEYS})
    for key, fv in values.items():
        if fv.unavailable and "." not in key and key not in unavailable:
            unavailable[key] = fv.unavailable
    if s["ttft_s"] is None and rows and "ttft_s" not in unavailable:
        unavailable["ttft_s"] = ("no successful generation" if not ok
                                 else "not measured: the provider does not stream tokens")
    s.update(ctx.metric_info)
    s["unavailable"] = unavailable
    return s, series


#: The speed figures a generation without a latency (from a batch, or the request cache) is left out of.
SPEED_KEYS = ("latency_s", "ttft_s", "chars_per_s_mean", "output_tokens_per_s_mean")


def untimed_reason(ok: list[dict[str, Any]]) -> str | None:
    """Why some successful generations are left out of the speed statistics (they carry no latency), or ``None``."""
    batch = sum(1 for r in ok if r.get("source") == BATCH)
    cached = sum(1 for r in ok if r.get("source") == CACHED)
    if not batch and not cached:
        return None
    parts = []
    if batch:
        parts.append(f"{batch} came from a batch engine's results file (batch timings are not latencies)")
    if cached:
        parts.append(f"{cached} reused the answer to an identical request (cache: true)")
    return (f"{batch + cached} of {len(ok)} successful generations carry no latency and are left out of the speed "
            f"statistics: {'; '.join(parts)}")


def _why_missing(column: str | None, rows: list[dict[str, Any]], ctx: Context) -> str | None:
    if column in ctx.unavailable:
        return ctx.unavailable[column]
    if rows and all(r["error"] is not None for r in rows):
        return "no successful generation"
    return None


def _pairwise(series: dict[str, dict[str, Series]], ctx: Context) -> dict[str, list[PairwiseEntry]]:
    """Paired differences of every ``paired`` field between the candidates (the judge's under ``judge.ratio``)."""
    out: dict[str, list[PairwiseEntry]] = {}
    for f in paired_fields():
        per_model = {m: s[f.column] for m, s in series.items() if f.column in s and s[f.column].values}
        seed = ctx.judge.seed if f.column == JUDGE_RATIO else ctx.seed
        pairs = paired_differences(f.key, per_model, f.aggregation, seed=seed)  # type: ignore[arg-type]
        if pairs:
            out["judge.ratio" if f.key == "judge.ratio_mean" else f.key] = pairs
    return out


def build_summary(cfg: RunConfig, store: Store) -> RunSummary:
    """The typed ``summary.json`` (schema 1, see DESIGN.md)."""
    table = generation_table(store)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in table:
        by_model[row["model"]].append(row)
    judge = judge_results(cfg, store)
    metric_info: dict[str, Any] = {}
    for name, cls in REGISTRY.items():
        metric_info.update(dict.fromkeys(cls.info_keys))
        metric_info.update(store.get_meta(f"metric_info:{name}") or {})
    items = store.items()
    ctx = Context(store.get_meta("unavailable", {}) or {}, metric_info, judge, cfg.seed,
                  {i["id"]: i["screenshot"] for i in items})
    models: dict[str, Any] = {}
    candidate_series: dict[str, dict[str, Series]] = {}
    for m in store.models():
        s, series = summarize_model(by_model.get(m["name"], []), m["role"], ctx, model=m["name"])
        info = dict(m["info"] or {})
        s["unavailable"] = {**info.pop("unavailable", {}), **s["unavailable"]}
        for key, value in info.items():
            s.setdefault(key, value)
        models[m["name"]] = s
        if m["role"] == "candidate":
            candidate_series[m["name"]] = series
    for name, block in injection_blocks(store, [n for n, s in models.items() if s["role"] == "candidate"]).items():
        models[name]["injection"] = block
    pairwise = _pairwise(candidate_series, ctx)
    if judge.ran:
        pairwise.setdefault("judge.ratio", [])
    return RunSummary.model_validate({
        "schema": SCHEMA_VERSION,
        "run": {"name": cfg.name, "task": cfg.task, "items": len(items),
                "items_failed": sum(1 for i in items if i["error"]),
                "screenshots": len({i["screenshot"] for i in items}), "repeats": cfg.repeats,
                "prompt_hash": cfg.prompt_signature(), "stopped": store.get_meta("stopped")},
        "models": {name: ModelSummary.model_validate(s) for name, s in models.items()},
        "judge_status": judge.status,
        "pairwise": pairwise,
        "bench": bench_section(store),
        "slices": _slices(items, by_model, store.models(), ctx),
    })


def _slices(items: list[dict[str, Any]], by_model: dict[str, list[dict[str, Any]]], models: list[dict[str, Any]],
            ctx: Context) -> dict[str, dict[str, dict[str, Any]]]:
    """``{tag: {value: {model: summary over the items with that tag value}}}`` (empty without tags)."""
    groups: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for it in items:
        for tag, value in (it.get("tags") or {}).items():
            groups[tag][str(value)].add(it["id"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for tag, values in groups.items():
        out[tag] = {}
        for value, ids in sorted(values.items()):
            out[tag][value] = {
                m["name"]: ModelSummary.model_validate(summarize_model(
                    [r for r in by_model.get(m["name"], []) if r["item"] in ids], m["role"], ctx, model=m["name"],
                    items=ids)[0])
                for m in models}
    return out
