"""Confidence intervals for per-generation scores that come in clusters (several repeats per screenshot).

* :func:`naive_ci95` — the specification's interval, mean ± 1.96·s/√n with the sample standard deviation
  (``ddof=1``). It treats every generation as independent, which the repeats of one screenshot are not.
* :func:`cluster_bootstrap_ci95` — resamples whole screenshots (clusters) with replacement, 10,000 seeded
  resamples by default, and takes the 2.5 and 97.5 percentiles of the resampled means (each resample's mean
  is over all the observations of the drawn clusters, so clusters weigh by their size, like the plain mean).
* :func:`pareto_front` — the names no other point dominates on every axis.
* :func:`paired_bootstrap` — the difference of two models' means over the screenshots both have, resampling
  those shared screenshots jointly, with its 95% interval and the share of resamples where A beats B.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
N_RESAMPLES = 10_000


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.array(values, dtype=float) if isinstance(values, array) else np.asarray([float(v) for v in values],
                                                                                      dtype=float)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite numbers")
    return arr


def naive_ci95(values: Sequence[float]) -> list[float] | None:
    """``[mean - h, mean + h]`` with ``h = 1.96·std(ddof=1)/√n``; ``None`` with fewer than 2 values."""
    arr = _finite(values)
    if arr.size < 2:
        return None
    half = 1.96 * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    m = float(arr.mean())
    return [m - half, m + half]


def _cluster_table(values: Sequence[float], clusters: Sequence[Hashable]) -> tuple[list[Hashable], np.ndarray,
                                                                                    np.ndarray]:
    """Cluster ids (first-seen order), per-cluster sums and counts."""
    if len(values) != len(clusters):
        raise ValueError("values and clusters must have the same length")
    arr = _finite(values)
    ids: dict[Hashable, int] = {}
    for c in clusters:
        ids.setdefault(c, len(ids))
    idx = np.asarray([ids[c] for c in clusters], dtype=int)
    sums = np.bincount(idx, weights=arr, minlength=len(ids)) if arr.size else np.zeros(0)
    counts = np.bincount(idx, minlength=len(ids)).astype(float) if arr.size else np.zeros(0)
    return list(ids), sums, counts


# --- resampling, vectorised -------------------------------------------------------------------------------------
# A resample draws k cluster indices with replacement (``rng.integers(0, k, size=(n_resamples, k))``, row by row),
# and its mean is the sum of the drawn clusters' sums over the sum of their counts. The draws depend only on the
# seed, k and the number of resamples, so they are made once, kept as a matrix of how often each cluster was drawn
# in each resample, and every series with k clusters is resampled by a matrix product with its per-cluster sums and
# counts: the same resamples as drawing them for each series, without the 10,000 x k gathers per series.
# The products are exact: each column of sums is split into parts on a grid coarse enough that any resample's sum of
# a part is an integer multiple of the grid below 2^53 (:func:`_exact_parts`), so the matrix product adds them
# without rounding whatever its order, and the resampled sum is the exact sum rounded once. A series' interval is
# therefore the same alone or with others, on any BLAS; it can differ from gathering and adding the draws one by one
# (which rounds as it goes) in the last bit of a float, never for 0/1 or integer values.

#: Resamples turned into counts at a time (bounds the memory of a draw to BLOCK x k integers).
BLOCK = 250
_COUNTS: dict[tuple[int, int, int], np.ndarray] = {}
#: Count matrices kept (the summary of one run uses one or two: its screenshots, and those of a slice or a pair).
_KEEP = 4


def resample_counts(k: int, *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``counts[r, j]``: how often resample ``r`` drew cluster ``j`` among ``k`` (``n_resamples x k``, a small
    unsigned integer type), for the seed's draws ``rng.integers(0, k, size=(n_resamples, k))``. Cached."""
    key = (seed, k, n_resamples)
    got = _COUNTS.get(key)
    if got is not None:
        return got
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, k), dtype=np.uint8)
    for start in range(0, n_resamples, BLOCK):
        b = min(BLOCK, n_resamples - start)
        draws = rng.integers(0, k, size=(b, k))  # the same stream as one (n_resamples, k) draw, block by block
        draws += (np.arange(b) * k)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * k).reshape(b, k)
        if counts.max(initial=0) > np.iinfo(out.dtype).max:  # a cluster drawn 256 times or more: never in practice
            out = out.astype(np.uint32)
        out[start:start + b] = counts
    out.setflags(write=False)
    while len(_COUNTS) >= _KEEP:
        _COUNTS.pop(next(iter(_COUNTS)))
    _COUNTS[key] = out
    return out


