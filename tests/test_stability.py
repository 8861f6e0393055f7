"""Stability across repeats on a constructed case."""

from __future__ import annotations

import pytest

from vlmpipe.analysis.stability import consistency, distinct_share, per_item, within_item_std
from vlmpipe.metrics.overlap import chrf


def row(item: str, text: str, rouge1: float | None = None, latency: float = 1.0) -> dict:
    metrics = {} if rouge1 is None else {"rouge1_f": (rouge1, None)}
    return {"item": item, "text": text, "error": None, "latency_s": latency, "length_chars": len(text),
            "metrics": metrics}


def test_identical_repeats_are_fully_consistent() -> None:
    assert consistency(["Заказ отменили", "Заказ отменили", "Заказ отменили"]) == 100.0
    assert distinct_share(["Заказ отменили", " Заказ  отменили ", "Заказ отменили"]) == pytest.approx(1 / 3)
    assert consistency(["один"]) is None


def test_consistency_is_mean_symmetric_pairwise_chrf() -> None:
    a, b, c = "Заказ отменили вчера", "Заказ отменили", "Платёж не прошёл"
    ab, ac, bc = ((chrf(x, y) + chrf(y, x)) / 2 for x, y in ((a, b), (a, c), (b, c)))
    assert consistency([a, b, c]) == pytest.approx((ab + ac + bc) / 3)
    assert 0 <= ac < ab < 100


def test_stability_summary_on_constructed_model() -> None:
    rows = [
        # item x: 2 identical of 3 -> distinct 2/3; rouge1 0.2, 0.4, 0.6 -> std (ddof=1) 0.2
        row("x", "Заказ отменили", 0.2, 1.0), row("x", "Заказ отменили", 0.4, 1.0), row("x", "Заказ отменён", 0.6, 1.0),
        # item y: 2 identical -> distinct 1/2, consistency 100; rouge1 equal -> std 0
        row("y", "Платёж не прошёл", 0.5, 2.0), row("y", "Платёж не прошёл", 0.5, 4.0),
        # item z: one repeat only -> ignored
        row("z", "Один ответ", 0.9),
    ]
    per = per_item(rows)
    cons_x = consistency(["Заказ отменили", "Заказ отменили", "Заказ отменён"])
    assert per == {"x": (pytest.approx(cons_x), pytest.approx(2 / 3)), "y": (100.0, 0.5)}  # z: one repeat, left out
    std = within_item_std(rows)
    assert std["rouge1_f"] == pytest.approx((0.2 + 0.0) / 2)
    # latency: x all 1.0 -> 0; y 2.0 and 4.0 -> sample std sqrt(2) ≈ 1.4142
    assert std["latency_s"] == pytest.approx((0 + 2 ** 0.5) / 2)


def test_single_repeat_gives_no_stability() -> None:  # why: test_summary_schema (the demo, one repeat)
    rows = [row("x", "a"), row("y", "b")]
    assert per_item(rows) == {} and within_item_std(rows) is None
