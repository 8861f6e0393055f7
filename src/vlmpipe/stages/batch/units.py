"""What a stage still lacks, as batch requests: one *unit* per request a batch engine answers.

A unit is one chat-completions request — the exact body the live stage would send for it, built by the same code
(:func:`vlmpipe.providers.openai_compat.chat_body`, :func:`vlmpipe.stages.judge.client.judge_body`), with
``stream: false`` — and what its answer is stored as: the planned generations (stages ``generate`` and
``references``) or the judgements (stage ``judge``) it answers. With deduplication (``judge.dedupe``; ``cache:
true`` for generations) a unit answers every judgement or generation that shares its request; without, one each.

Its ``custom_id`` says which: ``g-`` (a candidate's generation), ``r-`` (the reference model's), ``j-`` (a judge's),
then the request's hash (deduplicated) or the generation's / judgement's key — so a results file names what it
answers, and an id that the run's current plan does not have is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlmpipe.core.config import ConfigError, ModelSpec, RunConfig
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.store import Store
from vlmpipe.providers.openai_compat import chat_body
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.generation_cache import cache_on, generation_request, request_identity, reuse_cached
from vlmpipe.stages.judge.answer import JudgeTask
from vlmpipe.stages.judge.client import judge_body
from vlmpipe.stages.judge.run import Judge, JudgeSetup, Work, judge_setup, plan_work
from vlmpipe.stages.plan import PlannedGeneration, candidate_models, make_plan

STAGES = ("generate", "references", "judge")
PREFIX = {"generate": "g", "references": "r", "judge": "j"}
ROLE = {"generate": "candidate", "references": "reference"}
URL = "/v1/chat/completions"


class BatchError(ValueError):
    """A batch file or request that cannot be used; the message says why (the command exits 2)."""


@dataclass
class Unit:
    custom_id: str
    stage: str
    model: str  # the candidate, the reference model, or the judge
    body: dict[str, Any]
    generations: list[PlannedGeneration] = field(default_factory=list)
    hash: str | None = None  # the request's hash, when deduplicated
    judge: Judge | None = None
    tasks: list[JudgeTask] = field(default_factory=list)

    def line(self) -> dict[str, Any]:
        """The OpenAI batch input line."""
        return {"custom_id": self.custom_id, "method": "POST", "url": URL, "body": self.body}


@dataclass
class StageUnits:
    """A stage's pending units, the ids of what it already has, and what the judge's units need to be stored."""

    stage: str
    pending: dict[str, Unit] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    setup: JudgeSetup | None = None
    works: dict[str, Work] = field(default_factory=dict)  # judge name -> its work
    reused: int = 0  # judgements / generations answered by the request cache while planning
    notes: list[str] = field(default_factory=list)


def batch_spec(spec: ModelSpec, where: str) -> OpenAISpec:
    """The spec as a batch request is made of it: an OpenAI-compatible model, not streamed."""
    if not isinstance(spec, OpenAISpec):
        raise BatchError(f"{where} ({spec.name}): provider {spec.provider!r} has no batch API; only OpenAI-compatible "
                         "models can be batched")
    return spec.model_copy(update={"stream": False})


def _generation_units(cfg: RunConfig, store: Store, stage: str, images: dict[str, PreparedImage | str],
                      model: str | None, fill: bool) -> StageUnits:
    out = StageUnits(stage)
    role = ROLE[stage]
    specs = [(s, r) for s, r, _n in candidate_models(cfg) if r == role and (model is None or s.name == model)]
    if stage == "references" and cfg.references.source != "model":
        raise BatchError("stage references: the config's references.source is not 'model': there is no reference "
                         "model to batch")
    if model is not None and not specs:
        raise BatchError(f"--model {model}: not a {'candidate' if role == 'candidate' else 'reference'} model of "
                         "this run")
    items = {i["id"]: i for i in store.items()}
    finished = store.finished_keys()
    plan = make_plan(cfg, list(items.values()))
    for spec, _role in specs:
        where = "models" if role == "candidate" else "references.model"
        batched = batch_spec(spec, where)
        todo = [p for p in plan if p.model == spec.name]
        requests = {p.key: generation_request(cfg, p, items[p.item], images.get(p.item)) for p in todo}
        dedupe = cache_on(cfg, spec, role)
        hashes = {k: request_identity(spec, r) for k, r in requests.items() if r is not None} if dedupe else {}
        pending = [p for p in todo if p.key not in finished and requests[p.key] is not None]
        if fill and dedupe:
            reused = reuse_cached(store, pending, hashes)
            out.reused += len(reused)
            pending = [p for p in pending if p.key not in reused]
        for p in todo:
            ident = hashes.get(p.key, p.key)
            cid = f"{PREFIX[stage]}-{ident}"
            if p.key in finished or requests[p.key] is None:
                out.done.add(cid)
        for p in pending:
            ident = hashes.get(p.key, p.key)
            cid = f"{PREFIX[stage]}-{ident}"
            unit = out.pending.get(cid)
            if unit is None:
                body = chat_body(batched, requests[p.key])  # type: ignore[arg-type]
                unit = out.pending[cid] = Unit(cid, stage, spec.name, body, hash=hashes.get(p.key))
            unit.generations.append(p)
        out.done -= set(out.pending)
        skipped = sum(1 for p in todo if requests[p.key] is None)
        if skipped:
            out.notes.append(f"{spec.name}: {skipped} generation(s) not batched: their screenshot is unusable")
    return out


def _judge_units(cfg: RunConfig, store: Store, images: dict[str, PreparedImage | str], model: str | None,
                 fill: bool) -> StageUnits:
    setup = judge_setup(cfg)
    out = StageUnits("judge", setup=setup)
    judges = [j for j in setup.judges if model is None or j.name == model]
    if model is not None and not judges:
        raise BatchError(f"--model {model}: not a judge of this run (its judges: "
                         f"{', '.join(j.name for j in setup.judges)})")
    items = {i["id"]: i for i in store.items()}
    for judge in judges:
        where = "judge.panel" if cfg.judge.panel is not None else "judge.model"
        batched = batch_spec(judge.spec, where)
        work = plan_work(cfg, store, setup, judge, items, images, fill=fill)
        out.works[judge.name] = work
        out.reused += work.reused
        pending_keys = {t.key for g in work.groups.values() for t in g}
        done_keys = [t.key for t in work.tasks if t.key not in pending_keys]
        stored = store.judgement_rows(done_keys)
        for k in done_keys:
            ident = (stored.get(k) or {}).get("request_hash") if setup.dedupe else k
            if ident:
                out.done.add(f"j-{ident}")
        schema = setup.schema if "response_format" not in judge.spec.extra_body else None
        for ident, tasks in work.groups.items():
            request = work.requests[tasks[0].key]
            body = judge_body(batched, request, image_detail=cfg.judge.image_detail, schema=schema)
            cid = f"j-{ident}"
            out.pending[cid] = Unit(cid, "judge", judge.name, body, hash=tasks[0].request_hash, judge=judge,
                                    tasks=tasks)
    out.done -= set(out.pending)
    return out


def stage_units(cfg: RunConfig, store: Store, stage: str, images: dict[str, PreparedImage | str], *,
                model: str | None = None, fill: bool = True) -> StageUnits:
    """The stage's pending units (of ``model`` only, when given). ``fill``: first store what the request cache
    already answers (deduplication), as the live stage does."""
    if stage not in STAGES:
        raise BatchError(f"--stage {stage!r}: use one of {', '.join(STAGES)}")
    try:
        if stage == "judge":
            if not cfg.judge.judges:
                raise BatchError("stage judge: the run's config has no judge (judge.model or judge.panel)")
            return _judge_units(cfg, store, images, model, fill)
        return _generation_units(cfg, store, stage, images, model, fill)
    except ConfigError as err:
        raise BatchError(str(err)) from None


def stage_of(custom_id: str) -> str | None:
    """The stage a custom_id belongs to (by its prefix), or ``None``."""
    prefix = custom_id.split("-", 1)[0]
    return next((s for s, p in PREFIX.items() if p == prefix), None)


