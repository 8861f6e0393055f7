"""The agreement statistics of a judge panel, against hand-computed values and Krippendorff's worked example."""

from __future__ import annotations

import math

import pytest

from vlmpipe.analysis.agreement import (
    alpha_cluster_ci95,
    kendall_tau,
    krippendorff_alpha,
    panel_agreement,
    spearman,
)

N = None


def test_krippendorff_alpha_interval_reproduces_krippendorffs_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 coders x 12 units with missing values:
    # alpha = 0.849 with the interval metric
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3]
    c = [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]
    assert round(krippendorff_alpha(list(zip(a, b, c, d, strict=True))), 3) == 0.849  # type: ignore[arg-type]


def test_krippendorff_alpha_by_hand() -> None:
    # units (1, 2), (3, 3), (5, 4): n = 6 pairable values, sum 18, sum of squares 64.
    # observed: sum over units of sum_{i!=j} (v_i - v_j)^2 / (m - 1) = 2 + 0 + 2 = 4
    # expected: sum over all ordered pairs (v_i - v_j)^2 = 2 (n * 64 - 18^2) = 120
    # alpha = 1 - (n - 1) * 4 / 120 = 1 - 20 / 120
    assert krippendorff_alpha([(1, 2), (3, 3), (5, 4)]) == pytest.approx(5 / 6)
    assert krippendorff_alpha([(1, 1), (2, 2), (3, N)]) == pytest.approx(1.0)  # a unit of one value is not pairable
    assert krippendorff_alpha([(2, 2), (2, 2)]) is None  # no variation at all: undefined
    assert krippendorff_alpha([(1, N), (N, 2)]) is None  # nothing pairable


def test_spearman_and_kendall_by_hand() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ties get their average rank: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3); deviations (-.5, -.5, 1), (-1, 0, 1)
    assert spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(1.5 * 2))
    assert spearman([1, 1], [1, 2]) is None and spearman([1], [2]) is None
    assert kendall_tau([0.9, 0.8, 0.7], [0.6, 0.5, 0.4]) == 1.0
    assert kendall_tau([0.9, 0.8], [0.7, 0.8]) == -1.0
    # one concordant, two discordant pairs of three: (1 - 2) / 3
    assert kendall_tau([1, 2, 3], [2, 3, 1]) == pytest.approx(-1 / 3)


def test_alpha_interval_resamples_whole_screenshots() -> None:
    units = [(6, 5), (7, 6), (8, 7), (5, 7), (6, 8), (4, 6)]
    ci = alpha_cluster_ci95(units, ["s0", "s1", "s2", "s0", "s1", "s2"], n_resamples=2000, seed=1)
    assert ci is not None and ci[0] < krippendorff_alpha(units) < ci[1]  # type: ignore[operator]
    again = alpha_cluster_ci95(units, ["s0", "s1", "s2", "s0", "s1", "s2"], n_resamples=2000, seed=1)
    assert again == ci  # seeded
    # one screenshot: every resample is the data itself
    same = alpha_cluster_ci95(units, ["s"] * 6, n_resamples=50)
    assert same == pytest.approx([2 / 13, 2 / 13])


def test_panel_agreement_block() -> None:
    scores = {"j1": {"u1": 1.0, "u2": 2.0, "u3": 3.0}, "j2": {"u1": 1.5, "u2": 2.5, "u4": 9.0}}
    block = panel_agreement(scores, {"u1": "s1", "u2": "s1", "u3": "s2", "u4": "s3"},
                            {"j1": {"a": 0.9, "b": 0.5}, "j2": {"a": 0.4, "b": 0.6}}, n_resamples=100)
    assert block["n"] == 2 and block["n_items"] == 1  # u3 and u4 have one judge's score only
    (pair,) = block["pairs"]
    assert (pair["a"], pair["b"], pair["n"], pair["spearman"]) == ("j1", "j2", 2, pytest.approx(1.0))
    assert pair["ranking_kendall_tau"] == -1.0 and pair["n_models"] == 2
    assert block["ranking"] == {"j1": ["a", "b"], "j2": ["b", "a"]} and block["same_ranking"] is False
    # (1, 1.5), (2, 2.5): observed 2 * 0.5^2 * 2 units = 1; n = 4, sum 7, sum of squares 13.5;
    # expected 2 * (4 * 13.5 - 7^2) = 10; alpha = 1 - (4 - 1) * 1 / 10
    assert block["krippendorff_alpha"] == pytest.approx(0.7)
