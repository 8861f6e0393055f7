"""Overlap with the reference: ROUGE-1/2/L F-measure on stemmed word tokens, and chrF++.

* ``rouge1_f``, ``rouge2_f``, ``rougeL_f`` — Google's ``rouge-score`` ``RougeScorer`` (F-measure; ROUGE-L is
  the sentence-level LCS variant) with :class:`~vlmpipe.core.wordtokens.StemmingTokenizer`: Unicode word
  tokens, lower-cased, ``ё``→``е``, Snowball-stemmed (Russian for Cyrillic, English for Latin). The
  library's default tokenizer keeps only ``[a-z0-9]`` and would score Russian text as empty.
  Setting ``metrics.settings.rouge.stemming: false`` turns stemming off.
* ``chrf`` — chrF++ (character n-grams up to 6 plus word n-grams up to 2, β = 2) from sacrebleu,
  ``CHRF(word_order=2).sentence_score(generation, [reference])``, on sacrebleu's 0–100 scale.

A generation whose item has no reference gets ``None`` (detail ``"no reference"``).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from vlmpipe.core.fields import SummaryField
from vlmpipe.core.wordtokens import StemmingTokenizer
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@cache
def rouge_scorer(stemming: bool = True) -> Any:
    from rouge_score import rouge_scorer as rs

    return rs.RougeScorer(list(ROUGE_TYPES), tokenizer=StemmingTokenizer(stemming))


def rouge(generation: str, reference: str, *, stemming: bool = True) -> dict[str, float]:
    """``{"rouge1_f": ..., "rouge2_f": ..., "rougeL_f": ...}`` of a generation against its reference."""
    return dict(_rouge(generation, reference, stemming))


@lru_cache(maxsize=20_000)
def _rouge(generation: str, reference: str, stemming: bool) -> tuple[tuple[str, float], ...]:
    # Cached: repeats of a model often produce the very same text.
    scores = rouge_scorer(stemming).score(reference, generation)
    return tuple((f"{t}_f", scores[t].fmeasure) for t in ROUGE_TYPES)


@cache
def chrf_scorer() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2)


@lru_cache(maxsize=50_000)
def chrf(generation: str, reference: str) -> float:
    """chrF++ of a generation against one reference, 0–100."""
    return float(chrf_scorer().sentence_score(generation, [reference]).score)


def _has_references(ctx: ScoreContext) -> str | None:
    if not any(i.get("reference") for i in ctx.items.values()):
        return "no reference texts in this run (set them in the dataset, or references.source: model)"
    return None


@register
class Rouge(Metric):
    name = "rouge"
    columns = ("rouge1_f", "rouge2_f", "rougeL_f")
    needs = frozenset({"reference"})
    fields = (
        SummaryField("rouge1_f_mean", "ROUGE-1", short="R-1", column="rouge1_f", aggregation="mean",
                     higher_is_better=True, group="quality",
                     description="unigram F1 against the reference (Russian stemming)", ranking=True, console=11,
                     plot=True, headline=True, quality=2, paired=True),
        SummaryField("rouge2_f_mean", "ROUGE-2", column="rouge2_f", aggregation="mean", higher_is_better=True,
                     group="quality", description="bigram F1 against the reference", ranking=True, paired=True),
        SummaryField("rougeL_f_mean", "ROUGE-L", column="rougeL_f", aggregation="mean", higher_is_better=True,
                     group="quality", description="longest-common-subsequence F1 against the reference", ranking=True,
                     paired=True),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        return _has_references(ctx)

    def version(self, ctx: ScoreContext) -> str:
        return f"1:stem={self._stemming(ctx)}"

    @staticmethod
    def _stemming(ctx: ScoreContext) -> bool:
        return bool(ctx.settings("rouge").get("stemming", True))

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        stemming = self._stemming(ctx)
        out: list[dict[str, Score]] = []
        for r in rows:
            ref = (ctx.items.get(r["item"]) or {}).get("reference")
            if not ref:
                out.append({c: (None, "no reference") for c in self.columns})
                continue
            out.append({k: (v, None) for k, v in rouge(r["text"], ref, stemming=stemming).items()})
        return out


@register
class Chrf(Metric):
    name = "chrf"
    columns = ("chrf",)
    needs = frozenset({"reference"})
    fields = (
        SummaryField("chrf_mean", "chrF", column="chrf", aggregation="mean", fmt="{:.1f}", higher_is_better=True,
                     group="quality", description="character n-gram F-score against the reference (0-100)",
                     ranking=True, console=2, plot=True, headline=True, quality=1, paired=True),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        return _has_references(ctx)

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        out: list[dict[str, Score]] = []
        for r in rows:
            ref = (ctx.items.get(r["item"]) or {}).get("reference")
            out.append({"chrf": (chrf(r["text"], ref), None) if ref else (None, "no reference")})
        return out
