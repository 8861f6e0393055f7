"""One judgement's answer(s): the judge's attempts at one request, read into the judgement's row.

The live stage asks again after a malformed or out-of-range answer, up to ``judge.max_attempts``; a batch gives one
answer per request, so a malformed batch answer is stored with its attempt count and the next ``vlmpipe judge`` (or
the next batch export) asks again, continuing the count (``Attempts.resume``). Either way the row is made here, so
an answer stores the same row whether it came live or from a batch's results file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vlmpipe.core.store import FINAL_JUDGE_ERRORS
from vlmpipe.providers.base import Generation
from vlmpipe.stages.judge.parse import SCORE_MAX, JudgeParseError, parse_grade, parse_verdict

#: Positions: where the candidate's answer stands in a pairwise judgement ("A", "B"); a graded candidate ("G"); a
#: graded human answer ("H", one per question, keyed ``human:<item>``).
GRADED, HUMAN = "G", "H"


@dataclass
class JudgeTask:
    key: str
    generation: dict[str, Any]
    position: str
    reference: str
    reference_sha: str
    #: the hash of everything the judge sees for this judgement (set when the stage builds its request)
    request_hash: str | None = None


def read_verdict(position: str, text: str | None) -> dict[str, Any]:
    """The row's scores and explanations from the judge's answer (:class:`JudgeParseError` when unusable)."""
    if position in (GRADED, HUMAN):
        grade = parse_grade(text)
        return {"candidate_score": grade.score, "reference_score": SCORE_MAX, "explanation_candidate":
                grade.explanation}
    verdict = parse_verdict(text)
    first = position == "A"
    return {"candidate_score": verdict.score_a if first else verdict.score_b,
            "reference_score": verdict.score_b if first else verdict.score_a,
            "explanation_candidate": verdict.explanation_a if first else verdict.explanation_b,
            "explanation_reference": verdict.explanation_b if first else verdict.explanation_a}


def base_row(task: JudgeTask, signature: str, judge: str) -> dict[str, Any]:
    g = task.generation
    return {"key": task.key, "generation_key": g["key"], "model": g["model"], "item": g["item"],
            "repeat": g["repeat"], "candidate_position": task.position, "signature": signature,
            "reference_sha": task.reference_sha, "judge": judge, "request_hash": task.request_hash}


@dataclass
class Attempts:
    """The attempts at one judge request so far: usage summed, the last answer, and what it said."""

    position: str
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_seen: bool = False
    latency_s: float = 0.0
    raw: str | None = None
    verdict: dict[str, Any] = field(default_factory=dict)
    parse_error: JudgeParseError | None = None
    transport: Generation | None = None

    @classmethod
    def resume(cls, position: str, prior: dict[str, Any] | None) -> Attempts:
        """Continue the count of a stored malformed answer (a batch's), so ``max_attempts`` holds over both."""
        state = cls(position)
        if prior and prior.get("error_kind") in FINAL_JUDGE_ERRORS and not prior.get("reused"):
            state.attempts = int(prior.get("attempts") or 0)
            if prior.get("prompt_tokens") is not None or prior.get("completion_tokens") is not None:
                state.usage_seen = True
                state.prompt_tokens = int(prior.get("prompt_tokens") or 0)
                state.completion_tokens = int(prior.get("completion_tokens") or 0)
            state.latency_s = float(prior.get("latency_s") or 0.0)
        return state

    def add(self, gen: Generation) -> bool:
        """Record one answer; ``True`` when it ends the judgement (a usable verdict, or a transport failure)."""
        self.attempts += 1
        self.latency_s += gen.latency_s or 0.0
        if gen.prompt_tokens is not None or gen.completion_tokens is not None:
            self.usage_seen = True
            self.prompt_tokens += gen.prompt_tokens or 0
            self.completion_tokens += gen.completion_tokens or 0
        if gen.error is not None:
            self.transport = gen
            return True
        self.transport = None
        self.raw = gen.text
        try:
            self.verdict = read_verdict(self.position, gen.text)
        except JudgeParseError as err:
            self.parse_error = err
            return False
        self.parse_error = None
        return True

    def row(self, base: dict[str, Any], prices: dict[str, float], *, latency: bool = True) -> dict[str, Any]:
        """The judgement's row (``latency``: whether the attempts' time is a latency; a batch's is not)."""
        row = dict(base)
        if self.transport is not None:
            row.update(error=self.transport.error, error_kind=self.transport.error_kind or "error", raw=self.raw)
        elif self.parse_error is not None:
            row.update(error=f"{self.parse_error} (after {self.attempts} attempt(s))",
                       error_kind=self.parse_error.kind, raw=self.raw)
        else:
            row.update(self.verdict, raw=self.raw)
        pt = self.prompt_tokens if self.usage_seen else None
        ct = self.completion_tokens if self.usage_seen else None
        row.update(attempts=self.attempts, prompt_tokens=pt, completion_tokens=ct, cost_usd=price(prices, pt, ct),
                   latency_s=self.latency_s if latency else None, created_at=time.time(), reused=0)
        return row


def price(prices: dict[str, float], prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    """USD for the tokens at ``prices`` (per 1M tokens: prompt, completion); ``None`` without prices or usage."""
    if not prices or (prompt_tokens is None and completion_tokens is None):
        return None
    return ((prompt_tokens or 0) * prices.get("prompt", 0.0)
            + (completion_tokens or 0) * prices.get("completion", 0.0)) / 1_000_000
