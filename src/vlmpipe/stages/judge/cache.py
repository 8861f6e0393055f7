"""Deduplicated judge requests: identical requests are sent once, and every judgement that shares one reuses its
stored answer.

A request is identified by :func:`vlmpipe.providers.openai_compat.request_hash` of the body the judge receives —
the screenshot's bytes (its data URL), the rendered instruction and user texts (both answers, in their order), the
judge model and its sampling — and of the templates' hash. The request cache of the store keeps each final answer
(a usable verdict, or a malformed / out-of-range answer after every allowed attempt) under that hash; transport
failures are not kept (the next run asks again). A reused judgement stores the answer again, read in its own order,
with ``reused = 1``, no tokens and no cost of its own, and the cost it saved (``cost_saved_usd``).

Whether the stage deduplicates: ``judge.dedupe``; by default when every judge's temperature is 0 (at a temperature
above 0 the judge's sampling noise is part of the measurement, so it is off unless asked for).
"""

from __future__ import annotations

from typing import Any

from vlmpipe.core.config import JudgeConfig
from vlmpipe.core.store import FINAL_JUDGE_ERRORS
from vlmpipe.stages.judge.answer import JudgeTask, base_row, read_verdict
from vlmpipe.stages.judge.parse import JudgeParseError

STAGE = "judge"


def dedupe_on(judge: JudgeConfig) -> bool:
    """Whether identical judge requests are sent once (``judge.dedupe``, else: every judge at temperature 0)."""
    if judge.dedupe is not None:
        return judge.dedupe
    return all(float(getattr(spec, "temperature", 1.0)) == 0.0 for spec in judge.judges)


def is_final(row: dict[str, Any], max_attempts: int) -> bool:
    """Whether a judgement's answer is the judge's last word (cacheable): a verdict, or a malformed or out-of-range
    answer after every allowed attempt."""
    if row.get("error") is None:
        return True
    return row.get("error_kind") in FINAL_JUDGE_ERRORS and int(row.get("attempts") or 0) >= max_attempts


def cache_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The request cache's entry for a judgement's final answer."""
    return {"hash": row["request_hash"], "stage": STAGE, "text": row.get("raw"), "error": row.get("error"),
            "error_kind": row.get("error_kind"), "attempts": row.get("attempts"),
            "prompt_tokens": row.get("prompt_tokens"), "completion_tokens": row.get("completion_tokens"),
            "cost_usd": row.get("cost_usd"), "latency_s": row.get("latency_s")}


def reused_row(task: JudgeTask, signature: str, judge: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A judgement answered by a stored answer to the same request (``answer``: a cache entry), read in its own
    order: no attempt, no tokens, no cost of its own; ``cost_saved_usd`` is what the answer cost."""
    row = base_row(task, signature, judge)
    row.update(raw=answer.get("text"), attempts=0, prompt_tokens=None, completion_tokens=None, cost_usd=None,
               cost_saved_usd=answer.get("cost_usd"), latency_s=None, reused=1)
    if answer.get("error") is not None:
        row.update(error=answer["error"], error_kind=answer.get("error_kind"))
        return row
    try:
        row.update(read_verdict(task.position, answer.get("text")))
    except JudgeParseError as err:  # cannot happen for a verdict that was read once; recorded, not raised
        row.update(error=str(err), error_kind=err.kind)
    return row
