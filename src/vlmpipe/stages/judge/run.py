"""The judge stage: every successful candidate generation judged against its item's reference answer.

How depends on the task (:attr:`vlmpipe.tasks.base.Task.judge_kind`). *Pairwise* (screen annotation): the judge sees
the screenshot, the instruction the models were given, and two anonymous answers "A" and "B" — the candidate's and
the reference — and scores each 1–10. Mode ``both`` (default) asks in both orders and averages; mode ``random`` asks
once, in an order drawn from a generator seeded by the run seed and the generation key (so the draw is reproducible
and recorded). *Graded* (visual question answering): the judge sees the screenshot, the question, the human answer
and the candidate's answer, and scores the candidate 1–10 (position ``G``; the human answer counts as a 10, so the
ratio is score / 10); mode ``both`` also grades each question's human answer once (position ``H``), so a judge that
gives it less than 10 shows. Every answer is written to the store
at once, keyed by (generation, order, judge signature, reference), so an interrupted run resumes without
paying twice. ``limit`` and ``max_cost`` stop the stage before it requests more (see :func:`judge_run`).

Identical requests are sent once (:mod:`vlmpipe.stages.judge.cache`): the judgements are grouped by the hash of
their request, the first of a group is asked, and the others reuse its answer. A judge panel (``judge.panel``) is
judged one judge after another, each with its own signature, client and server health.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from vlmpipe.core.config import ConfigError, ModelSpec, RunConfig
from vlmpipe.core.dataset import Item, load_image
from vlmpipe.core.images import ImageError, PreparedImage
from vlmpipe.core.limiter import GROW_AFTER, AdaptiveLimiter
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.server_health import FailureTally, ServerHealth
from vlmpipe.core.store import Store
from vlmpipe.providers.base import Request
from vlmpipe.providers.openai_compat import request_hash
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.judge.answer import GRADED, HUMAN, Attempts, JudgeTask, base_row
from vlmpipe.stages.judge.cache import cache_entry, dedupe_on, is_final, reused_row
from vlmpipe.stages.judge.client import JudgeClient, judge_body
from vlmpipe.stages.judge.parse import GRADE_SCHEMA, RESPONSE_SCHEMA, SCORE_MAX, SCORE_MIN
from vlmpipe.stages.judge.prompts import SAMPLE, SYSTEM_TEMPLATE, USER_TEMPLATE, JudgeTemplates, load_templates, render
from vlmpipe.tasks import Task, get_task, resolve

log = logging.getLogger("vlmpipe.stages.judge")


@dataclass
class JudgeOutcome:
    """What one judge stage did. ``requested``: judge requests sent (one per distinct request with deduplication;
    the re-asks of a malformed answer belong to it); ``reused``: judgements answered by a stored answer to the same
    request; ``judged``/``failed``: judgements stored now. ``stopped`` is ``"limit"`` or ``"max_cost"`` when a guard
    stopped it; ``given_up`` says why a judge's server was given up (unreachable from the start), leaving the rest
    unsent."""

    requested: int = 0
    reused: int = 0
    judged: int = 0
    failed: int = 0
    already_done: int = 0
    remaining: int = 0
    stopped: str | None = None
    given_up: str | None = None
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def text_sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


def judge_signature(cfg: RunConfig, templates: JudgeTemplates, kind: str = "pairwise",
                    spec: ModelSpec | None = None) -> str:
    """What changes a judgement besides its inputs: the judge model and sampling, the prompt, image detail, and how
    it grades (the pairwise signature is unchanged from the first round, so its judgements stay reusable).
    ``spec``: one judge of a panel (default: the only judge)."""
    spec = spec or (cfg.judge.judges[0] if cfg.judge.judges else None)
    if spec is None:
        raise ConfigError("judge.model is not set")
    content: dict[str, Any] = {"judge": spec.sampling_signature(), "templates": templates.sha,
                               "image_detail": cfg.judge.image_detail, "range": [SCORE_MIN, SCORE_MAX]}
    if kind != "pairwise":
        content["kind"] = kind
    payload = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def judgement_key(signature: str, generation_key: str, position: str, reference_sha: str | None) -> str:
    payload = json.dumps([signature, generation_key, position, reference_sha])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def positions(mode: str, seed: int, generation_key: str, kind: str = "pairwise") -> list[str]:
    """The candidate's position(s): both orders, or one drawn from a generator seeded per judgement; graded: one."""
    if kind == "graded":
        return [GRADED]
    if mode == "both":
        return ["A", "B"]
    return ["A" if random.Random(f"{seed}:{generation_key}").random() < 0.5 else "B"]


