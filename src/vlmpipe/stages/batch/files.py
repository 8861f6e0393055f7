"""Batch files: the requests a stage still lacks, written as an OpenAI batch input file (JSONL), and a batch
engine's results file read back into the store.

An input line is ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`` (the body the live
stage would send, with ``stream: false``); OpenAI's Batch API and ``vllm run-batch`` both take it. A results line is
what both write: ``{"id", "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": {"code",
"message"} | null}``. Reading it stores each answer exactly as the live stage would have — the same rows, the same
request cache, the same reuse for deduplicated requests — except that a batch's timings are not latencies: its
generations carry none (``source = 'batch'``; left out of the speed statistics, with the reason), and a malformed
judge answer counts as one attempt, asked again by the next ``vlmpipe judge`` or export until ``judge.max_attempts``.

A results file is refused whole (nothing is stored) when a line is not a batch output line, when it mixes stages,
when a custom_id appears twice, or when an id is not a pending request of the run's current plan (already stored,
exported from another run, or made by an older config).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlmpipe.core.config import RunConfig
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.server_health import FailureTally
from vlmpipe.core.store import Store
from vlmpipe.providers.base import Generation
from vlmpipe.providers.openai_compat import finish_generation, parse_completion
from vlmpipe.stages.batch.units import BatchError, StageUnits, Unit, stage_of, stage_units
from vlmpipe.stages.generate import generation_row
from vlmpipe.stages.generation_cache import BATCH, CACHED, cache_row
from vlmpipe.stages.judge.answer import Attempts
from vlmpipe.stages.judge.run import group_rows, judge_meta

SHOWN = 5  # ids listed in a refusal


@dataclass
class ExportOutcome:
    stage: str
    path: Path
    requests: int
    models: list[str]
    reused: int = 0
    answers: int = 0  # generations / judgements the requests answer (more than requests with deduplication)
    notes: list[str] = field(default_factory=list)


def export_requests(cfg: RunConfig, store: Store, stage: str, images: dict[str, PreparedImage | str], out: Path, *,
                    model: str | None = None) -> ExportOutcome:
    """Write the stage's pending requests to ``out``; a :class:`BatchError` when they are for several models (a
    batch holds one model's requests: choose one with ``model``)."""
    units = stage_units(cfg, store, stage, images, model=model)
    models = sorted({u.model for u in units.pending.values()})
    if len(models) > 1:
        raise BatchError(f"stage {stage}: the missing requests are for {len(models)} models ({', '.join(models)}); a "
                         "batch holds one model's requests: export each with --model NAME")
    if units.setup is not None:
        store.set_judge_meta(judge_meta(cfg, units.setup))
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with Path(out).open("w", encoding="utf-8") as f:
            for unit in units.pending.values():
                f.write(json.dumps(unit.line(), ensure_ascii=False) + "\n")
    except OSError as err:
        raise BatchError(f"--out {out}: cannot write it: {err.strerror or err}") from None
    answers = sum(len(u.generations) or len(u.tasks) for u in units.pending.values())
    return ExportOutcome(stage, Path(out), len(units.pending), models, units.reused, answers, units.notes)


