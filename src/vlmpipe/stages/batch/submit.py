"""``vlmpipe batch submit``: a stage's missing requests through the OpenAI Batch API, with the official ``openai``
SDK, against each model's ``base_url`` and ``api_key_env``.

One batch per model (a batch holds one model's requests; a judge panel gets one per judge): the requests are
exported (:func:`vlmpipe.stages.batch.files.export_requests`) into ``RUN/batches/``, uploaded (``files.create``,
purpose ``batch``), and the batch created (``batches.create``, endpoint ``/v1/chat/completions``, window 24h). Its id is
stored in the run's store at once, so a second call — after Ctrl-C, ``--no-wait``, or a crash — polls the stored
batch instead of submitting again. Polling (``batches.retrieve``) shows a progress bar of the completed requests;
when the batch completes, its output and error files are downloaded (``files.content``) beside the input and
imported (:func:`vlmpipe.stages.batch.files.import_results`). A batch that failed, expired or was cancelled is closed
with its reason; the next call submits what is still missing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openai import OpenAI, OpenAIError

from vlmpipe.core.config import RunConfig
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.redact import redact
from vlmpipe.core.store import Store
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.batch.files import export_requests, import_results
from vlmpipe.stages.batch.units import URL, BatchError, stage_units
from vlmpipe.stages.plan import candidate_models

log = logging.getLogger("vlmpipe.stages.batch")

ENDPOINT = URL
WINDOW = "24h"
DONE, ENDED = "completed", ("failed", "expired", "cancelled")


@dataclass
class SubmitOutcome:
    submitted: list[str] = field(default_factory=list)  # new batch ids
    polled: list[str] = field(default_factory=list)  # stored batch ids polled again
    imported: int = 0  # batches whose results were stored
    failed: int = 0  # generations / judgements whose answer was an error
    notes: list[str] = field(default_factory=list)


def _specs(cfg: RunConfig, stage: str) -> dict[str, OpenAISpec]:
    """The models of the stage (name -> spec): the judges, the candidates, or the reference model."""
    if stage == "judge":
        specs = cfg.judge.judges
    else:
        role = "candidate" if stage == "generate" else "reference"
        specs = [s for s, r, _n in candidate_models(cfg) if r == role]
    out = {}
    for spec in specs:
        if not isinstance(spec, OpenAISpec):
            raise BatchError(f"{spec.name}: provider {spec.provider!r} has no batch API")
        out[spec.name] = spec
    return out


def make_client(spec: OpenAISpec) -> OpenAI:
    """The SDK's client for a model's server: its ``base_url`` and the key in ``api_key_env``."""
    if spec.launch is not None or not spec.base_url:
        raise BatchError(f"{spec.name}: a batch is submitted to a server's base_url; this model has none (a server "
                         "vlmpipe launches): export the requests and run them with `vllm run-batch` (docs/serving.md)")
    key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
    return OpenAI(base_url=spec.base_url, api_key=key or "EMPTY", max_retries=spec.max_retries,
                  timeout=spec.timeout_s)


def _secret(spec: OpenAISpec) -> list[str]:
    key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
    return [key] if key else []


def _download(client: OpenAI, file_id: str | None, path: Path) -> str:
    if not file_id:
        return ""
    text = client.files.content(file_id).text
    path.write_text(text, encoding="utf-8")
    return text


def submit(cfg: RunConfig, store: Store, stage: str, images: dict[str, PreparedImage | str], folder: Path, *,
           model: str | None = None, poll_interval_s: float = 30.0, wait: bool = True, show_progress: bool = True,
           client_for: Callable[[OpenAISpec], OpenAI] = make_client,
           sleep: Callable[[float], None] = time.sleep) -> SubmitOutcome:
    """Submit (or poll) one batch per model of ``stage``; with ``wait``, poll each to its end and import it."""
    specs = _specs(cfg, stage)
    if model is not None:
        if model not in specs:
            raise BatchError(f"--model {model}: not a model of stage {stage} (its models: {', '.join(specs)})")
        specs = {model: specs[model]}
    folder.mkdir(parents=True, exist_ok=True)
    outcome = SubmitOutcome()
    for name, spec in specs.items():
        try:
            _one(cfg, store, stage, images, folder, name, spec, outcome, poll_interval_s=poll_interval_s, wait=wait,
                 show_progress=show_progress, client_for=client_for, sleep=sleep)
        except OpenAIError as err:
            raise BatchError(redact(f"{name}: the batch API at {spec.base_url} failed: {type(err).__name__}: {err}",
                                    _secret(spec))) from None
    return outcome


def _one(cfg: RunConfig, store: Store, stage: str, images: dict[str, PreparedImage | str], folder: Path, name: str,
         spec: OpenAISpec, outcome: SubmitOutcome, *, poll_interval_s: float, wait: bool, show_progress: bool,
         client_for: Callable[[OpenAISpec], OpenAI], sleep: Callable[[float], None]) -> None:
    stored = [b for b in store.batches(stage=stage, open_only=True) if b["model"] == name]
    client = client_for(spec)
    if stored:
        batch_row = stored[-1]
        outcome.polled.append(batch_row["id"])
    else:
        if not stage_units(cfg, store, stage, images, model=name).pending:
            outcome.notes.append(f"batch {stage} {name}: nothing is missing")
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = folder / f"{stage}-{name}-{stamp}.jsonl"
        exported = export_requests(cfg, store, stage, images, path, model=name)
        with path.open("rb") as f:
            uploaded = client.files.create(file=f, purpose="batch")
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window=WINDOW,
                                      metadata={"vlmpipe_stage": stage, "vlmpipe_model": name})
        batch_row = {"id": batch.id, "stage": stage, "model": name, "input_file_id": uploaded.id,
                     "status": batch.status, "requests": exported.requests}
        store.put_batch(batch_row)
        outcome.submitted.append(batch.id)
        outcome.notes.append(f"batch {stage} {name}: submitted {batch.id} with {exported.requests} request(s) "
                             f"({path.name})")
    if not wait:
        outcome.notes.append(f"batch {stage} {name}: {batch_row['id']} is {batch_row.get('status')}; run `vlmpipe "
                             "batch submit` again to poll it")
        return
    total = int(batch_row.get("requests") or 0)
    done = 0
    with progress_bar(f"batch {stage} {name}", total, enabled=show_progress) as advance:
        while True:
            batch = client.batches.retrieve(batch_row["id"])
            counts = batch.request_counts
            finished = (counts.completed + counts.failed) if counts is not None else done
            if finished > done:
                advance(finished - done)
                done = finished
            if batch.status != batch_row.get("status"):
                batch_row = {**batch_row, "status": batch.status, "output_file_id": batch.output_file_id,
                             "error_file_id": batch.error_file_id}
                store.put_batch(batch_row)
            if batch.status == DONE or batch.status in ENDED:
                break
            sleep(poll_interval_s)
    if batch.status in ENDED:
        errors = "; ".join(e.message or e.code or "" for e in (batch.errors.data or [])) if batch.errors else ""
        store.put_batch({**batch_row, "imported_at": time.time()})
        outcome.notes.append(f"batch {stage} {name}: {batch.id} ended {batch.status}"
                             + (f" ({errors})" if errors else "") + "; run `vlmpipe batch submit` again to submit "
                             "what is still missing")
        return
    results = folder / f"{batch.id}-results.jsonl"
    output = _download(client, batch.output_file_id, folder / f"{batch.id}-output.jsonl")
    errors_text = _download(client, batch.error_file_id, folder / f"{batch.id}-errors.jsonl")
    results.write_text(output + ("\n" if output and not output.endswith("\n") else "") + errors_text,
                       encoding="utf-8")
    imported = import_results(cfg, store, results, images)
    store.put_batch({**batch_row, "imported_at": time.time()})
    outcome.imported += 1
    outcome.failed += imported.failed
    outcome.notes.append(f"batch {stage} {name}: {batch.id} completed; {imported.answers} answer(s) stored for "
                         f"{imported.stored} {'judgement' if stage == 'judge' else 'generation'}(s)")
    outcome.notes += imported.notes
