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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from vlmpipe.core.config import ConfigError, RunConfig
from vlmpipe.core.dataset import Item, load_image
from vlmpipe.core.images import ImageError, PreparedImage
from vlmpipe.core.limiter import GROW_AFTER, AdaptiveLimiter
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.server_health import FailureTally, ServerHealth
from vlmpipe.core.store import Store
from vlmpipe.providers.base import Generation, Request
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.judge.client import JudgeClient
from vlmpipe.stages.judge.parse import (
    GRADE_SCHEMA,
    RESPONSE_SCHEMA,
    SCORE_MAX,
    SCORE_MIN,
    JudgeParseError,
    parse_grade,
    parse_verdict,
)
from vlmpipe.stages.judge.prompts import SAMPLE, SYSTEM_TEMPLATE, USER_TEMPLATE, JudgeTemplates, load_templates, render
from vlmpipe.tasks import Task, get_task, resolve

log = logging.getLogger("vlmpipe.stages.judge")


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


@dataclass
class JudgeOutcome:
    """What one judge stage did. ``stopped`` is ``"limit"`` or ``"max_cost"`` when a guard stopped it;
    ``given_up`` says why the judge's server was given up (unreachable from the start), leaving the rest unsent."""

    requested: int = 0
    judged: int = 0
    failed: int = 0
    already_done: int = 0
    remaining: int = 0
    stopped: str | None = None
    given_up: str | None = None
    cost_usd: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def text_sha(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()[:16]


def judge_signature(cfg: RunConfig, templates: JudgeTemplates, kind: str = "pairwise") -> str:
    """What changes a judgement besides its inputs: the judge model and sampling, the prompt, image detail, and how
    it grades (the pairwise signature is unchanged from the first round, so its judgements stay reusable)."""
    spec = cfg.judge.model
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


def price_of(cfg: RunConfig, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    prices = cfg.judge.prices
    if not prices or (prompt_tokens is None and completion_tokens is None):
        return None
    return ((prompt_tokens or 0) * prices.get("prompt", 0.0)
            + (completion_tokens or 0) * prices.get("completion", 0.0)) / 1_000_000


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


def read_verdict(task: JudgeTask, text: str | None) -> dict[str, Any]:
    """The row's scores and explanations from the judge's answer (:class:`JudgeParseError` when unusable)."""
    if task.position in (GRADED, HUMAN):
        grade = parse_grade(text)
        return {"candidate_score": grade.score, "reference_score": SCORE_MAX, "explanation_candidate":
                grade.explanation}
    verdict = parse_verdict(text)
    first = task.position == "A"
    return {"candidate_score": verdict.score_a if first else verdict.score_b,
            "reference_score": verdict.score_b if first else verdict.score_a,
            "explanation_candidate": verdict.explanation_a if first else verdict.explanation_b,
            "explanation_reference": verdict.explanation_b if first else verdict.explanation_a}


async def _judge_one(cfg: RunConfig, client: JudgeClient, templates: JudgeTemplates, signature: str,
                     task: JudgeTask, item: dict[str, Any], image: PreparedImage | str) -> dict[str, Any]:
    g = task.generation
    system, user = render(templates, **prompt_variables(cfg, task, item))
    request = Request(item_id=g["item"], image_url=image if isinstance(image, str) else image.data_url(),
                      system_prompt=system, user_message=user)
    row: dict[str, Any] = {
        "key": task.key, "generation_key": g["key"], "model": g["model"], "item": g["item"], "repeat": g["repeat"],
        "candidate_position": task.position, "signature": signature, "reference_sha": task.reference_sha,
    }
    prompt_tokens = completion_tokens = 0
    usage_seen = False
    latency = 0.0
    raw: str | None = None
    error: JudgeParseError | None = None
    gen = Generation()
    attempt = 0
    while attempt < cfg.judge.max_attempts:
        attempt += 1
        gen = await client.ask(request)
        latency += gen.latency_s or 0.0
        if gen.prompt_tokens is not None or gen.completion_tokens is not None:
            usage_seen = True
            prompt_tokens += gen.prompt_tokens or 0
            completion_tokens += gen.completion_tokens or 0
        if gen.error is not None:
            break
        raw = gen.text
        try:
            row.update(read_verdict(task, gen.text), raw=raw)
        except JudgeParseError as err:
            error = err
            continue
        error = None
        break
    if gen.error is not None:
        row.update(error=gen.error, error_kind=gen.error_kind or "error", raw=raw)
    elif error is not None:
        row.update(error=f"{error} (after {attempt} attempt(s))", error_kind=error.kind, raw=raw)
    pt = prompt_tokens if usage_seen else None
    ct = completion_tokens if usage_seen else None
    row.update(attempts=attempt, prompt_tokens=pt, completion_tokens=ct, cost_usd=price_of(cfg, pt, ct),
               latency_s=latency, created_at=time.time())
    return row


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


async def judge_run_async(cfg: RunConfig, store: Store, *, images: dict[str, PreparedImage | str] | None = None,
                          max_cost: float | None = None, limit: int | None = None,
                          show_progress: bool = True, client: JudgeClient | None = None) -> JudgeOutcome:
    """Judge what the plan still lacks. ``limit``: at most this many judge requests (one per order) in this
    call; ``max_cost``: stop before the run's total judge cost, earlier calls included, would exceed it."""
    spec = cfg.judge.model
    if spec is None:
        raise ConfigError("judge.model is not set: the judge stage needs a model (see docs/judge.md)")
    if not isinstance(spec, OpenAISpec):  # the config refuses such a judge already (ModelSpec.can_judge)
        raise ConfigError(f"judge.model: provider {spec.provider!r} cannot be the judge: it is asked over an "
                          "OpenAI-compatible chat API")
    max_cost = cfg.judge.max_cost if max_cost is None else max_cost
    limit = cfg.judge.limit if limit is None else limit
    task = resolve(cfg)
    check_judge_settings(cfg, max_cost, task)
    templates = load_templates(cfg.judge.template_dir, task.judge_templates)
    signature = judge_signature(cfg, templates, task.judge_kind)
    store.set_judge_meta({"signature": signature, "mode": cfg.judge.mode, "seed": cfg.judge.seed,
                           "model": spec.name, "templates": templates.origin, "templates_sha": templates.sha,
                           "image_detail": cfg.judge.image_detail, "score_range": [SCORE_MIN, SCORE_MAX],
                           "kind": task.judge_kind})
    items = {i["id"]: i for i in store.items()}
    if images is None:
        images = load_item_images(cfg, list(items.values()))
    tasks, skipped = plan_tasks(cfg, store, signature, images, task.judge_kind)
    done = store.judged_keys()
    pending = deque(t for t in tasks if t.key not in done)
    outcome = JudgeOutcome(already_done=len(tasks) - len(pending), skipped=skipped)
    if not pending:
        outcome.cost_usd = store.judge_cost() or 0.0
        return outcome

    spent = store.judge_cost() or 0.0
    costs = store.recent_judge_costs(50)
    in_flight = 0
    health = ServerHealth(f"the judge server {spec.name} at {spec.address()}")
    failures = FailureTally()
    cond = asyncio.Condition()
    own_client = client is None
    judge_client = client or JudgeClient(spec, image_detail=cfg.judge.image_detail,
                                         schema=GRADE_SCHEMA if task.judge_kind == "graded" else RESPONSE_SCHEMA)
    workers = max(1, spec.concurrency or cfg.concurrency)
    if judge_client.limiter is None:  # requests in flight follow the judge server's 429s, as generation's do
        judge_client.limiter = AdaptiveLimiter(workers, grow_after=GROW_AFTER, name=f"judge {spec.name}")

    def estimate() -> float | None:
        return max(costs) if costs else None

    def may_start() -> bool:
        return max_cost is None or estimate() is not None or in_flight == 0

    async def worker(advance: Callable[[int], None]) -> None:
        nonlocal in_flight, spent
        while True:
            async with cond:
                await cond.wait_for(lambda: may_start() or outcome.stopped is not None or outcome.given_up)
                if outcome.stopped is not None or outcome.given_up or not pending:
                    return
                if limit is not None and outcome.requested >= limit:
                    outcome.stopped = "limit"
                    cond.notify_all()
                    return
                if max_cost is not None:
                    est = estimate() or 0.0
                    if spent >= max_cost or spent + (in_flight + 1) * est > max_cost:
                        outcome.stopped = "max_cost"
                        cond.notify_all()
                        return
                task = pending.popleft()
                outcome.requested += 1
                in_flight += 1
            try:
                row = await _judge_one(cfg, judge_client, templates, signature, task, items[task.generation["item"]],
                                       images[task.generation["item"]])
                store.put_judgements([row])
            finally:
                async with cond:
                    in_flight -= 1
                    cond.notify_all()
            async with cond:
                if row.get("cost_usd") is not None:
                    spent += row["cost_usd"]
                    costs.append(row["cost_usd"])
                if row.get("error") is None:
                    outcome.judged += 1
                else:
                    outcome.failed += 1
                    failures.add(row.get("error_kind"), f"{task.generation['item']}: {row['error']}")
                # like generation: a server that refused every connection so far is given up after a few
                if health.record(None if row.get("error") is None else (row.get("error_kind") or "error")):
                    outcome.given_up = health.given_up
                cond.notify_all()
            advance(1)

    try:
        with progress_bar(f"judge {spec.name}", len(pending), enabled=show_progress) as advance:
            await asyncio.gather(*(worker(advance) for _ in range(workers)))
    finally:
        if own_client:
            await judge_client.aclose()
    outcome.remaining = len(pending)
    outcome.cost_usd = store.judge_cost() or 0.0
    if failures:  # why, on the console and in logs/run.log, not only in judgements.csv
        why = f"{outcome.failed} judgement(s) failed {failures.describe()}"
        log.warning("judge %s: %s", spec.name, why)
        outcome.notes.append(f"judge: {why}")
    if outcome.given_up:
        note = (f"{outcome.given_up}: {outcome.remaining} judgement(s) not sent; run `vlmpipe judge RUN` again "
                "once it answers")
        log.error("judge: %s", note)
        outcome.notes.append(f"judge: {note}")
    if cfg.judge.prices and outcome.requested and not costs:
        outcome.notes.append("the judge server reported no token usage: the cost is unknown")
    return outcome


def judge_run(cfg: RunConfig, store: Store, **kwargs: Any) -> JudgeOutcome:
    return asyncio.run(judge_run_async(cfg, store, **kwargs))