def _exact_parts(column: np.ndarray, k: int) -> list[np.ndarray]:
    """Columns that add up to ``column`` and whose sums over any resample of ``k`` clusters (weights adding up to
    ``k``) are exact in float64: part ``i`` holds what the parts before it left, rounded to a grid ``g`` with
    ``k · max|part| < 2^52 · g``."""
    parts = []
    rest = np.asarray(column, dtype=float)
    for _ in range(4):
        top = float(np.max(np.abs(rest), initial=0.0))
        if top == 0.0:
            return parts
        grid = math.ldexp(1.0, math.frexp(top * k * 1.01)[1] - 52)
        part = np.round(rest / grid) * grid
        parts.append(part)
        rest = rest - part
    if np.any(rest):  # below 2^-100 of the largest value: negligible, kept for completeness
        parts.append(rest)
    return parts


def _resampled(counts: np.ndarray, columns: list[np.ndarray]) -> np.ndarray:
    """``counts @ column`` for each column (``n_resamples x k`` by ``k``), exactly: integer columns as they are,
    others by their :func:`_exact_parts`, whose exact sums are added largest first."""
    k = counts.shape[1]
    plan: list[tuple[int, int]] = []  # per column: its first part and number of parts
    parts: list[np.ndarray] = []
    for col in columns:
        col = np.asarray(col, dtype=float)
        split = [col] if np.all(col == np.round(col)) and np.max(np.abs(col), initial=0) * k < 2.0**52 \
            else _exact_parts(col, k)
        plan.append((len(parts), len(split)))
        parts += split
    out = np.zeros((counts.shape[0], len(columns)))
    if not parts:
        return out
    matrix = np.column_stack(parts + ([np.zeros(k)] if len(parts) == 1 else []))  # >= 2 columns: one GEMM kernel
    for start in range(0, counts.shape[0], BLOCK):
        sums = counts[start:start + BLOCK].astype(float) @ matrix
        for j, (first, n) in enumerate(plan):
            total = sums[:, first].copy() if n else np.zeros(sums.shape[0])
            for i in range(first + 1, first + n):
                total += sums[:, i]
            out[start:start + BLOCK, j] = total
    return out


def cluster_bootstrap_many(tables: Sequence[tuple[np.ndarray, np.ndarray]], *, n_resamples: int = N_RESAMPLES,
                           seed: int = 0) -> list[list[float] | None]:
    """:func:`cluster_bootstrap_ci95` of many series at once, each given as its per-cluster ``(sums, counts)``
    (:func:`cluster_table`): the series with the same number of clusters share one set of resamples and one
    matrix product."""
    out: list[list[float] | None] = [None] * len(tables)
    by_k: dict[int, list[int]] = {}
    for i, (sums, _counts) in enumerate(tables):
        if sums.size:
            by_k.setdefault(int(sums.size), []).append(i)
    for k, idx in by_k.items():
        draws = resample_counts(k, n_resamples=n_resamples, seed=seed)
        res = _resampled(draws, [tables[i][0] for i in idx] + [tables[i][1] for i in idx])
        means = res[:, :len(idx)] / res[:, len(idx):]
        bounds = np.percentile(means, [2.5, 97.5], axis=0)
        for j, i in enumerate(idx):
            out[i] = [float(bounds[0, j]), float(bounds[1, j])]
    return out


