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
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlmpipe.analysis.bench import bench_section
from vlmpipe.analysis.catalogue import CONSISTENCY, JUDGE_RATIO, column_fields, paired_fields
from vlmpipe.analysis.injection import injection_blocks
from vlmpipe.analysis.intervals import Series, field_values, paired_differences
from vlmpipe.analysis.judge import JudgeResults, judge_results
from vlmpipe.analysis.stability import NEEDS_REPEATS, STABILITY_KEYS, item_std, mean_item_std, per_item
from vlmpipe.analysis.summary import SCHEMA_VERSION, ModelSummary, PairwiseEntry, RunSummary
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY
from vlmpipe.metrics.overlap import texts_key
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


def table_row(g: dict[str, Any], metrics: dict[str, tuple[float | None, Any]]) -> dict[str, Any]:
    """A generation row with its derived columns and its stored metric values (``metrics``)."""
    row = dict(g)
    ok = g["error"] is None
    row["length_chars"] = length_chars(g["text"]) if ok else None
    row["chars_per_s"] = chars_per_s(g["text"], g["latency_s"]) if ok else None
    tokens = g["completion_tokens"]
    row["output_tokens_per_s"] = tokens / g["latency_s"] if ok and tokens and g["latency_s"] else None
    row["metrics"] = metrics
    return row


def iter_table(store: Store, *, order: str = "model", details: bool = True, chunk: int = 1000
               ) -> Iterator[dict[str, Any]]:
    """The rows of :func:`generation_table` one at a time, read from the store in chunks (model, item, repeat
    order; ``order="item"``: item, model, repeat). ``details=False`` leaves the metric details out (``None``)."""
    for gens in store.iter_generations(order=order, chunk=chunk):
        scores = store.scores_of([g["key"] for g in gens], details=details)
        for g in gens:
            yield table_row(g, scores[g["key"]])


def generation_table(store: Store) -> list[dict[str, Any]]:
    """One dict per planned generation: its row, derived columns, and every stored metric value (the whole run in
    memory: reports stream :func:`iter_table` instead)."""
    return list(iter_table(store))


def column_series(rows: list[dict[str, Any]], columns: Iterable[str], cluster: dict[str, str]) -> dict[str, Series]:
    """``{column: Series}`` of the successful generations (derived columns and metric scores), each value under
    its item's screenshot (``cluster``)."""
    out = {c: Series() for c in columns}
    for r in rows:
        if r["error"] is not None:
            continue
        _add_values(out, r, cluster.get(r["item"], r["item"]))
    return out


def _add_values(series: dict[str, Series], r: dict[str, Any], cluster: Hashable) -> None:
    metrics = r["metrics"]
    for c, s in series.items():
        s.add(r[c] if c in DERIVED else metrics.get(c, (None, None))[0], cluster)


@dataclass
class Context:
    """What every model's summary is made from, besides its own rows."""

    unavailable: dict[str, str]  # metric column -> why the score stage could not compute it
    metric_info: dict[str, Any]  # which scorer made each metric (perplexity_scorer...)
    judge: JudgeResults
    seed: int
    cluster: dict[str, str]  # item -> the screenshot intervals resample


