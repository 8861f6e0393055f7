"""Overlap with the reference: ROUGE-1/2/L F-measure on stemmed word tokens, and chrF++.

* ``rouge1_f``, ``rouge2_f``, ``rougeL_f`` — Google's ``rouge-score`` ``RougeScorer`` (F-measure; ROUGE-L is
  the sentence-level LCS variant) with :class:`~vlmpipe.core.wordtokens.StemmingTokenizer`: Unicode word
  tokens, lower-cased, ``ё``→``е``, Snowball-stemmed (Russian for Cyrillic, English for Latin). The
  library's default tokenizer keeps only ``[a-z0-9]`` and would score Russian text as empty.
  Setting ``metrics.settings.rouge.stemming: false`` turns stemming off.
* ``chrf`` — chrF++ (character n-grams up to 6 plus word n-grams up to 2, β = 2) from sacrebleu,
  ``CHRF(word_order=2).sentence_score(generation, [reference])``, on sacrebleu's 0–100 scale. Computed with
  sacrebleu's own n-gram extraction and F-score, but each text's n-grams are counted once (a reference serves all
  the answers to its screenshot) and one comparison gives both directions (:func:`chrf_pair`): the same numbers as
  ``sentence_score``, about 3× faster.

A generation whose item has no reference gets ``None`` (detail ``"no reference"``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import cache, lru_cache
from itertools import combinations
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


@lru_cache(maxsize=256)  # a text's n-gram counters take ~75 kB: keep those of the texts in hand only
def _ngrams(text: str) -> tuple[tuple[Any, int], ...]:
    """The character (1..6) and word (1..2) n-gram counters of a text as chrF++ counts them, each with its total."""
    from sacrebleu.metrics.helpers import extract_all_char_ngrams, extract_word_ngrams

    scorer = chrf_scorer()
    counters = extract_all_char_ngrams(text, scorer.char_order, scorer.whitespace)
    words = scorer._remove_punctuation(text)
    counters.extend(extract_word_ngrams(words, n) for n in range(1, scorer.word_order + 1))
    return tuple((c, sum(c.values())) for c in counters)


def chrf_pair(a: str, b: str) -> tuple[float, float]:
    """``(chrF++(a | b), chrF++(b | a))``: both directions from one count of the shared n-grams (the matches are
    symmetric, only precision and recall swap), each equal to sacrebleu's ``sentence_score``."""
    for text in (a, b):
        if not isinstance(text, str):
            raise TypeError(f"chrF needs texts, got {type(text).__name__}")
    ab: list[int] = []
    ba: list[int] = []
    for (ca, ta), (cb, tb) in zip(_ngrams(a), _ngrams(b), strict=True):
        small, big = (ca, cb) if len(ca) <= len(cb) else (cb, ca)
        match = 0
        for gram, count in small.items():
            other = big.get(gram)
            if other is not None:
                match += count if count < other else other
        ab += [ta if cb else 0, tb, match]  # sacrebleu: hypothesis count 0 when the reference has no n-grams
        ba += [tb if ca else 0, ta, match]
    scorer = chrf_scorer()
    return float(scorer._compute_f_score(ab)), float(scorer._compute_f_score(ba))


@lru_cache(maxsize=50_000)
def chrf(generation: str, reference: str) -> float:
    """chrF++ of a generation against one reference, 0–100."""
    return chrf_pair(generation, reference)[0]


def consistency(texts: list[str]) -> float | None:
    """Mean pairwise symmetric chrF++ (0–100) of the texts (repeats of one item); ``None`` for fewer than two."""
    if len(texts) < 2:
        return None
    counts = Counter(texts)  # identical repeats score 100 without calling chrF
    n = len(texts)
    total = sum(100.0 * c * (c - 1) / 2 for c in counts.values())
    for (a, ca), (b, cb) in combinations(counts.items(), 2):
        ab, ba = chrf_pair(a, b)
        total += ca * cb * (ab + ba) / 2
    return total / (n * (n - 1) / 2)


def distinct_share(texts: list[str]) -> float | None:
    """Distinct answers / repeats, comparing texts after stripping and collapsing whitespace."""
    if not texts:
        return None
    return len({" ".join(t.split()) for t in texts}) / len(texts)


def texts_key(texts: list[str]) -> str:
    """What a stored stability figure was computed from: a hash of the texts, in order."""
    digest = hashlib.sha256()
    for t in texts:
        digest.update(t.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00\x1f")
    return f"{len(texts)}:{digest.hexdigest()[:24]}"


def _has_references(ctx: ScoreContext) -> str | None:
    if not any(i.get("reference") for i in ctx.items.values()):
        return "no reference texts in this run (set them in the dataset, or references.source: model)"
    return None


@register
class Rouge(Metric):
    name = "rouge"
    columns = ("rouge1_f", "rouge2_f", "rougeL_f")
    parallel = True
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
    parallel = True
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
