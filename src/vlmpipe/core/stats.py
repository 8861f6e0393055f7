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
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054
N_RESAMPLES = 10_000


def _finite(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
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


def _percentile_interval(samples: np.ndarray) -> list[float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def cluster_bootstrap_ci95(values: Sequence[float], clusters: Sequence[Hashable], *,
                           n_resamples: int = N_RESAMPLES, seed: int = 0) -> list[float] | None:
    """Percentile interval of the mean when whole clusters are resampled; ``None`` without data."""
    _ids, sums, counts = _cluster_table(values, clusters)
    k = sums.size
    if k == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_resamples, k))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return _percentile_interval(means)


def paired_bootstrap(a_values: Sequence[float], a_clusters: Sequence[Hashable],
                     b_values: Sequence[float], b_clusters: Sequence[Hashable], *,
                     n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any] | None:
    """Mean(A) − mean(B) over the clusters both have, resampling those clusters jointly.

    Returns ``{"diff", "ci95", "p_a_better", "n_clusters"}`` (``p_a_better``: share of resamples with a
    positive difference), or ``None`` when the two share no cluster.
    """
    a_ids, a_sums, a_counts = _cluster_table(a_values, a_clusters)
    b_ids, b_sums, b_counts = _cluster_table(b_values, b_clusters)
    b_pos = {c: i for i, c in enumerate(b_ids)}
    shared = [(i, b_pos[c]) for i, c in enumerate(a_ids) if c in b_pos]
    if not shared:
        return None
    ai = np.asarray([s[0] for s in shared])
    bi = np.asarray([s[1] for s in shared])
    sa, ca, sb, cb = a_sums[ai], a_counts[ai], b_sums[bi], b_counts[bi]
    diff = float(sa.sum() / ca.sum() - sb.sum() / cb.sum())
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(shared), size=(n_resamples, len(shared)))
    diffs = sa[draws].sum(axis=1) / ca[draws].sum(axis=1) - sb[draws].sum(axis=1) / cb[draws].sum(axis=1)
    return {
        "diff": diff,
        "ci95": _percentile_interval(diffs),
        "p_a_better": float(np.mean(diffs > 0)),
        "n_clusters": len(shared),
    }


def pareto_front(points: dict[str, tuple[float, ...]]) -> list[str]:
    """Names not dominated: no other point is at least as good on every axis (all maximised) and better on one."""
    front = []
    for n, p in points.items():
        dominated = any(all(q_i >= p_i for q_i, p_i in zip(q, p, strict=True)) and q != p
                        for m, q in points.items() if m != n)
        if not dominated:
            front.append(n)
    return front