class ModelRows:
    """One model's figures (or a slice's), accumulated from its rows one at a time, in (item, repeat) order as
    the store yields them: the values of every column field by screenshot, the errors, timings, and each item's
    stability as soon as its repeats are in. The rows themselves are not kept."""

    def __init__(self, cluster: dict[str, str],
                 stored: dict[tuple[str, str], tuple[str, float | None, float | None]] | None = None) -> None:
        self.cluster = cluster
        self.stored = stored or {}  # the score stage's stability per (model, item), with its texts' key
        self.n = 0
        self.n_ok = 0
        self.errors: dict[str, int] = defaultdict(int)
        self.sources: dict[str | None, int] = defaultdict(int)  # successful rows by where their answer came from
        self.latency: list[float] = []
        self.ttft: list[float] = []
        self.series = {c: Series() for c in _column_names()}
        self.stability: dict[str, tuple[float, float]] = {}  # item -> (consistency, distinct share)
        self.stds: list[dict[str, float]] = []  # per item: std of each column across its repeats
        self._item: str | None = None
        self._group: list[dict[str, Any]] = []
        self._done: set[str] = set()

    def add(self, r: dict[str, Any]) -> None:
        self.n += 1
        if r["error"] is not None:
            self.errors[r["error_kind"] or "error"] += 1
            return
        self.n_ok += 1
        self.sources[r.get("source")] += 1
        for values, key in ((self.latency, "latency_s"), (self.ttft, "ttft_s")):
            v = r.get(key)
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                values.append(float(v))
        _add_values(self.series, r, self.cluster.get(r["item"], r["item"]))
        if r["item"] != self._item:
            self._flush()
            if r["item"] in self._done:
                raise ValueError(f"rows of item {r['item']!r} are not together: feed rows in (item, repeat) order")
            self._item = r["item"]
        self._group.append(r)

    def _flush(self) -> None:
        if self._item is None:
            return
        self._done.add(self._item)
        texts = [r["text"] for r in self._group if r.get("text") is not None]
        hit = self.stored.get((self._group[0]["model"], self._item)) if len(texts) >= 2 else None
        if hit is not None and hit[0] == texts_key(texts) and hit[1] is not None and hit[2] is not None:
            self.stability[self._item] = (hit[1], hit[2])  # what the score stage computed from these texts
        else:
            self.stability.update(per_item(self._group))
        std = item_std(self._group)
        if std or len([r for r in self._group if r.get("text") is not None]) >= 2:
            self.stds.append(std)
        self._item, self._group = None, []

    def finish(self) -> ModelRows:
        self._flush()
        return self


def _column_names() -> set[str]:
    return {f.column for f in column_fields() if f.column is not None and f.column not in (CONSISTENCY, JUDGE_RATIO)}


def summarize_model(rows: Iterable[dict[str, Any]] | ModelRows, role: str, ctx: Context, *, model: str,
                    items: set[str] | None = None) -> tuple[dict[str, Any], dict[str, Series]]:
    """One model's summary (schema-1 keys plus ``fields``) from its generation rows (in item, repeat order) or
    their :class:`ModelRows`, and the series of its column fields (for the paired differences). ``items``: the
    screenshots of a slice (the judge's are filtered too)."""
    if not isinstance(rows, ModelRows):
        acc = ModelRows(ctx.cluster)
        for r in rows:
            acc.add(r)
        rows = acc
    acc = rows.finish()
    s: dict[str, Any] = {
        "role": role,
        "n": acc.n,
        "n_errors": acc.n - acc.n_ok,
        "error_rate": (acc.n - acc.n_ok) / acc.n if acc.n else None,
        "errors_by_kind": dict(acc.errors),
        "latency_s": distribution(acc.latency),
        "ttft_s": distribution(acc.ttft),
    }
    unavailable: dict[str, str] = {}
    fields = column_fields()
    series = dict(acc.series)
    stability = acc.stability
    series[CONSISTENCY] = Series([c for c, _d in stability.values()], [ctx.cluster.get(i, i) for i in stability])
    if role == "candidate":
        block, why = ctx.judge.block(model, items)
        s["judge"] = block
        if why:
            unavailable["judge"] = why
        series[JUDGE_RATIO] = ctx.judge.ratios(model, items)
    else:
        s["judge"] = None
    wanted = [f for f in fields if not (f.column == JUDGE_RATIO and role != "candidate")]
    computed = {}
    for seed, group in ((ctx.judge.seed, [f for f in wanted if f.column == JUDGE_RATIO]),
                        (ctx.seed, [f for f in wanted if f.column != JUDGE_RATIO])):
        computed.update(field_values({f.key: (series.get(f.column), f.aggregation) for f in group},  # type: ignore[misc]
                                     seed=seed))
    values = {}
    for f in wanted:
        fv = computed[f.key]
        if fv.value is None:
            fv.unavailable = _why_missing(f.column, acc, ctx) if f.column != JUDGE_RATIO else unavailable.get("judge")
        values[f.key] = fv
        if "." not in f.key:
            s[f.key] = fv.value
    no_latency = _untimed(acc.sources[BATCH], acc.sources[CACHED], acc.n_ok)
    if no_latency:
        for key in SPEED_KEYS:
            unavailable.setdefault(key, no_latency)
        for key, fv in values.items():
            if fv.value is None and key.split(".")[0] in (*SPEED_KEYS, "latency_s") and not fv.unavailable:
                fv.unavailable = no_latency
    s["fields"] = values
    s["distinct_answer_rate"] = float(np.mean([d for _c, d in stability.values()])) if stability else None
    s["within_item_std"] = mean_item_std(acc.stds)
    if acc.n and not stability:
        unavailable.update({k: NEEDS_REPEATS for k in STABILITY_KEYS})
    for key, fv in values.items():
        if fv.unavailable and "." not in key and key not in unavailable:
            unavailable[key] = fv.unavailable
    if s["ttft_s"] is None and acc.n and "ttft_s" not in unavailable:
        unavailable["ttft_s"] = ("no successful generation" if not acc.n_ok
                                 else "not measured: the provider does not stream tokens")
    s.update(ctx.metric_info)
    s["unavailable"] = unavailable
    return s, series


