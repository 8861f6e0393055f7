"""Reading and writing the ``judgements`` table of the run store (its DDL is in :data:`vlmpipe.store.SCHEMA`).

A row is one judge answer for one candidate generation in one order (``candidate_position`` ``"A"`` or ``"B"``;
``NULL`` for recorded judgements whose order is unknown), keyed by the generation, the order, the judge's
signature (model, sampling, prompt templates, image detail) and the reference text, so a changed prompt or
reference makes new rows and a re-run skips finished ones. Each row is written in its own transaction as
soon as the judge has answered.
"""

from __future__ import annotations

import time
from typing import Any

from ..store import Store

FIELDS = (
    "key", "generation_key", "model", "item", "repeat", "candidate_position", "signature", "reference_sha",
    "candidate_score", "reference_score", "explanation_candidate", "explanation_reference", "raw", "error",
    "error_kind", "attempts", "prompt_tokens", "completion_tokens", "cost_usd", "latency_s", "created_at",
)

# Failures that are the judge's final word (it answered, but unusably, after every allowed attempt): a re-run
# does not pay for them again. Transport failures (timeouts, HTTP errors) are retried by the next run.
FINAL_ERROR_KINDS = {"malformed", "out_of_range"}

META_KEY = "judge"


def put_judgement(store: Store, row: dict[str, Any]) -> None:
    values = dict(row)
    values.setdefault("created_at", time.time())
    cols = ",".join(FIELDS)
    marks = ",".join("?" for _ in FIELDS)
    with store.transaction() as c:
        c.execute(f"INSERT OR REPLACE INTO judgements ({cols}) VALUES ({marks})",
                  tuple(values.get(f) for f in FIELDS))


def put_judgements(store: Store, rows: list[dict[str, Any]]) -> None:
    now = time.time()
    cols = ",".join(FIELDS)
    marks = ",".join("?" for _ in FIELDS)
    with store.transaction() as c:
        c.executemany(f"INSERT OR REPLACE INTO judgements ({cols}) VALUES ({marks})",
                      [tuple({"created_at": now, **r}.get(f) for f in FIELDS) for r in rows])


def judgements(store: Store, *, signature: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM judgements"
    args: list[Any] = []
    if signature is not None:
        sql += " WHERE signature = ?"
        args.append(signature)
    return [dict(r) for r in store.conn.execute(sql + " ORDER BY created_at, key", args)]


def done_keys(store: Store) -> set[str]:
    """Keys a re-run must not request again: answered judgements and final failures."""
    marks = ",".join("?" for _ in FINAL_ERROR_KINDS)
    rows = store.conn.execute(
        f"SELECT key FROM judgements WHERE error IS NULL OR error_kind IN ({marks})", tuple(FINAL_ERROR_KINDS))
    return {r[0] for r in rows}


def total_cost(store: Store) -> float:
    """What every judge request of this run has cost so far (USD; rows without a price count 0)."""
    return float(store.conn.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM judgements").fetchone()[0])


def judge_meta(store: Store) -> dict[str, Any]:
    """How the stored judgements were made: ``{"signature", "mode", "seed", ...}`` (empty when never judged)."""
    return store.get_meta(META_KEY, {}) or {}


def set_judge_meta(store: Store, meta: dict[str, Any]) -> None:
    store.set_meta(META_KEY, meta)