def instruction_for(cfg: RunConfig, item: dict[str, Any]) -> str:
    user = str(item.get("user_message") or cfg.user_message or "")
    return (cfg.system_prompt or "") + (f"\n\n{user}" if user else "")


def load_item_images(cfg: RunConfig, items: list[dict[str, Any]]) -> dict[str, PreparedImage | str]:
    """Images of the stored items, read again from the dataset folder (for the stage run on its own)."""
    out: dict[str, PreparedImage | str] = {}
    for it in items:
        if it.get("error"):
            continue
        image = str(it["image"])
        if image.startswith(("http://", "https://")):
            out[it["id"]] = image
            continue
        try:
            out[it["id"]] = load_image(Path(cfg.dataset.path), Item(id=it["id"], image=image),
                                       max_side=cfg.dataset.max_side)
        except (ImageError, OSError) as err:
            log.warning("judge: item %s: %s", it["id"], err)
    return out


def plan_tasks(cfg: RunConfig, store: Store, signature: str, images: dict[str, PreparedImage | str],
               kind: str = "pairwise") -> tuple[list[JudgeTask], dict[str, int]]:
    """Every judgement the current plan asks for, and how many generations could not be judged and why."""
    items = {i["id"]: i for i in store.items()}
    tasks: list[JudgeTask] = []
    skipped: dict[str, int] = {}
    if kind == "graded" and cfg.judge.mode == "both":  # each question's human answer, graded once
        for item in items.values():
            reference = (item.get("reference") or "").strip()
            if reference and item["id"] in images and not item.get("error"):
                ref_sha = text_sha(reference) or ""
                human = {"key": f"human:{item['id']}", "model": "", "item": item["id"], "repeat": 0, "text": reference}
                tasks.append(JudgeTask(judgement_key(signature, human["key"], HUMAN, ref_sha), human, HUMAN,
                                       reference, ref_sha))
    for g in store.generations(role="candidate"):
        if g["error"] is not None or not (g["text"] or "").strip():
            reason = "generation failed"
        elif cfg.references.source == "none" or not (items.get(g["item"], {}).get("reference") or "").strip():
            reason = "no reference answer"
        elif g["item"] not in images:
            reason = "image unavailable"
        else:
            reference = str(items[g["item"]]["reference"])
            ref_sha = text_sha(reference)
            for pos in positions(cfg.judge.mode or "both", cfg.judge.seed, g["key"], kind):
                tasks.append(JudgeTask(judgement_key(signature, g["key"], pos, ref_sha), g, pos, reference,
                                       ref_sha or ""))
            continue
        skipped[reason] = skipped.get(reason, 0) + 1
    return tasks, skipped


def prompt_variables(cfg: RunConfig, task: JudgeTask, item: dict[str, Any]) -> dict[str, str]:
    """What the judge's user template is rendered with (never a model name)."""
    candidate, reference = str(task.generation["text"]), task.reference
    if task.position in (GRADED, HUMAN):
        return {"question": str(item.get("question") or item.get("user_message") or ""), "reference": reference,
                "answer": candidate}
    answer_a, answer_b = (candidate, reference) if task.position == "A" else (reference, candidate)
    return {"instruction": instruction_for(cfg, item), "answer_a": answer_a, "answer_b": answer_b}


