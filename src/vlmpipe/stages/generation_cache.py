"""The request cache for generations (``cache: true`` in the run's config).

With ``cache: true``, a generation whose request is identical to one already answered — same model and sampling,
screenshot bytes, instruction and user message; only the repeat differs — is not sent again: it stores that
answer with ``source = 'cache'``. This applies to the reference model's generations (only its first good answer is
used as the reference) and to every model whose temperature is 0 (its repeats would be identical anyway). At a
temperature above 0 the repeats are samples, and each is sent. Requests are identified by
:func:`vlmpipe.providers.openai_compat.request_hash` of the body without its transport keys; a cached generation
carries no latency, tokens or timings (it took none), so it is left out of the speed statistics, with the reason in
``unavailable``. Only successful answers are cached: a failed one is asked again by the next run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vlmpipe.core.config import ModelSpec, RunConfig
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.store import Store
from vlmpipe.providers import Generation, Request
from vlmpipe.providers.openai_compat import chat_body, request_hash
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.plan import PlannedGeneration

STAGE = "generate"
#: ``generations.source`` of an answer taken from the request cache / from a batch engine's results file
CACHED, BATCH = "cache", "batch"


def cache_on(cfg: RunConfig, spec: ModelSpec, role: str) -> bool:
    """Whether ``spec``'s identical requests are sent once: ``cache: true`` and the reference model, or a
    temperature of 0."""
    if not cfg.cache:
        return False
    return role == "reference" or getattr(spec, "temperature", None) == 0


def generation_request(cfg: RunConfig, p: PlannedGeneration, item: dict[str, Any],
                       image: PreparedImage | str | None) -> Request | None:
    """What is sent for a planned generation; ``None`` when its screenshot is unusable."""
    if item.get("error") or image is None:
        return None
    return Request(
        item_id=p.item,
        image_url=image if isinstance(image, str) else image.data_url(),
        system_prompt=cfg.system_prompt or "",
        user_message=str(item.get("user_message") or cfg.user_message or ""),
        image_bytes=None if isinstance(image, str) else image.data,
    )


def request_identity(spec: ModelSpec, request: Request) -> str:
    """The request's hash: the chat body an OpenAI-compatible model is sent; for other providers, the request and
    the model's sampling signature."""
    if isinstance(spec, OpenAISpec):
        return request_hash(chat_body(spec, request))
    content = {"sampling": spec.sampling_signature(), "image": hashlib.sha256(request.image_url.encode()).hexdigest(),
               "system": request.system_prompt, "user": request.user_message}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def cache_row(row: dict[str, Any]) -> dict[str, Any]:
    """The request cache's entry for a successful generation."""
    return {"hash": row["request_hash"], "stage": STAGE, "text": row["text"], "attempts": 1,
            "prompt_tokens": row.get("prompt_tokens"), "completion_tokens": row.get("completion_tokens"),
            "latency_s": row.get("latency_s"), "ttft_s": row.get("ttft_s"), "source": row.get("source")}


def cached_generation(first: Generation | dict[str, Any]) -> Generation:
    """A generation reusing an answer: its text only (no latency, tokens or timings of its own)."""
    text = first.text if isinstance(first, Generation) else first.get("text")
    return Generation(text=text)


def reuse_cached(store: Store, todo: list[PlannedGeneration], hashes: dict[str, str]) -> set[str]:
    """Store the planned generations whose request the cache has answered; returns their keys."""
    hits = store.cached(hashes[p.key] for p in todo)
    rows = []
    for p in todo:
        entry = hits.get(hashes[p.key])
        if entry is not None and entry.get("stage") == STAGE and entry.get("error") is None:
            gen = cached_generation(entry)
            rows.append({"key": p.key, "model": p.model, "role": p.role, "item": p.item, "repeat": p.repeat,
                         "text": gen.text, "request_hash": hashes[p.key], "source": CACHED})
    if rows:
        store.put_generations(rows)
    return {r["key"] for r in rows}
