"""``language`` and ``off_language``: the detected language of a generation, and whether it is not the expected one.

Detection uses lingua (offline n-gram models) restricted to ``metrics.languages`` (default ru, en, uk, be, kk):
an unrestricted detector calls «Оплата через Ozon Pay» Ukrainian and «СБП» Belarusian. A text with fewer than
``metrics.min_language_chars`` letters is not judged: ``language`` is ``None`` (detail ``"short"``) and
``off_language`` is 0 — a short brand-heavy answer is never flagged. Otherwise ``language`` holds the ISO
639-1 code as its detail (its value is ``None``: it is a label) and ``off_language`` is 1 when that code is
not ``metrics.expected_language``. ``off_language_rate`` is the mean of ``off_language`` over all successful
generations. When lingua cannot decide, ``language`` is ``None`` with detail ``"undetermined"`` and
``off_language`` is 0. Distinct texts are detected once, in parallel. Drift into Chinese is counted by
``non_ru_en_letters`` (letters module), whichever language lingua picks.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import regex

from vlmpipe.core.fields import Alert, SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

LETTER = regex.compile(r"\p{L}")


def _language(code: str) -> Any:
    from lingua import IsoCode639_1, Language

    return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))


@cache
def detector(codes: tuple[str, ...]) -> Any:
    """A lingua detector for these ISO 639-1 codes, built once per process (models load lazily on first use)."""
    from lingua import LanguageDetectorBuilder

    langs = [_language(c) for c in codes]
    if len(langs) == 1:
        raise ValueError("metrics.languages needs at least two languages")
    return LanguageDetectorBuilder.from_languages(*langs).build()


def detect(text: str, codes: tuple[str, ...], min_letters: int) -> str | None:
    """ISO 639-1 code of the most likely language, or ``None`` for a text too short to judge."""
    if len(LETTER.findall(text)) < min_letters:
        return None
    lang = detector(codes).detect_language_of(text)
    return None if lang is None else lang.iso_code_639_1.name.lower()


def _codes(ctx: ScoreContext) -> tuple[str, ...]:
    m = ctx.cfg.metrics
    return tuple(sorted({c.lower() for c in [*m.languages, m.expected_language]}))


@register
class LanguageId(Metric):
    name = "language"
    columns = ("language", "off_language")
    # not in worker processes: lingua detects distinct texts on every core by itself, and its models take ~180 MB in
    # each process that loads them
    fields = (
        SummaryField("off_language_rate", "off-language", short="off-lang", column="off_language", aggregation="rate",
                     fmt="{:.1%}", higher_is_better=False, group="language",
                     description="answers not in the expected language", ranking=True, console=3, technical=True,
                     headline=True,
                     alert=Alert("off_language", "{model} answers in another language in {value:.1%} of generations.",
                                 above=0.0, flags=True)),
    )

    def unavailable(self, ctx: ScoreContext) -> str | None:
        try:
            import lingua  # noqa: F401
        except ImportError as err:  # pragma: no cover - dependency declared
            return f"lingua-language-detector is not importable: {err}"
        bad = []
        for c in _codes(ctx):
            try:
                _language(c)
            except ValueError:
                bad.append(c)
        if bad:
            return f"metrics.languages: unknown ISO 639-1 code(s) {bad}"
        if len(_codes(ctx)) < 2:
            return "metrics.languages must name at least two languages"
        return None

    def version(self, ctx: ScoreContext) -> str:
        m = ctx.cfg.metrics
        return f"1:{','.join(_codes(ctx))}:expect={m.expected_language}:min={m.min_language_chars}"

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        codes, expected = _codes(ctx), ctx.cfg.metrics.expected_language.lower()
        min_letters = ctx.cfg.metrics.min_language_chars
        judged = sorted({r["text"] for r in rows if len(LETTER.findall(r["text"])) >= min_letters})
        found = detector(codes).detect_languages_in_parallel_of(judged) if judged else []
        code_of = {t: None if lang is None else lang.iso_code_639_1.name.lower()
                   for t, lang in zip(judged, found, strict=True)}
        out = []
        for r in rows:
            if r["text"] not in code_of:
                out.append({"language": (None, "short" if LETTER.search(r["text"]) else None),
                            "off_language": (0.0, None)})
                continue
            code = code_of[r["text"]]
            if code is None:
                out.append({"language": (None, "undetermined"), "off_language": (0.0, None)})
            else:
                out.append({"language": (None, code), "off_language": (float(code != expected), None)})
        return out