@dataclass
class Judge:
    """One judge of the stage (the only one, or one of a panel): its spec and its judgements' signature."""

    spec: OpenAISpec
    signature: str

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class JudgeSetup:
    """What every judge of a run shares: the task's kind, the templates, the response schema, the judges."""

    kind: str
    templates: JudgeTemplates
    schema: dict[str, Any]
    judges: list[Judge]
    dedupe: bool


def judge_setup(cfg: RunConfig, max_cost: float | None = None) -> JudgeSetup:
    """The judges of ``cfg`` with their signatures; a :class:`ConfigError` for settings that cannot work."""
    specs = cfg.judge.judges
    if not specs:
        raise ConfigError("judge.model is not set: the judge stage needs a model (see docs/judge.md)")
    for i, spec in enumerate(specs):
        if not isinstance(spec, OpenAISpec):  # the config refuses such a judge already (ModelSpec.can_judge)
            where = f"judge.panel.{i}" if cfg.judge.panel is not None else "judge.model"
            raise ConfigError(f"{where}: provider {spec.provider!r} cannot be the judge: it is asked over an "
                              "OpenAI-compatible chat API")
    task = resolve(cfg)
    check_judge_settings(cfg, max_cost, task)
    templates = load_templates(cfg.judge.template_dir, task.judge_templates)
    kind = task.judge_kind
    judges = [Judge(spec, judge_signature(cfg, templates, kind, spec)) for spec in specs]  # type: ignore[arg-type]
    seen: dict[str, str] = {}
    for j in judges:
        if j.signature in seen:
            raise ConfigError(f"judge.panel: {j.name!r} and {seen[j.signature]!r} are the same judge (model and "
                              "sampling): a panel's judges must differ")
        seen[j.signature] = j.name
    return JudgeSetup(kind, templates, GRADE_SCHEMA if kind == "graded" else RESPONSE_SCHEMA, judges,
                      dedupe_on(cfg.judge))


def judge_meta(cfg: RunConfig, setup: JudgeSetup) -> dict[str, Any]:
    """``meta["judge"]``: how the current judgements are made (a panel lists its judges; a single judge's meta is
    the first round's)."""
    first = setup.judges[0]
    meta: dict[str, Any] = {"signature": first.signature, "mode": cfg.judge.mode, "seed": cfg.judge.seed,
                            "model": first.name, "templates": setup.templates.origin,
                            "templates_sha": setup.templates.sha, "image_detail": cfg.judge.image_detail,
                            "score_range": [SCORE_MIN, SCORE_MAX], "kind": setup.kind}
    if len(setup.judges) > 1:
        meta["model"] = ", ".join(j.name for j in setup.judges)
        meta["judges"] = [{"name": j.name, "model": j.spec.model_id, "signature": j.signature} for j in setup.judges]
    return meta


@dataclass
class Work:
    """One judge's judgements still to make, grouped by request: each group is sent once (its first task) and
    the others reuse the answer; without deduplication every group is one judgement."""

    judge: Judge
    tasks: list[JudgeTask]
    skipped: dict[str, int]
    groups: dict[str, list[JudgeTask]]
    requests: dict[str, Request]  # judgement key -> its request
    prior: dict[str, dict[str, Any]]  # judgement key -> its stored unfinished row (a batch's malformed answer)
    reused: int = 0

    @property
    def pending(self) -> int:
        return sum(len(g) for g in self.groups.values())


def build_request(cfg: RunConfig, templates: JudgeTemplates, task: JudgeTask, item: dict[str, Any],
                  image_url: str) -> Request:
    system, user = render(templates, **prompt_variables(cfg, task, item))
    return Request(item_id=task.generation["item"], image_url=image_url, system_prompt=system, user_message=user)


