"""An example metric plugin for vlmpipe: does the answer say exactly what the reference says?

Installed as a distribution whose entry point is ``[vlmpipe.metrics] exact_match = exact_match_metric``.
"""

from __future__ import annotations

from typing import Any

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register


def normalise(text: str) -> str:
    """Case, spacing and final punctuation do not count: «Заказ отменён.» equals «заказ  отменён»."""
    return " ".join(text.casefold().split()).rstrip(".!?")


@register
class ExactMatch(Metric):
    name = "exact_match"
    columns = ("exact_match",)  # one value per generation: 1.0 or 0.0
    needs = frozenset({"reference"})
    fields = (
        SummaryField("exact_match_rate", "exact match", column="exact_match", aggregation="rate", fmt="{:.0%}",
                     higher_is_better=True, group="quality", description="answers equal to the reference",
                     ranking=True, console=13, plot=True, headline=True, paired=True),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        has_reference = any(item.get("reference") for item in ctx.items.values())
        return None if has_reference else "no reference answers in this run"

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        out: list[dict[str, Score]] = []
        for row in rows:
            reference = (ctx.items.get(row["item"]) or {}).get("reference")
            if not reference:
                out.append({"exact_match": (None, "no reference")})
            else:
                out.append({"exact_match": (float(normalise(row["text"]) == normalise(reference)), None)})
        return out
