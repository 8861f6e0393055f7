"""What the report marks on each answer and judgement: misspelled words, invented numbers, the language, the
judge's scores under fixed names."""

from __future__ import annotations

import re
from typing import Any

from vlmpipe.analysis.summary import number

#: Per-generation columns the gallery shows as marks and badges (not as score chips): the answer's language and
#: its invented numbers.
MARKED_COLUMNS = frozenset({"language", "off_language", "hallucinated_numbers", "refusal", "abstention_correct",
                            "unanswerable_invented"})


def first(d: dict[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` that ``d`` has (not ``None``)."""
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def judgement_view(row: dict[str, Any]) -> dict[str, Any]:
    """A judgement's scores and explanation under fixed names, whatever the table calls them."""
    return {
        "candidate_score": number(first(row, "candidate_score", "score_candidate", "cand_score")),
        "reference_score": number(first(row, "reference_score", "score_reference", "ref_score")),
        "explanation": first(row, "explanation_candidate", "explanation", "judge_explanation") or "",
        "error": row.get("error"),
        "position": first(row, "candidate_position", "ordering", "position"),
        "judge": row.get("judge"),  # which judge of a panel
    }


def generation_key(row: dict[str, Any]) -> str | None:
    return row.get("generation_key") or (row.get("key") if "generation_key" not in row else None)


# --- per-generation marks -------------------------------------------------------------------------------

def words_of(detail: Any, *keys: str) -> list[str]:
    """The words/numbers a metric's detail lists: a list, or a dict holding one under ``keys``."""
    if isinstance(detail, dict):
        for k in keys:
            if isinstance(detail.get(k), list):
                detail = detail[k]
                break
        else:
            return []
    if isinstance(detail, list):
        return [str(x) for x in detail if isinstance(x, str | int | float) and str(x).strip()]
    return []


def marks(metrics: dict[str, tuple[float | None, Any]], expected_language: str = "ru") -> dict[str, Any]:
    """What the gallery marks on one answer: its language when off, misspelled words, invented numbers, a refusal (its
    phrase), and on a question the screenshot cannot answer whether the answer said so (``abstained``) or not
    (``invented``)."""
    language = None
    lang = metrics.get("language")
    if lang is not None:
        _v, d = lang
        d = d if isinstance(d, str) else d.get("language") if isinstance(d, dict) else None
        language = d if isinstance(d, str) and re.fullmatch(r"[a-z]{2,3}", d) else None  # not "short"/"undetermined"
    off = metrics.get("off_language")
    if off is not None and number(off[0]) is not None:
        is_off = number(off[0]) > 0  # type: ignore[operator]
    else:
        is_off = language is not None and language != expected_language
    return {
        "language": language,
        "off_language": is_off,
        "misspelled": words_of(metrics.get("spelling_errors", (None, None))[1], "words", "misspelled"),
        "invented": words_of(metrics.get("hallucinated_numbers", (None, None))[1], "numbers", "invented"),
        "refusal": _flag(metrics, "refusal"),
        "unanswerable": "abstained" if _flag(metrics, "abstention_correct") is not None
        else "invented" if _flag(metrics, "unanswerable_invented") is not None else None,
    }


def _flag(metrics: dict[str, tuple[float | None, Any]], column: str) -> str | None:
    """The detail (or "yes") of a 0/1 column whose value is 1; ``None`` when it is 0 or absent."""
    value, detail = metrics.get(column, (None, None))
    n = number(value)
    if n is None or n <= 0:
        return None
    return str(detail) if isinstance(detail, str) and detail else "yes"


def segments(text: str, misspelled: list[str], invented: list[str]) -> list[tuple[str, str]]:
    """Split ``text`` into ``(piece, kind)`` with kind ``""``, ``"spell"`` or ``"number"`` for highlighting.

    The pieces are plain text; the template escapes each one, so marking never builds HTML from model output.
    """
    terms = [(w, "spell") for w in misspelled] + [(n, "number") for n in invented]
    terms = [(t, k) for t, k in terms if t]
    if not terms or not text:
        return [(text or "", "")]
    kinds = {}
    for t, k in terms:
        kinds.setdefault(t.casefold(), k)
    alternatives = sorted({re.escape(t) for t, _ in terms}, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    out: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], ""))
        out.append((m.group(0), kinds.get(m.group(0).casefold(), "spell")))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], ""))
    return out
