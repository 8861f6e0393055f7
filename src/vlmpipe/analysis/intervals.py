"""One aggregation for every per-generation figure: its value, 95% intervals and paired differences.

Repeats of one screenshot are not independent, so the interval that counts is the cluster bootstrap over
screenshots (:func:`vlmpipe.core.stats.cluster_bootstrap_ci95`); the naive mean ± 1.96·sd/√n is kept beside it
for comparison with the original study. Model-vs-model differences resample the screenshots both models have,
jointly (:func:`vlmpipe.core.stats.paired_bootstrap`). The judge ratio goes through the same functions as chrF.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from vlmpipe.analysis.summary import FieldValue, PairwiseEntry, number
from vlmpipe.core import stats
from vlmpipe.core.fields import Aggregation


@dataclass
class Series:
    """The values of one column for one model, each with the screenshot (cluster) it came from (the values packed
    as doubles: a run's series take 8 bytes a value, not a Python float's 32)."""

    values: Sequence[float] = field(default_factory=lambda: array("d"))
    clusters: list[Hashable] = field(default_factory=list)

    def add(self, value: object, cluster: Hashable) -> None:
        v = number(value)
        if v is not None:
            self.values.append(v)  # type: ignore[attr-defined]
            self.clusters.append(cluster)

    def where(self, keep: set[Hashable]) -> Series:
        """The values of the clusters in ``keep`` (a slice of the screenshots)."""
        pairs = [(v, c) for v, c in zip(self.values, self.clusters, strict=True) if c in keep]
        return Series([v for v, _ in pairs], [c for _, c in pairs])


def _rate(values: Sequence[float]) -> list[float]:
    return [1.0 if v > 0 else 0.0 for v in values]


def field_value(series: Series | None, aggregation: Aggregation, *, seed: int = 0,
                n_resamples: int = stats.N_RESAMPLES) -> FieldValue:
    """A field's figure from its series: ``sum``; or ``mean``/``rate`` (share of values > 0) with the cluster
    bootstrap and the naive 95% interval."""
    return field_values({"": (series, aggregation)}, seed=seed, n_resamples=n_resamples)[""]


def field_values(fields: dict[str, tuple[Series | None, Aggregation]], *, seed: int = 0,
                 n_resamples: int = stats.N_RESAMPLES) -> dict[str, FieldValue]:
    """:func:`field_value` of many fields at once: their cluster bootstraps share resamples
    (:func:`vlmpipe.core.stats.cluster_bootstrap_many`)."""
    out: dict[str, FieldValue] = {}
    pending: list[tuple[str, list[float], int, int]] = []
    tables = []
    for key, (series, aggregation) in fields.items():
        if series is None or not series.values:
            out[key] = FieldValue(value=None, n=0, n_items=0)
            continue
        n, n_items = len(series.values), len(set(series.clusters))
        if aggregation == "sum":
            out[key] = FieldValue(value=float(sum(series.values)), n=n, n_items=n_items)
            continue
        values = _rate(series.values) if aggregation == "rate" else series.values
        pending.append((key, values, n, n_items))
        tables.append(stats.cluster_table(values, series.clusters))
    intervals = stats.cluster_bootstrap_many(tables, n_resamples=n_resamples, seed=seed)
    for (key, values, n, n_items), ci in zip(pending, intervals, strict=True):
        out[key] = FieldValue(value=float(np.mean(values)), n=n, n_items=n_items, ci95=ci,
                              ci95_naive=stats.naive_ci95(values))
    return {key: out[key] for key in fields}


def paired_differences(key: str, series: dict[str, Series], aggregation: Aggregation, *, seed: int = 0
                       ) -> list[PairwiseEntry]:
    """Every pair of models (in the given order) on field ``key``: mean(a) − mean(b) over shared screenshots."""
    pairs = list(combinations(series, 2))
    tables = []
    for a, b in pairs:
        sa, sb = series[a], series[b]
        va = _rate(sa.values) if aggregation == "rate" else sa.values
        vb = _rate(sb.values) if aggregation == "rate" else sb.values
        tables.append(stats.paired_table(va, sa.clusters, vb, sb.clusters))
    out = []
    for (a, b), res in zip(pairs, stats.paired_bootstrap_many(tables, seed=seed), strict=True):
        if res is not None:
            out.append(PairwiseEntry(a=a, b=b, metric=key, diff=res["diff"], ci95=res["ci95"],
                                     p_a_better=res["p_a_better"], n_items=res["n_clusters"],
                                     separable=not (res["ci95"][0] <= 0 <= res["ci95"][1])))
    return out
