"""``spelling_errors``: misspelled words, by Hunspell dictionaries through pyenchant (offline).

Web and e-mail addresses and one-letter words («р.» for рублей) are skipped. Words are runs of letters,
optionally joined by ``-`` or an apostrophe («какой-то», «QR-код», «can't»).
A word all in Cyrillic is checked against ``ru_RU``, one all in Latin against ``en_US``; a hyphenated word
the dictionary rejects is accepted when each of its parts is accepted (by its own script's dictionary);
words mixing scripts inside one part («Ozоn» with a Cyrillic «о») are errors. A word is also accepted when
it is in ``metrics.spelling_allow`` (brands, abbreviations; case-insensitive) or in the project word list
``vlmpipe/wordlists/support_ru.txt`` (support vocabulary Hunspell lacks, e.g. «скриншоте», «промокод»).
Dictionaries are loaded once per process; each word is checked once per process.
"""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import regex

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

URL = regex.compile(r"(?:https?://|www\.)\S+|(?:[\p{L}\d-]+\.)+(?:ru|com|net|org|su|io|рф|info|app)\b\S*|\S+@\S+",
                    regex.IGNORECASE)
WORD = regex.compile(r"\p{L}+(?:['’\-]\p{L}+)*")
_CYR = regex.compile(r"^[\p{Cyrillic}\-'’]+$")
_LAT = regex.compile(r"^[\p{Latin}\-'’]+$")
DICTIONARIES = {"cyrillic": "ru_RU", "latin": "en_US"}


@cache
def project_words() -> frozenset[str]:
    """The bundled support word list, lower-cased (``#`` starts a comment)."""
    text = resources.files("vlmpipe").joinpath("wordlists/support_ru.txt").read_text(encoding="utf-8")
    return frozenset(
        line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )


@cache
def dictionaries() -> dict[str, Any]:
    """``{"cyrillic": ru_RU, "latin": en_US}`` enchant dictionaries; raises when one is missing."""
    import enchant

    return {script: enchant.Dict(tag) for script, tag in DICTIONARIES.items()}


def why_unavailable() -> str | None:
    try:
        import enchant
    except ImportError as err:  # pragma: no cover - dependency declared
        return f"pyenchant is not importable ({err}); install libenchant-2-2"
    missing = [tag for tag in DICTIONARIES.values() if not enchant.dict_exists(tag)]
    if missing:
        return f"Hunspell dictionaries {missing} not found (Debian: apt-get install hunspell-ru hunspell-en-us)"
    return None


@lru_cache(maxsize=100_000)
def _dictionary_ok(word: str) -> bool:
    dicts = dictionaries()
    if _CYR.match(word):
        d = dicts["cyrillic"]
    elif _LAT.match(word):
        d = dicts["latin"]
    else:
        return False
    if d.check(word):
        return True
    return "ё" in word.lower() and d.check(word.replace("ё", "е").replace("Ё", "Е"))


def word_ok(word: str, allowed: frozenset[str]) -> bool:
    """Whether one word is spelled correctly (allow-list, project list, then the dictionaries)."""
    low = word.lower()
    if low in allowed or low in project_words():
        return True
    if _dictionary_ok(word):
        return True
    parts = regex.split(r"[\-'’]", word)
    if len(parts) > 1:
        return all(p.lower() in allowed or p.lower() in project_words() or _dictionary_ok(p) for p in parts if p)
    return False


def misspelled(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    """The misspelled words of ``text`` in order of appearance (repeats kept)."""
    return [w for w in WORD.findall(URL.sub(" ", text)) if len(w) > 1 and not word_ok(w, allowed)]


@register
class Spelling(Metric):
    name = "spelling"
    columns = ("spelling_errors",)
    parallel = True
    fields = (
        SummaryField("spelling_errors_sum", "spelling Σ", column="spelling_errors", aggregation="sum", fmt="{:.0f}",
                     higher_is_better=False, group="fluency",
                     description="misspelled words (Hunspell), summed over answers", ranking=True, technical=True),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        return why_unavailable()

    def version(self, ctx: ScoreContext) -> str:
        allow = ",".join(sorted(w.lower() for w in ctx.cfg.metrics.spelling_allow))
        words = hashlib.sha256("\n".join(sorted(project_words())).encode()).hexdigest()[:8]
        return f"1:allow={allow}:words={words}"

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        allowed = frozenset(w.lower() for w in ctx.cfg.metrics.spelling_allow)
        out = []
        for r in rows:
            bad = misspelled(r["text"], allowed)
            out.append({"spelling_errors": (float(len(bad)), bad)})
        return out
