"""Agreement between the judges of a panel: how far one judge's taste moves the numbers.

* :func:`spearman` — Spearman's rank correlation of two judges' per-judgement scores (ties get their average rank;
  the Pearson correlation of the ranks).
* :func:`krippendorff_alpha` — Krippendorff's alpha with the interval metric (δ² = (a − b)²) over units (judgements)
  × coders (judges), missing values allowed: ``α = 1 − (n − 1)·Σ_u Σ_{i≠j∈u} (v_i − v_j)² / (m_u − 1) /
  Σ_{i≠j} (v_i − v_j)²``, over the *pairable* values (units with at least two), ``n`` of them. 1 is perfect
  agreement, 0 what chance gives, below 0 systematic disagreement.
* :func:`alpha_cluster_ci95` — a cluster-bootstrap interval of alpha that resamples screenshots (the repeats and the
  questions of one screenshot are not independent), as every other interval of the report does.
* :func:`kendall_tau` — Kendall's τ-b of two judges' per-model figures: whether they rank the models alike
  (1: the same order, −1: the reverse).

All are plain NumPy (no SciPy dependency); ``tests/test_agreement.py`` checks them against hand-computed values and
Krippendorff's own worked example.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from vlmpipe.core import stats

Unit = Sequence[float | None]


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    arr = np.asarray(values, dtype=float)
    order = np.argsort(arr, kind="mergesort")
    ranks = np.empty(arr.size, dtype=float)
    i = 0
    while i < arr.size:
        j = i
        while j + 1 < arr.size and arr[order[j + 1]] == arr[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ of paired values; ``None`` with fewer than 2 pairs or when either side is constant."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    if len(x) < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return None if denominator == 0 else float((dx * dy).sum()) / denominator


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's τ-b of paired values (ties in either side adjust the denominator); ``None`` when undefined."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    concordant = discordant = ties_x = ties_y = 0
    for i, j in combinations(range(len(x)), 2):
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if sx == 0 and sy == 0:
            continue
        if sx == 0:
            ties_x += 1
        elif sy == 0:
            ties_y += 1
        elif sx == sy:
            concordant += 1
        else:
            discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denominator == 0 else (concordant - discordant) / denominator


def _unit_stats(units: Sequence[Unit]) -> np.ndarray:
    """Per pairable unit: ``[observed disagreement Σ_{i≠j}(v_i − v_j)²/(m − 1), m, Σv, Σv²]`` (rows of zeros for units
    with fewer than two values, which carry no pairable value)."""
    out = np.zeros((len(units), 4))
    for k, unit in enumerate(units):
        values = np.asarray([v for v in unit if v is not None], dtype=float)
        m = values.size
        if m < 2:
            continue
        s, q = float(values.sum()), float((values * values).sum())
        out[k] = (2 * (m * q - s * s) / (m - 1), m, s, q)
    return out


def _alpha(observed: np.ndarray, n: np.ndarray, total: np.ndarray, squares: np.ndarray) -> np.ndarray:
    expected = 2 * (n * squares - total * total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)


def krippendorff_alpha(units: Sequence[Unit]) -> float | None:
    """Krippendorff's alpha (interval metric) of ``units``: each a sequence of the coders' values (``None``: the
    coder gave none). ``None`` when no unit has two values or every pairable value is the same."""
    st = _unit_stats(units).sum(axis=0)
    if st[1] < 2:
        return None
    value = float(_alpha(*(np.asarray(x) for x in st)))
    return None if math.isnan(value) else value


def alpha_cluster_ci95(units: Sequence[Unit], clusters: Sequence[Hashable], *, n_resamples: int = stats.N_RESAMPLES,
                       seed: int = 0) -> list[float] | None:
    """95% percentile interval of :func:`krippendorff_alpha` when whole clusters (screenshots) of units are
    resampled with replacement; ``None`` without two pairable values or when no resample is defined."""
    if len(units) != len(clusters):
        raise ValueError("units and clusters must have the same length")
    per_unit = _unit_stats(units)
    ids: dict[Hashable, int] = {}
    for c in clusters:
        ids.setdefault(c, len(ids))
    if not ids or per_unit[:, 1].sum() < 2:
        return None
    per_cluster = np.zeros((len(ids), 4))
    np.add.at(per_cluster, np.asarray([ids[c] for c in clusters]), per_unit)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ids), size=(n_resamples, len(ids)))
    counts = np.zeros((n_resamples, len(ids)))
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1)
    sums = counts @ per_cluster
    alphas = _alpha(sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3])
    alphas = alphas[np.isfinite(alphas)]
    if alphas.size == 0:
        return None
    lo, hi = np.percentile(alphas, [2.5, 97.5])
    return [float(lo), float(hi)]


def panel_agreement(scores: dict[str, dict[Hashable, float]], clusters: dict[Hashable, Hashable],
                    ratios: dict[str, dict[str, float]], *, seed: int = 0,
                    n_resamples: int = stats.N_RESAMPLES) -> dict[str, Any]:
    """The agreement block of a panel.

    ``scores``: ``{judge: {judgement: score}}`` (a judgement a judge could not score is absent); ``clusters``:
    judgement → screenshot; ``ratios``: ``{judge: {model: that judge's ratio of the model}}``."""
    judges = list(scores)
    units_ids = sorted({u for s in scores.values() for u in s}, key=str)
    units = [[scores[j].get(u) for j in judges] for u in units_ids]
    pairable = [(u, row) for u, row in zip(units_ids, units, strict=True) if sum(v is not None for v in row) >= 2]
    pairs = []
    for a, b in combinations(judges, 2):
        shared = [u for u in units_ids if u in scores[a] and u in scores[b]]
        models = [m for m in ratios.get(a, {}) if m in ratios.get(b, {})]
        pairs.append({
            "a": a, "b": b, "n": len(shared),
            "spearman": spearman([scores[a][u] for u in shared], [scores[b][u] for u in shared]),
            "ranking_kendall_tau": kendall_tau([ratios[a][m] for m in models], [ratios[b][m] for m in models])
            if len(models) >= 2 else None,
            "n_models": len(models),
        })
    ranking = {j: sorted(ratios.get(j, {}), key=lambda m, j=j: -ratios[j][m]) for j in judges}
    orders = {tuple(r) for r in ranking.values()}
    alpha_units = [row for _u, row in pairable]
    return {
        "judges": judges,
        "n": len(pairable),
        "n_items": len({clusters.get(u, u) for u, _row in pairable}),
        "pairs": pairs,
        "krippendorff_alpha": krippendorff_alpha(alpha_units),
        "krippendorff_alpha_ci95": alpha_cluster_ci95(alpha_units, [clusters.get(u, u) for u, _r in pairable],
                                                      n_resamples=n_resamples, seed=seed),
        "krippendorff_alpha_method": f"interval metric; cluster bootstrap over screenshots, {n_resamples} resamples, "
                                     f"seed {seed}",
        "ranking": ranking,
        "same_ranking": len(orders) == 1 if all(len(r) >= 2 for r in ranking.values()) else None,
    }