def read_results(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every non-empty line; a :class:`BatchError` naming the first bad line."""
    out = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise BatchError(f"{path}: cannot be read: {err}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise BatchError(f"{path}: line {n} is not JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("custom_id"), str):
            raise BatchError(f"{path}: line {n} is not a batch output line: it has no custom_id")
        if not isinstance(record.get("response"), dict | None) or not isinstance(record.get("error"), dict | None):
            raise BatchError(f"{path}: line {n} ({record['custom_id']}): response and error must be objects or null")
        out.append((n, record))
    return out


def answer_of(record: dict[str, Any]) -> Generation:
    """The generation a results line holds: the answer, or the error the batch engine reported."""
    response, error = record.get("response"), record.get("error")
    if response is not None and response.get("status_code") == 200:
        try:
            text, refusal, usage = parse_completion(response.get("body"))
        except ValueError as err:
            return Generation(error=f"malformed batch answer: {err}", error_kind="bad_response")
        gen = Generation(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))
        return finish_generation(gen, text, refusal)
    if response is not None:
        status = response.get("status_code")
        body = response.get("body")
        detail = body.get("error", body) if isinstance(body, dict) else body
        message = detail.get("message") if isinstance(detail, dict) else detail
        return Generation(error=f"HTTP {status}: {str(message)[:300]}", error_kind=f"http_{status}")
    if error is not None:
        return Generation(error=f"batch error {error.get('code') or ''}: {str(error.get('message'))[:300]}".strip(),
                          error_kind="batch_error")
    return Generation(error="the results line has neither a response nor an error", error_kind="bad_response")


def _listed(ids: list[str]) -> str:
    return ", ".join(ids[:SHOWN]) + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def check_ids(path: Path, records: list[tuple[int, dict[str, Any]]], units: StageUnits) -> None:
    """Refuse repeated ids, ids already stored and ids the run does not have (nothing is stored then)."""
    lines: dict[str, list[int]] = {}
    for n, r in records:
        lines.setdefault(r["custom_id"], []).append(n)
    repeated = [f"{cid} (lines {', '.join(map(str, ns))})" for cid, ns in lines.items() if len(ns) > 1]
    if repeated:
        raise BatchError(f"{path}: {len(repeated)} custom_id(s) appear more than once: {_listed(repeated)}; a results "
                         "file answers each request once. Nothing was stored")
    stored = [cid for cid in lines if cid in units.done]
    if stored:
        raise BatchError(f"{path}: {len(stored)} custom_id(s) are already stored (answered live or imported "
                         f"before): {_listed(stored)}. Nothing was stored; export again for what is still missing")
    unknown = [cid for cid in lines if cid not in units.pending]
    if unknown:
        raise BatchError(f"{path}: {len(unknown)} custom_id(s) are not requests of this run's {units.stage} stage: "
                         f"{_listed(unknown)} (exported from another run, or the run's config changed since the "
                         "export). Nothing was stored")


@dataclass
class ImportOutcome:
    stage: str
    answers: int = 0  # results lines stored
    stored: int = 0  # generations / judgements stored
    failed: int = 0
    reused: int = 0
    notes: list[str] = field(default_factory=list)


def _store_generations(store: Store, unit: Unit, gen: Generation, outcome: ImportOutcome) -> None:
    first, *others = unit.generations
    row = generation_row(first, gen, request_hash=unit.hash, source=BATCH)
    rows = [row]
    for p in others:  # deduplicated (cache: true): the others reuse a good answer, or share the error
        if gen.ok:
            rows.append(generation_row(p, Generation(text=gen.text), request_hash=unit.hash, source=CACHED))
            outcome.reused += 1
        else:
            rows.append(generation_row(p, gen, request_hash=unit.hash, source=BATCH))
    store.put_generations(rows, cache=cache_row(row) if unit.hash is not None and gen.ok else None)
    outcome.stored += len(rows)
    outcome.failed += 0 if gen.ok else len(rows)


def _store_judgements(cfg: RunConfig, store: Store, units: StageUnits, unit: Unit, gen: Generation,
                      outcome: ImportOutcome) -> dict[str, Any]:
    assert units.setup is not None and unit.judge is not None
    work = units.works[unit.judge.name]
    leader = unit.tasks[0]
    state = Attempts.resume(leader.position, work.prior.get(leader.key))
    state.add(gen)
    rows, entry = group_rows(cfg, units.setup, work, unit.tasks, state, latency=False)
    store.put_judgements(rows, cache=entry)
    outcome.stored += len(rows)
    outcome.reused += sum(1 for r in rows if r.get("reused"))
    outcome.failed += sum(1 for r in rows if r.get("error") is not None)
    return rows[0]


def import_results(cfg: RunConfig, store: Store, path: Path, images: dict[str, PreparedImage | str]
                   ) -> ImportOutcome:
    """Store a batch engine's results file (see the module docstring); a :class:`BatchError` refuses it whole."""
    records = read_results(path)
    if not records:
        raise BatchError(f"{path}: no results in it")
    stages = Counter(stage_of(r["custom_id"]) for _n, r in records)
    if None in stages:
        bad = [r["custom_id"] for _n, r in records if stage_of(r["custom_id"]) is None]
        raise BatchError(f"{path}: {len(bad)} custom_id(s) are not vlmpipe requests (they start with g-, r- or j-): "
                         f"{_listed(bad)}. Nothing was stored")
    if len(stages) > 1:
        raise BatchError(f"{path}: the file mixes stages ({', '.join(sorted(s for s in stages if s))}); import each "
                         "stage's results file on its own. Nothing was stored")
    stage = next(iter(stages))
    assert stage is not None
    units = stage_units(cfg, store, stage, images, fill=False)
    check_ids(path, records, units)
    if units.setup is not None:
        store.set_judge_meta(judge_meta(cfg, units.setup))
    outcome = ImportOutcome(stage)
    failures = FailureTally()
    for _n, record in records:
        unit = units.pending[record["custom_id"]]
        gen = answer_of(record)
        if stage == "judge":
            row = _store_judgements(cfg, store, units, unit, gen, outcome)
        else:
            _store_generations(store, unit, gen, outcome)
            row = {"error": gen.error, "error_kind": gen.error_kind}
        if row.get("error") is not None:
            failures.add(row.get("error_kind"), f"{record['custom_id']}: {row['error']}")
        outcome.answers += 1
    if failures:
        outcome.notes.append(f"batch import: {outcome.failed} {'judgement' if stage == 'judge' else 'generation'}(s) "
                             f"failed {failures.describe()}")
    return outcome
