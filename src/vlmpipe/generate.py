"""The generate stage: every planned (model, item, repeat) not yet finished, with bounded concurrency.

Each finished request is written to the store at once, so an interrupted run loses only the requests in
flight. Models run one after another (a served model is started before its requests and stopped after).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .config import ModelSpec, RunConfig
from .images import PreparedImage
from .plan import PlannedGeneration, candidate_models
from .progress import progress_bar
from .providers import Generation, Request, make_provider
from .serving import model_session
from .store import Store


def _row(p: PlannedGeneration, gen: Generation) -> dict[str, Any]:
    return {
        "key": p.key, "model": p.model, "role": p.role, "item": p.item, "repeat": p.repeat,
        "text": gen.text, "error": gen.error, "error_kind": gen.error_kind, "latency_s": gen.latency_s,
        "ttft_s": gen.ttft_s, "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
        "token_times": gen.token_times,
    }


async def _run_model(
    cfg: RunConfig, spec: ModelSpec, todo: list[PlannedGeneration], store: Store,
    items: dict[str, dict[str, Any]], images: dict[str, PreparedImage | str],
    advance: Callable[[int], None],
) -> None:
    async with model_session(cfg, spec, store) as served:
        if served.error:
            for p in todo:
                store.put_generation(_row(p, Generation(error=served.error, error_kind="server")))
                advance(1)
            return
        provider = make_provider(served.spec)
        sem = asyncio.Semaphore(spec.concurrency or cfg.concurrency)

        async def one(p: PlannedGeneration) -> None:
            item = items[p.item]
            image = images.get(p.item)
            if item.get("error") or image is None:
                gen = Generation(error=item.get("error") or "image unavailable", error_kind="image")
            else:
                req = Request(
                    item_id=p.item,
                    image_url=image if isinstance(image, str) else image.data_url(),
                    system_prompt=cfg.system_prompt,
                    user_message=str(item.get("user_message") or cfg.user_message),
                    image_bytes=None if isinstance(image, str) else image.data,
                )
                async with sem:
                    gen = await provider.generate(req)
            store.put_generation(_row(p, gen))
            advance(1)

        try:
            await asyncio.gather(*(one(p) for p in todo))
        finally:
            await provider.aclose()


async def generate_async(
    cfg: RunConfig, store: Store, plan: list[PlannedGeneration],
    images: dict[str, PreparedImage | str], *, show_progress: bool = True,
) -> int:
    """Run what the plan still lacks; returns the number of requests made."""
    finished = store.finished_keys()
    items = {i["id"]: i for i in store.items()}
    made = 0
    for spec, _role, _repeats in candidate_models(cfg):
        todo = [p for p in plan if p.model == spec.name and p.key not in finished]
        if not todo:
            continue
        with progress_bar(f"generate {spec.name}", len(todo), enabled=show_progress) as advance:
            await _run_model(cfg, spec, todo, store, items, images, advance)
        made += len(todo)
    return made


def generate(cfg: RunConfig, store: Store, plan: list[PlannedGeneration],
             images: dict[str, PreparedImage | str], *, show_progress: bool = True) -> int:
    return asyncio.run(generate_async(cfg, store, plan, images, show_progress=show_progress))
