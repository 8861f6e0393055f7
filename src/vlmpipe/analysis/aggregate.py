"""Per-model aggregates: the numbers of ``summary.json``. The report only renders what this produces.

Per-generation derived columns follow the original pipeline: ``length_chars`` is the answer's length in
characters, ``chars_per_s`` is length / end-to-end latency of that generation, averaged per model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from vlmpipe.analysis.bench import bench_section
from vlmpipe.analysis.injection import add_injection_flags
from vlmpipe.analysis.judge import add_judge
from vlmpipe.analysis.stability import stability_summary, unavailable_reasons
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY

SCHEMA_VERSION = 1


def length_chars(text: str | None) -> int | None:
    return None if text is None else len(text)


def chars_per_s(text: str | None, latency_s: float | None) -> float | None:
    if text is None or not latency_s or latency_s <= 0:
        return None
    return len(text) / latency_s


def _clean(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean(values: list[Any]) -> float | None:
    vals = _clean(values)
    return float(np.mean(vals)) if vals else None


def distribution(values: list[Any]) -> dict[str, float] | None:
    """``{mean, p50, p95, max}`` of the non-missing values, or ``None`` when there are none."""
    vals = _clean(values)
    if not vals:
        return None
    arr = np.asarray(vals)
    return {
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }


def _aggregate(values: list[Any], how: str) -> float | None:
    vals = _clean(values)
    if not vals:
        return None
    if how == "sum":
        return float(sum(vals))
    if how == "rate":
        return float(np.mean([v > 0 for v in vals]))
    return float(np.mean(vals))


def generation_table(store: Store) -> list[dict[str, Any]]:
    """One dict per planned generation: its row, derived columns, and every stored metric value."""
    scores = store.scores()
    out = []
    for g in store.generations():
        row = dict(g)
        row["length_chars"] = length_chars(g["text"]) if g["error"] is None else None
        row["chars_per_s"] = chars_per_s(g["text"], g["latency_s"]) if g["error"] is None else None
        tokens = g["completion_tokens"]
        if g["error"] is None and tokens and g["latency_s"]:
            row["output_tokens_per_s"] = tokens / g["latency_s"]
        else:
            row["output_tokens_per_s"] = None
        row["metrics"] = {m: v for m, v in scores.get(g["key"], {}).items()}
        out.append(row)
    return out


def summarize_model(rows: list[dict[str, Any]], role: str) -> dict[str, Any]:
    ok = [r for r in rows if r["error"] is None]
    errors: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["error"] is not None:
            errors[r["error_kind"] or "error"] += 1
    summary: dict[str, Any] = {
        "role": role,
        "n": len(rows),
        "n_errors": len(rows) - len(ok),
        "error_rate": (len(rows) - len(ok)) / len(rows) if rows else None,
        "errors_by_kind": dict(errors),
        "latency_s": distribution([r["latency_s"] for r in ok]),
        "ttft_s": distribution([r["ttft_s"] for r in ok]),
        "length_chars_mean": mean([r["length_chars"] for r in ok]),
        "chars_per_s_mean": mean([r["chars_per_s"] for r in ok]),
        "output_tokens_per_s_mean": mean([r["output_tokens_per_s"] for r in ok]),
    }
    for cls in REGISTRY.values():
        for field_name, (column, how) in cls.summary_fields.items():
            values = [r["metrics"][column][0] for r in ok if column in r["metrics"]]
            summary[field_name] = _aggregate(values, how)
    summary.update(stability_summary(ok))
    return summary


def build_summary(cfg: RunConfig, store: Store) -> dict[str, Any]:
    """The ``summary.json`` document (schema 1, see DESIGN.md)."""
    table = generation_table(store)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in table:
        by_model[row["model"]].append(row)
    unavailable: dict[str, str] = store.get_meta("unavailable", {}) or {}
    models: dict[str, Any] = {}
    for m in store.models():
        rows = by_model.get(m["name"], [])
        s = summarize_model(rows, m["role"])
        for key, value in (m["info"] or {}).items():
            s.setdefault(key, value)
        missing = {}
        for cls in REGISTRY.values():
            for field_name, (column, _how) in cls.summary_fields.items():
                if s.get(field_name) is None and column in unavailable:
                    missing[field_name] = unavailable[column]
        missing.update(unavailable_reasons(s))
        if s["ttft_s"] is None and s["n"]:
            missing["ttft_s"] = ("no successful generation" if s["n"] == s["n_errors"]
                                 else "not measured: the provider does not stream tokens")
        for name in REGISTRY:
            s.update(store.get_meta(f"metric_info:{name}") or {})
        s["unavailable"] = {**(m["info"] or {}).get("unavailable", {}), **missing}
        models[m["name"]] = s
    items = store.items()
    summary = {
        "schema": SCHEMA_VERSION,
        "run": {
            "name": cfg.name,
            "items": len(items),
            "items_failed": sum(1 for i in items if i["error"]),
            "repeats": cfg.repeats,
            "prompt_hash": cfg.prompt_signature(),
            "stopped": store.get_meta("stopped"),
        },
        "models": models,
    }
    add_judge(cfg, store, summary)
    add_injection_flags(store, summary)
    bench = bench_section(store)
    if bench:
        summary["bench"] = bench
    return summary