#: The speed figures a generation without a latency (from a batch, or the request cache) is left out of.
SPEED_KEYS = ("latency_s", "ttft_s", "chars_per_s_mean", "output_tokens_per_s_mean")


def untimed_reason(ok: list[dict[str, Any]]) -> str | None:
    """Why some successful generations are left out of the speed statistics (they carry no latency), or ``None``."""
    return _untimed(sum(1 for r in ok if r.get("source") == BATCH), sum(1 for r in ok if r.get("source") == CACHED),
                    len(ok))


def _untimed(batch: int, cached: int, n_ok: int) -> str | None:
    if not batch and not cached:
        return None
    parts = []
    if batch:
        parts.append(f"{batch} came from a batch engine's results file (batch timings are not latencies)")
    if cached:
        parts.append(f"{cached} reused the answer to an identical request (cache: true)")
    return (f"{batch + cached} of {n_ok} successful generations carry no latency and are left out of the speed "
            f"statistics: {'; '.join(parts)}")


def _why_missing(column: str | None, acc: ModelRows, ctx: Context) -> str | None:
    if column in ctx.unavailable:
        return ctx.unavailable[column]
    if acc.n and not acc.n_ok:
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
    """The typed ``summary.json`` (schema 1, see DESIGN.md), from one pass over the run's rows: each model's (and
    each slice's) figures are accumulated row by row, the rows are not kept."""
    judge = judge_results(cfg, store)
    metric_info: dict[str, Any] = {}
    for name, cls in REGISTRY.items():
        metric_info.update(dict.fromkeys(cls.info_keys))
        metric_info.update(store.get_meta(f"metric_info:{name}") or {})
    items = store.items()
    ctx = Context(store.get_meta("unavailable", {}) or {}, metric_info, judge, cfg.seed,
                  {i["id"]: i["screenshot"] for i in items})
    model_rows = store.models()
    groups = _tag_groups(items)
    tags_of: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for tag, values in groups.items():
        for value, ids in values.items():
            for i in ids:
                tags_of[i].append((tag, value))
    stored = store.stability()
    accs = {m["name"]: ModelRows(ctx.cluster, stored) for m in model_rows}
    slice_accs = {(tag, value, m["name"]): ModelRows(ctx.cluster, stored)
                  for tag, values in groups.items() for value in values for m in model_rows}
    for row in iter_table(store, details=False):
        acc = accs.get(row["model"])
        if acc is None:  # a generation of a model no longer in the run
            continue
        acc.add(row)
        for tag, value in tags_of.get(row["item"], ()):
            slice_accs[(tag, value, row["model"])].add(row)
    models: dict[str, Any] = {}
    candidate_series: dict[str, dict[str, Series]] = {}
    for m in model_rows:
        s, series = summarize_model(accs[m["name"]], m["role"], ctx, model=m["name"])
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
    slices = {tag: {value: {m["name"]: ModelSummary.model_validate(summarize_model(
        slice_accs[(tag, value, m["name"])], m["role"], ctx, model=m["name"], items=ids)[0]) for m in model_rows}
        for value, ids in sorted(values.items())} for tag, values in groups.items()}
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
        "slices": slices,
    })


def _tag_groups(items: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """``{tag: {value: item ids}}`` of the items' tags (empty without tags)."""
    groups: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for it in items:
        for tag, value in (it.get("tags") or {}).items():
            groups[tag][str(value)].add(it["id"])
    return groups
