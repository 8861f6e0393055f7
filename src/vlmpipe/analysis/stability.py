"""Stability of a model across repeated generations of the same item (the specification's third question).

Per (model, item) with at least two successful repeats:

* consistency — the mean over all pairs of repeats of the symmetric chrF++ between the two texts,
  ``(chrF(a | b) + chrF(b | a)) / 2``, on sacrebleu's 0–100 scale (100: the repeats are identical);
* distinct share — distinct answers / repeats, comparing texts after stripping and collapsing whitespace
  (1/n when all n repeats are identical, 1 when all differ);
* the sample standard deviation (ddof = 1) across repeats of every numeric per-generation column.

Per model: ``consistency_mean`` and ``distinct_answer_rate`` are the means over items, and
``within_item_std`` is ``{column: mean over items of that column's std}`` for ``length_chars``,
``latency_s`` and every metric column that aggregates as a mean (``rouge1_f``, ``chrf``...).
With one repeat per item these are ``None`` and the summary says why.

The score stage computes each (model, item)'s consistency and distinct share once, in its worker processes, and
keeps them in the store with a hash of the texts (``stability`` table); the summary reuses them while the texts are
the same, and computes what is missing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from vlmpipe.metrics.base import REGISTRY
from vlmpipe.metrics.overlap import consistency, distinct_share

__all__ = ["NEEDS_REPEATS", "STABILITY_KEYS", "consistency", "distinct_share", "item_std", "mean_item_std",
           "per_item", "within_item_std"]

NEEDS_REPEATS = "needs at least 2 successful repeats of an item"


def _std_columns() -> list[str]:
    cols = ["length_chars", "latency_s"]
    for cls in REGISTRY.values():
        cols += [f.column for f in cls.fields if f.aggregation == "mean" and f.column and f.column not in cols]
    return cols


def _value(row: dict[str, Any], col: str) -> float | None:
    v = row[col] if col in row else row["metrics"].get(col, (None, None))[0]
    return None if v is None else float(v)


def per_item(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """``{item: (consistency, distinct share)}`` over the items with at least two successful repeats."""
    by_item: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.get("error") is None and r.get("text") is not None:
            by_item[r["item"]].append(r["text"])
    return {item: (consistency(texts), distinct_share(texts))  # type: ignore[misc]
            for item, texts in by_item.items() if len(texts) >= 2}


def within_item_std(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """``{column: mean over items of the column's std across repeats}`` (items with two or more values)."""
    by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r.get("error") is None and r.get("text") is not None:
            by_item[r["item"]].append(r)
    return mean_item_std([item_std(g) for g in by_item.values()])


def item_std(rows: list[dict[str, Any]], columns: list[str] | None = None) -> dict[str, float]:
    """``{column: std (ddof = 1) across the repeats}`` of one item's successful rows, for the columns with two or
    more values."""
    rows = [r for r in rows if r.get("error") is None and r.get("text") is not None]
    out: dict[str, float] = {}
    if len(rows) < 2:
        return out
    for col in columns or _std_columns():
        vals = [v for v in (_value(r, col) for r in rows) if v is not None]
        if len(vals) >= 2:
            out[col] = float(np.std(vals, ddof=1))
    return out


def mean_item_std(per_item: list[dict[str, float]]) -> dict[str, float] | None:
    """:func:`within_item_std` from the items' :func:`item_std`."""
    stds: dict[str, float] = {}
    for col in _std_columns():
        vals = [d[col] for d in per_item if col in d]
        if vals:
            stds[col] = float(np.mean(vals))
    return stds or None


STABILITY_KEYS = ("consistency_mean", "distinct_answer_rate", "within_item_std")
