"""Word tokens for overlap metrics: Unicode-aware, lower-cased, stemmed (Snowball Russian / English).

Google's rouge-score default tokenizer keeps only ``[a-z0-9]`` and so deletes every Cyrillic letter;
this one keeps every letter and digit (``\\w+`` in the Unicode sense, ``_`` excluded), folds ``ё`` to ``е``,
and stems Cyrillic words with the Snowball Russian stemmer and Latin words with the Snowball English one.
Stems are cached per word, which makes stemming ~10x cheaper on real answers that repeat their words.
"""

from __future__ import annotations

from functools import lru_cache

import regex
import snowballstemmer

WORD = regex.compile(r"[\p{L}\p{N}\p{M}]+")
_CYRILLIC = regex.compile(r"\p{Cyrillic}")
_LATIN = regex.compile(r"\p{Latin}")
_RU = snowballstemmer.stemmer("russian")
_EN = snowballstemmer.stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits, combining marks); ``ё`` folded to ``е``."""
    return WORD.findall(text.lower().replace("ё", "е"))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball stem of one lower-cased word: Russian for Cyrillic, English for Latin, others unchanged."""
    if _CYRILLIC.search(word):
        return _RU.stemWord(word)
    if _LATIN.search(word):
        return _EN.stemWord(word)
    return word


class StemmingTokenizer:
    """A tokenizer object in the shape ``rouge_score.rouge_scorer.RougeScorer(tokenizer=...)`` expects."""

    def __init__(self, stemming: bool = True) -> None:
        self.stemming = stemming

    def tokenize(self, text: str) -> list[str]:
        toks = words(text)
        return [stem(t) for t in toks] if self.stemming else toks
