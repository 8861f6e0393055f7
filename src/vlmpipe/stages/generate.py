"""The generate stage: every planned (model, item, repeat) not yet finished, with bounded concurrency.

Each finished request is written to the store at once, so an interrupted run loses only the requests in
flight. Models run one after another (a served model is started before its requests and stopped after).

Requests in flight follow the server: a 429 halves them, successes grow them back (:mod:`vlmpipe.core.limiter`).
A model whose server refuses every connection is given up after a few requests in a row (the rest are
recorded as failed without being sent, and retried by the next run), so a dead server costs seconds, not
hours, and the other models still run. An optional deadline (``max_run_time_s``) stops the stage cleanly:
requests in flight are abandoned, everything finished is already stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vlmpipe.core.config import ModelSpec, RunConfig
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.limiter import GROW_AFTER, AdaptiveLimiter
from vlmpipe.core.progress import progress_bar
from vlmpipe.core.server_health import FailureTally, ServerHealth
from vlmpipe.core.store import Store
from vlmpipe.providers import Generation, Request, make_provider
from vlmpipe.stages.generation_cache import (
    CACHED,
    cache_on,
    cache_row,
    cached_generation,
    generation_request,
    request_identity,
    reuse_cached,
)
from vlmpipe.stages.plan import PlannedGeneration, candidate_models
from vlmpipe.stages.serving.session import model_session

log = logging.getLogger("vlmpipe")

class RunDeadline(Exception):
    """The run's time limit passed during generation."""


def _row(p: PlannedGeneration, gen: Generation, *, request_hash: str | None = None,
         source: str | None = None) -> dict[str, Any]:
    return {
        "key": p.key, "model": p.model, "role": p.role, "item": p.item, "repeat": p.repeat,
        "text": gen.text, "error": gen.error, "error_kind": gen.error_kind, "latency_s": gen.latency_s,
        "ttft_s": gen.ttft_s, "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
        "token_times": gen.token_times, "request_hash": request_hash, "source": source,
    }


#: a generation's row in the store (the batch import stores its answers with it too)
generation_row = _row


async def _run_model(
    cfg: RunConfig, spec: ModelSpec, role: str, todo: list[PlannedGeneration], store: Store,
    items: dict[str, dict[str, Any]], images: dict[str, PreparedImage | str],
    advance: Callable[[int], None], deadline: float | None = None,
) -> None:
    async with model_session(cfg, spec, store) as served:
        if served.error:
            log.warning("model %s: %d generation(s) not sent: %s", spec.name, len(todo), served.error)
            for p in todo:
                store.put_generation(_row(p, Generation(error=served.error, error_kind="server")))
                advance(1)
            store.update_model_info(spec.name, {"failed": served.error})
            return
        provider = make_provider(served.spec)
        width = spec.concurrency or cfg.concurrency
        limiter = AdaptiveLimiter(width, grow_after=GROW_AFTER, name=spec.name)
        if hasattr(provider, "limiter"):
            provider.limiter = limiter  # HTTP attempts follow the server's 429s
        sem = asyncio.Semaphore(width)
        where = served.spec.address()
        health = ServerHealth(f"not sent: the server of {spec.name} at {where}" if where
                              else f"not sent: the provider of {spec.name}")
        errors = FailureTally()

        requests = {p.key: generation_request(cfg, p, items[p.item], images.get(p.item)) for p in todo}
        hashes = ({k: request_identity(served.spec, r) for k, r in requests.items() if r is not None}
                  if cache_on(cfg, spec, role) else {})
        reused = reuse_cached(store, [p for p in todo if p.key in hashes], hashes)
        for _p in reused:
            advance(1)
        in_flight: dict[str, asyncio.Future[Generation]] = {}

        async def send(req: Request) -> Generation:
            async with sem:
                if health.given_up:
                    return Generation(error=health.given_up, error_kind="connection")
                gen = await provider.generate(req)
                if health.record(None if gen.ok else (gen.error_kind or "error"), gen.error):
                    log.error("model %s: server unreachable, giving up on its remaining requests: %s",
                              spec.name, gen.error)
                return gen

        async def one(p: PlannedGeneration) -> None:
            item = items[p.item]
            req = requests[p.key]
            h = hashes.get(p.key)
            if req is None:
                gen = Generation(error=item.get("error") or "image unavailable", error_kind="image")
            elif h is not None and h in in_flight:  # an identical request is on its way: reuse its answer
                first = await asyncio.shield(in_flight[h])
                if first.ok:
                    store.put_generations([_row(p, cached_generation(first), request_hash=h, source=CACHED)])
                    advance(1)
                    return
                gen = await send(req)  # it failed: this one asks for itself
            elif h is not None:
                future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
                in_flight[h] = future
                try:
                    gen = await send(req)
                except BaseException:
                    future.set_result(Generation(error="cancelled", error_kind="cancelled"))
                    raise
                future.set_result(gen)
            else:
                gen = await send(req)
            row = _row(p, gen, request_hash=h)
            store.put_generations([row], cache=cache_row(row) if h is not None and gen.ok else None)
            if gen.error:
                errors.add(gen.error_kind, f"{p.item}#{p.repeat}: {gen.error}")
            advance(1)

        cap = asyncio.timeout_at(deadline)
        try:
            async with cap:
                await asyncio.gather(*(one(p) for p in todo if p.key not in reused))
        except TimeoutError:
            if cap.expired():
                raise RunDeadline from None
            raise
        finally:
            await provider.aclose()
            if errors:
                log.warning("model %s: %d of %d generations failed %s", spec.name, errors.by_kind.total(),
                            len(todo), errors.describe())
            store.update_model_info(spec.name, {
                "failed": health.given_up,
                "concurrency_min": limiter.min_limit,
                "rate_limit_backoffs": limiter.backoffs,
            })


async def generate_async(
    cfg: RunConfig, store: Store, plan: list[PlannedGeneration],
    images: dict[str, PreparedImage | str], *, show_progress: bool = True, deadline: float | None = None,
) -> int:
    """Run what the plan still lacks; returns the number of generations attempted.

    ``deadline`` is a ``loop.time()`` value; reaching it raises :class:`RunDeadline` (finished work is stored).
    """
    finished = store.finished_keys()
    items = {i["id"]: i for i in store.items()}
    made = 0
    for spec, role, _repeats in candidate_models(cfg):
        todo = [p for p in plan if p.model == spec.name and p.key not in finished]
        if not todo:
            continue
        with progress_bar(f"generate {spec.name}", len(todo), enabled=show_progress) as advance:
            await _run_model(cfg, spec, role, todo, store, items, images, advance, deadline)
        made += len(todo)
    return made


def generate(cfg: RunConfig, store: Store, plan: list[PlannedGeneration],
             images: dict[str, PreparedImage | str], *, show_progress: bool = True,
             max_time_s: float | None = None) -> int:
    """Run the generate stage; :class:`RunDeadline` when ``max_time_s`` (from now) passes first."""

    async def main() -> int:
        deadline = None if max_time_s is None else asyncio.get_running_loop().time() + max_time_s
        return await generate_async(cfg, store, plan, images, show_progress=show_progress, deadline=deadline)

    return asyncio.run(main())