def identify(cfg: RunConfig, setup: JudgeSetup, spec: OpenAISpec, request: Request) -> str:
    """The request's hash: its body as configured and the templates' hash (:mod:`vlmpipe.stages.judge.cache`)."""
    schema = setup.schema if "response_format" not in spec.extra_body else None
    body = judge_body(spec, request, image_detail=cfg.judge.image_detail, schema=schema)
    return request_hash(body, templates=setup.templates.sha, kind=setup.kind)


def plan_work(cfg: RunConfig, store: Store, setup: JudgeSetup, judge: Judge, items: dict[str, dict[str, Any]],
              images: dict[str, PreparedImage | str], *, fill: bool = True) -> Work:
    """The judge's pending judgements with their requests, grouped; with ``fill``, the groups whose answer the
    request cache already has are stored at once (reused) and left out."""
    tasks, skipped = plan_tasks(cfg, store, judge.signature, images, setup.kind)
    done = store.judged_keys(cfg.judge.max_attempts)
    urls: dict[str, str] = {}
    groups: dict[str, list[JudgeTask]] = {}
    requests: dict[str, Request] = {}
    for t in tasks:
        if t.key in done:
            continue
        item_id = t.generation["item"]
        if item_id not in urls:
            image = images[item_id]
            urls[item_id] = image if isinstance(image, str) else image.data_url()
        request = build_request(cfg, setup.templates, t, items[item_id], urls[item_id])
        t.request_hash = identify(cfg, setup, judge.spec, request)
        requests[t.key] = request
        groups.setdefault(t.request_hash if setup.dedupe else t.key, []).append(t)
    prior = {k: r for k, r in store.judgement_rows(g[0].key for g in groups.values()).items()
             if r.get("error") is not None}
    work = Work(judge, tasks, skipped, groups, requests, prior)
    if fill and setup.dedupe:
        hits = store.cached(groups)
        rows = [reused_row(t, judge.signature, judge.name, entry)
                for h, entry in hits.items() for t in groups.pop(h)]
        if rows:
            store.put_judgements(rows)
        work.reused = len(rows)
    return work


