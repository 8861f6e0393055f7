"""Letter scripts of a generation: other alphabets and the share of Latin (the original's drift measures).

* ``non_ru_en_letters`` — letters (``\\p{L}``) that are neither Cyrillic nor Latin (Chinese, Arabic...);
  detail: those letters, in order, as one string. Catches Qwen's drift into Chinese.
* ``en_letters_pct`` — 100 × Latin letters / all letters (``None`` for a text without letters).
  Brand names in Latin (Ozon, Visa) make it non-zero for ordinary Russian requests.
* ``unique_en_words`` — the number of distinct Latin-script words (lower-cased) not in
  ``metrics.spelling_allow``; detail: the sorted words.
"""

from __future__ import annotations

from typing import Any

import regex

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

LETTER = regex.compile(r"\p{L}")
LATIN = regex.compile(r"\p{Latin}")
OTHER = regex.compile(r"[^\P{L}\p{Cyrillic}\p{Latin}]")
LATIN_WORD = regex.compile(r"\p{Latin}+(?:['’]\p{Latin}+)*")


def letter_stats(text: str, allowed: frozenset[str] = frozenset()) -> dict[str, Score]:
    letters = len(LETTER.findall(text))
    other = OTHER.findall(text)
    latin = len(LATIN.findall(text))
    en_words = sorted({w.lower() for w in LATIN_WORD.findall(text)} - allowed)
    return {
        "non_ru_en_letters": (float(len(other)), "".join(other) or None),
        "en_letters_pct": (100.0 * latin / letters if letters else None, None),
        "unique_en_words": (float(len(en_words)), en_words),
    }


@register
class Letters(Metric):
    name = "letters"
    columns = ("non_ru_en_letters", "en_letters_pct", "unique_en_words")
    parallel = True
    fields = (
        SummaryField("non_ru_en_letters_sum", "non-ru/en letters Σ", column="non_ru_en_letters", aggregation="sum",
                     fmt="{:.0f}", higher_is_better=False, group="language",
                     description="letters outside the Russian and English alphabets, summed over answers",
                     technical=True),
        SummaryField("en_letters_pct", "Latin letters", column="en_letters_pct", aggregation="mean", fmt="{:.1f}",
                     unit="%", group="language", description="share of Latin letters among an answer's letters",
                     technical=True),
    )

    def version(self, ctx: ScoreContext) -> str:
        return "1:" + ",".join(sorted(w.lower() for w in ctx.cfg.metrics.spelling_allow))

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        allowed = frozenset(w.lower() for w in ctx.cfg.metrics.spelling_allow)
        return [letter_stats(r["text"], allowed) for r in rows]
