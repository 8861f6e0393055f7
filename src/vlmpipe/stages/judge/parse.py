"""Reading the judge's answer: a JSON object with a score and an explanation for answers A and B (pairwise tasks),
or one score and one explanation (graded tasks: :func:`parse_grade`).

Robust to what chat models do around JSON: a ```json fence, prose before or after the object, key-name
variants (``score_a``/``scoreA``/``"Answer A score"``), scores given as strings ("8", "8/10"). Scores must lie
in the range asked for (1–10 by default); anything else raises :class:`JudgeParseError` with the reason, so
the caller can retry and finally record a failed judgement with the raw text — never a silent 0.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

SCORE_MIN, SCORE_MAX = 1.0, 10.0

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NUMBER = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*(?:/\s*10)?\s*$")


class JudgeParseError(ValueError):
    """The answer could not be read as a judgement; ``kind`` is ``malformed`` or ``out_of_range``."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Verdict:
    score_a: float
    score_b: float
    explanation_a: str
    explanation_b: str


def _objects(text: str) -> list[Any]:
    """Every JSON value decodable from the text: fenced blocks first, then each ``{`` onwards."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        for i, ch in enumerate(chunk):
            if ch != "{":
                continue
            try:
                value, _end = decoder.raw_decode(chunk, i)
            except json.JSONDecodeError:
                continue
            found.append(value)
    return found


def _norm(key: str) -> str:
    return re.sub(r"[^a-z]", "", key.lower())


_SCORE_KEYS = {"a": {"scorea", "ascore", "answerascore", "scoreanswera", "answera"},
               "b": {"scoreb", "bscore", "answerbscore", "scoreanswerb", "answerb"}}
_EXPL_KEYS = {"a": {"explanationa", "aexplanation", "answeraexplanation", "explanationanswera", "reasona",
                    "reasoninga"},
              "b": {"explanationb", "bexplanation", "answerbexplanation", "explanationanswerb", "reasonb",
                    "reasoningb"}}


def _pick(obj: dict[str, Any], names: set[str]) -> Any:
    for k, v in obj.items():
        if _norm(str(k)) in names:
            return v
    return None


def _score(value: Any, which: str) -> float:
    if isinstance(value, bool) or value is None:
        raise JudgeParseError(f"no numeric score for {which}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (m := _NUMBER.match(value)):
        number = float(m.group(1).replace(",", "."))
    else:
        raise JudgeParseError(f"score for {which} is not a number: {str(value)[:40]!r}")
    if not math.isfinite(number):
        raise JudgeParseError(f"score for {which} is not finite")
    return number


def _json_objects(text: str | None) -> list[dict[str, Any]]:
    """The JSON objects of a judge's answer; :class:`JudgeParseError` when it is empty or has none."""
    if not text or not text.strip():
        raise JudgeParseError("empty answer")
    candidates = [o for o in _objects(text) if isinstance(o, dict)]
    if not candidates:
        raise JudgeParseError("no JSON object in the answer")
    return candidates


def parse_verdict(text: str | None, *, low: float = SCORE_MIN, high: float = SCORE_MAX) -> Verdict:
    """The verdict in a judge answer, or :class:`JudgeParseError` saying what is wrong."""
    last_error: JudgeParseError | None = None
    for obj in _json_objects(text):
        raw_a, raw_b = _pick(obj, _SCORE_KEYS["a"]), _pick(obj, _SCORE_KEYS["b"])
        if raw_a is None or raw_b is None:
            last_error = JudgeParseError("the JSON object has no score_a/score_b")
            continue
        a, b = _score(raw_a, "answer A"), _score(raw_b, "answer B")
        bad = [f"{w.upper()}={v:g}" for w, v in (("a", a), ("b", b)) if not low <= v <= high]
        if bad:
            raise JudgeParseError(f"score(s) outside {low:g}–{high:g}: {', '.join(bad)}", kind="out_of_range")
        return Verdict(a, b, str(_pick(obj, _EXPL_KEYS["a"]) or ""), str(_pick(obj, _EXPL_KEYS["b"]) or ""))
    raise last_error or JudgeParseError("no usable JSON object")


@dataclass(frozen=True)
class Grade:
    score: float
    explanation: str


_GRADE_KEYS = {"score", "grade", "rating", "candidatescore", "answerscore"}
_GRADE_EXPL_KEYS = {"explanation", "reason", "reasoning", "justification", "judgeexplanation"}


def parse_grade(text: str | None, *, low: float = SCORE_MIN, high: float = SCORE_MAX) -> Grade:
    """The one score (and its explanation) of a graded judgement, or :class:`JudgeParseError`."""
    for obj in _json_objects(text):
        raw = _pick(obj, _GRADE_KEYS)
        if raw is None:
            continue
        score = _score(raw, "the answer")
        if not low <= score <= high:
            raise JudgeParseError(f"score outside {low:g}–{high:g}: {score:g}", kind="out_of_range")
        return Grade(score, str(_pick(obj, _GRADE_EXPL_KEYS) or ""))
    raise JudgeParseError("the JSON object has no score")


def _schema(name: str, properties: dict[str, str]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {
        "name": name, "strict": True,
        "schema": {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()},
                   "required": list(properties), "additionalProperties": False}}}


#: The ``response_format`` of a pairwise judgement and of a graded one.
RESPONSE_SCHEMA = _schema("judgement", {"explanation_a": "string", "explanation_b": "string",
                                        "score_a": "integer", "score_b": "integer"})
GRADE_SCHEMA = _schema("grade", {"explanation": "string", "score": "integer"})
