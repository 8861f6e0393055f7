"""The statistics module on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlmpipe.core.stats import cluster_bootstrap_ci95, naive_ci95, paired_bootstrap


def test_constant_sample_gives_zero_width_intervals() -> None:
    values = [0.8] * 20
    clusters = [f"img{i // 5}" for i in range(20)]
    assert naive_ci95(values) == pytest.approx([0.8, 0.8])
    assert cluster_bootstrap_ci95(values, clusters, n_resamples=500) == pytest.approx([0.8, 0.8])


def test_naive_interval_uses_sample_std() -> None:
    # mean 2.5, sample std sqrt(5/3), n 4: half-width 1.96 * 1.29099 / 2 = 1.265171
    lo, hi = naive_ci95([1, 2, 3, 4])
    assert (lo + hi) / 2 == pytest.approx(2.5)
    assert (hi - lo) / 2 == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)
    assert naive_ci95([1.0]) is None
    assert naive_ci95([]) is None


def test_two_clusters_make_the_cluster_interval_wider_than_the_naive_one() -> None:
    # two screenshots, 25 near-identical repeats each: one at 0.4, one at 1.0. The naive interval thinks it
    # has 50 independent values; resampling the 2 screenshots can give 0.4, 0.7 or 1.0.
    rng = np.random.default_rng(1)
    values = list(0.4 + rng.normal(0, 0.01, 25)) + list(1.0 + rng.normal(0, 0.01, 25))
    clusters = ["a"] * 25 + ["b"] * 25
    nlo, nhi = naive_ci95(values)
    clo, chi = cluster_bootstrap_ci95(values, clusters, n_resamples=4000, seed=3)
    assert nhi - nlo == pytest.approx(2 * 1.96 * np.std(values, ddof=1) / math.sqrt(50))
    assert nhi - nlo < 0.2
    assert clo == pytest.approx(np.mean(values[:25]), abs=1e-9)  # both draws the low screenshot
    assert chi == pytest.approx(np.mean(values[25:]), abs=1e-9)
    assert chi - clo > 3 * (nhi - nlo)


def test_cluster_bootstrap_is_seeded_and_weights_clusters_by_size() -> None:
    values = [1.0, 1.0, 1.0, 0.0]
    clusters = ["big", "big", "big", "small"]
    a = cluster_bootstrap_ci95(values, clusters, n_resamples=2000, seed=7)
    assert a == cluster_bootstrap_ci95(values, clusters, n_resamples=2000, seed=7)
    # resamples: {big,big}=1, {small,small}=0, {big,small}=3/4 -> percentiles 0 and 1
    assert a == pytest.approx([0.0, 1.0])
    with pytest.raises(ValueError):
        cluster_bootstrap_ci95([1.0], ["a", "b"])
    assert cluster_bootstrap_ci95([], []) is None


def test_paired_bootstrap_uses_shared_screenshots_only() -> None:
    a_vals = [0.9, 0.9, 0.8, 0.8, 0.5]
    a_cl = ["x", "x", "y", "y", "only_a"]
    b_vals = [0.7, 0.7, 0.6, 0.6]
    b_cl = ["x", "x", "y", "y"]
    res = paired_bootstrap(a_vals, a_cl, b_vals, b_cl, n_resamples=2000, seed=0)
    assert res is not None
    assert res["n_clusters"] == 2
    assert res["diff"] == pytest.approx(0.2)  # A leads by exactly 0.2 on both shared screenshots
    assert res["ci95"] == pytest.approx([0.2, 0.2])
    assert res["p_a_better"] == 1.0
    assert paired_bootstrap([1.0], ["p"], [1.0], ["q"]) is None


def test_paired_bootstrap_probability_reflects_disagreeing_screenshots() -> None:
    # A beats B by 0.1 on screenshot x and loses by 0.1 on y: the difference is 0, P(A>B) is about
    # P({x,x}) = 1/4 (ties at exactly 0 do not count as wins).
    res = paired_bootstrap([0.9, 0.5], ["x", "y"], [0.8, 0.6], ["x", "y"], n_resamples=8000, seed=1)
    assert res is not None
    assert res["diff"] == pytest.approx(0.0)
    assert res["p_a_better"] == pytest.approx(0.25, abs=0.02)
    assert res["ci95"] == pytest.approx([-0.1, 0.1])