def group_rows(cfg: RunConfig, setup: JudgeSetup, work: Work, tasks: list[JudgeTask], state: Attempts, *,
               latency: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The rows of one group from its answer(s), and the request cache's entry when the answer is final: the first
    task's row holds the attempts, tokens and cost; the others reuse it. An answer that is not final (a transport
    failure, a batch's malformed answer) is stored for every task of the group, to be asked again."""
    judge = work.judge
    row = state.row(base_row(tasks[0], judge.signature, judge.name), cfg.judge.prices, latency=latency)
    if is_final(row, cfg.judge.max_attempts):
        entry = cache_entry(row) if setup.dedupe else None
        answer = entry or cache_entry(row)
        return [row, *(reused_row(t, judge.signature, judge.name, answer) for t in tasks[1:])], entry
    others = [{**base_row(t, judge.signature, judge.name), "error": row["error"], "error_kind": row["error_kind"],
               "raw": row.get("raw"), "attempts": 0, "reused": 0} for t in tasks[1:]]
    return [row, *others], None


def check_judge_settings(cfg: RunConfig, max_cost: float | None = None, task: Task | None = None) -> None:
    """:class:`ConfigError` for judge settings that cannot work; ``vlmpipe run`` calls it before generating, so
    that such a config stops before anything is sent, not after every generation."""
    max_cost = cfg.judge.max_cost if max_cost is None else max_cost
    if max_cost is not None and not cfg.judge.prices:
        raise ConfigError("a judge cost limit is set but judge.prices is not: give USD per 1M tokens, "
                          "e.g. judge.prices: {prompt: 0.15, completion: 0.6}")
    unknown = set(cfg.judge.prices) - {"prompt", "completion"}
    if unknown:
        raise ConfigError(f"judge.prices: unknown key(s) {sorted(unknown)}; use 'prompt' and 'completion'")
    check_templates(cfg.judge.template_dir, (task or get_task(cfg.task)).judge_templates)


def check_templates(template_dir: Path | None, names: tuple[str, str] = (SYSTEM_TEMPLATE, USER_TEMPLATE)) -> None:
    """A ``judge.template_dir`` that is missing, holds neither template, or whose templates do not render is a
    :class:`ConfigError` (a misspelt folder silently gave the bundled prompts; a broken one failed mid-stage)."""
    if template_dir is None:
        return
    if not Path(template_dir).is_dir():
        raise ConfigError(f"judge.template_dir: {template_dir} is not a folder")
    if not any((Path(template_dir) / n).is_file() for n in names):
        raise ConfigError(f"judge.template_dir: {template_dir} holds neither {names[0]} nor {names[1]}")
    try:
        render(load_templates(template_dir, names), **SAMPLE)
    except TemplateError as err:
        where = f" (line {err.lineno})" if getattr(err, "lineno", None) else ""
        variables = "question, reference and answer" if names[0] != SYSTEM_TEMPLATE else \
            "instruction, answer_a and answer_b"
        raise ConfigError(f"judge.template_dir: {template_dir}: a template does not render{where}: {err}; "
                          f"the variables are {variables}") from None


async def _judge_one(cfg: RunConfig, client: JudgeClient, request: Request, state: Attempts) -> Attempts:
    """Ask until the answer is usable, the transport fails, or ``judge.max_attempts`` answers were given."""
    while state.attempts < cfg.judge.max_attempts:
        if state.add(await client.ask(request)):
            break
    return state


@dataclass
class _Budget:
    """What the guards of one stage call share across the judges: requests started, money spent."""

    limit: int | None
    max_cost: float | None
    spent: float
    costs: list[float]

    def estimate(self) -> float | None:
        return max(self.costs) if self.costs else None


async def _run_judge(cfg: RunConfig, store: Store, setup: JudgeSetup, work: Work, outcome: JudgeOutcome,
                     budget: _Budget, show_progress: bool, client: JudgeClient | None) -> None:
    spec = work.judge.spec
    pending = deque(work.groups.values())
    in_flight = 0
    health = ServerHealth(f"the judge server {spec.name} at {spec.address()}")
    failures = FailureTally()
    cond = asyncio.Condition()
    own_client = client is None
    judge_client = client or JudgeClient(spec, image_detail=cfg.judge.image_detail, schema=setup.schema)
    workers = max(1, spec.concurrency or cfg.concurrency)
    if judge_client.limiter is None:  # requests in flight follow the judge server's 429s, as generation's do
        judge_client.limiter = AdaptiveLimiter(workers, grow_after=GROW_AFTER, name=f"judge {spec.name}")

    def may_start() -> bool:
        return budget.max_cost is None or budget.estimate() is not None or in_flight == 0

    async def worker(advance: Callable[[int], None]) -> None:
        nonlocal in_flight
        while True:
            async with cond:
                await cond.wait_for(lambda: may_start() or outcome.stopped is not None or health.given_up)
                if outcome.stopped is not None or health.given_up or not pending:
                    return
                if budget.limit is not None and outcome.requested >= budget.limit:
                    outcome.stopped = "limit"
                    cond.notify_all()
                    return
                if budget.max_cost is not None:
                    est = budget.estimate() or 0.0
                    if budget.spent >= budget.max_cost or budget.spent + (in_flight + 1) * est > budget.max_cost:
                        outcome.stopped = "max_cost"
                        cond.notify_all()
                        return
                tasks = pending.popleft()
                outcome.requested += 1
                in_flight += 1
            try:
                leader = tasks[0]
                state = Attempts.resume(leader.position, work.prior.get(leader.key))
                state = await _judge_one(cfg, judge_client, work.requests[leader.key], state)
                rows, entry = group_rows(cfg, setup, work, tasks, state)
                store.put_judgements(rows, cache=entry)
            finally:
                async with cond:
                    in_flight -= 1
                    cond.notify_all()
            async with cond:
                row = rows[0]
                if row.get("cost_usd") is not None:
                    budget.spent += row["cost_usd"]
                    budget.costs.append(row["cost_usd"])
                for r in rows:
                    if r.get("reused"):
                        outcome.reused += 1
                    if r.get("error") is None:
                        outcome.judged += 1
                    else:
                        outcome.failed += 1
                        failures.add(r.get("error_kind"), f"{r['item']}: {r['error']}")
                # like generation: a server that refused every connection so far is given up after a few
                health.record(None if row.get("error") is None else (row.get("error_kind") or "error"))
                cond.notify_all()
            advance(len(tasks))

    try:
        with progress_bar(f"judge {spec.name}", work.pending, enabled=show_progress) as advance:
            await asyncio.gather(*(worker(advance) for _ in range(workers)))
    finally:
        if own_client:
            await judge_client.aclose()
    outcome.remaining += sum(len(g) for g in pending)
    if failures:  # why, on the console and in logs/run.log, not only in judgements.csv
        why = f"{failures.by_kind.total()} judgement(s) failed {failures.describe()}"
        log.warning("judge %s: %s", spec.name, why)
        outcome.notes.append(f"judge: {why}" if len(setup.judges) == 1 else f"judge {spec.name}: {why}")
    if health.given_up:
        outcome.given_up = health.given_up
        left = sum(len(g) for g in pending)
        note = f"{health.given_up}: {left} judgement(s) not sent; run `vlmpipe judge RUN` again once it answers"
        log.error("judge: %s", note)
        outcome.notes.append(f"judge: {note}")


async def judge_run_async(cfg: RunConfig, store: Store, *, images: dict[str, PreparedImage | str] | None = None,
                          max_cost: float | None = None, limit: int | None = None,
                          show_progress: bool = True, client: JudgeClient | None = None) -> JudgeOutcome:
    """Judge what the plan still lacks, with each judge of the panel in turn. ``limit``: at most this many judge
    requests in this call (a request shared by several judgements counts once); ``max_cost``: stop before the
    run's total judge cost, earlier calls included, would exceed it. ``client``: the transport (single judge)."""
    max_cost = cfg.judge.max_cost if max_cost is None else max_cost
    limit = cfg.judge.limit if limit is None else limit
    setup = judge_setup(cfg, max_cost)
    store.set_judge_meta(judge_meta(cfg, setup))
    items = {i["id"]: i for i in store.items()}
    if images is None:
        images = load_item_images(cfg, list(items.values()))
    outcome = JudgeOutcome()
    budget = _Budget(limit, max_cost, store.judge_cost() or 0.0, store.recent_judge_costs(50))
    for judge in setup.judges:
        work = plan_work(cfg, store, setup, judge, items, images)
        outcome.already_done += len(work.tasks) - work.pending - work.reused
        outcome.reused += work.reused
        outcome.judged += work.reused
        for reason, n in work.skipped.items():
            outcome.skipped[reason] = max(outcome.skipped.get(reason, 0), n)
        if not work.groups:
            continue
        if outcome.stopped:  # --limit / --max-cost hold for the whole panel (a dead judge server does not)
            outcome.remaining += work.pending
            continue
        await _run_judge(cfg, store, setup, work, outcome, budget, show_progress,
                         client if len(setup.judges) == 1 else None)
    outcome.cost_usd = store.judge_cost() or 0.0
    outcome.cost_saved_usd = store.judge_cost_saved() or 0.0
    if cfg.judge.prices and outcome.requested and not budget.costs:
        outcome.notes.append("the judge server reported no token usage: the cost is unknown")
    return outcome


def judge_run(cfg: RunConfig, store: Store, **kwargs: Any) -> JudgeOutcome:
    return asyncio.run(judge_run_async(cfg, store, **kwargs))