def cluster_table(values: Sequence[float], clusters: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums and counts, clusters in first-seen order (what resampling needs of a series)."""
    _ids, sums, counts = _cluster_table(values, clusters)
    return sums, counts


def cluster_bootstrap_ci95(values: Sequence[float], clusters: Sequence[Hashable], *,
                           n_resamples: int = N_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile interval of the mean when whole clusters are resampled; ``None`` without data."""
    return cluster_bootstrap_many([cluster_table(values, clusters)], n_resamples=n_resamples, seed=seed)[0]


PairTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def paired_table(a_values: Sequence[float], a_clusters: Sequence[Hashable],
                 b_values: Sequence[float], b_clusters: Sequence[Hashable]) -> PairTable | None:
    """``(sums A, counts A, sums B, counts B)`` over the clusters both have, in A's first-seen order; ``None``
    when they share none."""
    a_ids, a_sums, a_counts = _cluster_table(a_values, a_clusters)
    b_ids, b_sums, b_counts = _cluster_table(b_values, b_clusters)
    b_pos = {c: i for i, c in enumerate(b_ids)}
    shared = [(i, b_pos[c]) for i, c in enumerate(a_ids) if c in b_pos]
    if not shared:
        return None
    ai = np.asarray([s[0] for s in shared])
    bi = np.asarray([s[1] for s in shared])
    return a_sums[ai], a_counts[ai], b_sums[bi], b_counts[bi]


def paired_bootstrap_many(tables: Sequence[PairTable | None], *, n_resamples: int = N_RESAMPLES, seed: int = 0
                          ) -> list[dict[str, Any] | None]:
    """:func:`paired_bootstrap` of many pairs at once (:func:`paired_table`), sharing resamples by cluster count."""
    out: list[dict[str, Any] | None] = [None] * len(tables)
    by_k: dict[int, list[int]] = {}
    for i, t in enumerate(tables):
        if t is not None:
            by_k.setdefault(int(t[0].size), []).append(i)
    for k, idx in by_k.items():
        draws = resample_counts(k, n_resamples=n_resamples, seed=seed)
        n = len(idx)
        res = _resampled(draws, [tables[i][part] for part in range(4) for i in idx])  # type: ignore[index]
        diffs = res[:, :n] / res[:, n:2 * n] - res[:, 2 * n:3 * n] / res[:, 3 * n:]
        bounds = np.percentile(diffs, [2.5, 97.5], axis=0)
        better = np.mean(diffs > 0, axis=0)
        for j, i in enumerate(idx):
            sa, ca, sb, cb = tables[i]  # type: ignore[misc]
            out[i] = {
                "diff": float(sa.sum() / ca.sum() - sb.sum() / cb.sum()),
                "ci95": [float(bounds[0, j]), float(bounds[1, j])],
                "p_a_better": float(better[j]),
                "n_clusters": k,
            }
    return out


def paired_bootstrap(a_values: Sequence[float], a_clusters: Sequence[Hashable],
                     b_values: Sequence[float], b_clusters: Sequence[Hashable], *,
                     n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any] | None:
    """Mean(A) − mean(B) over the clusters both have, resampling those clusters jointly.

    Returns ``{"diff", "ci95", "p_a_better", "n_clusters"}`` (``p_a_better``: share of resamples with a
    positive difference), or ``None`` when the two share no cluster.
    """
    table = paired_table(a_values, a_clusters, b_values, b_clusters)
    return paired_bootstrap_many([table], n_resamples=n_resamples, seed=seed)[0]


def pareto_front(points: dict[str, tuple[float, ...]]) -> list[str]:
    """Names not dominated: no other point is at least as good on every axis (all maximised) and better on one."""
    front = []
    for n, p in points.items():
        dominated = any(all(q_i >= p_i for q_i, p_i in zip(q, p, strict=True)) and q != p
                        for m, q in points.items() if m != n)
        if not dominated:
            front.append(n)
    return front
