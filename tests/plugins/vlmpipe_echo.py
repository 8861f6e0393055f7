"""vlmpipe-echo: a provider plugin for vlmpipe that answers every screenshot with a fixed text.

In a config: ``{name: echo-bot, provider: echo, text: "...{item}...", delay_s: 0.1}``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from pydantic import Field

from vlmpipe.core.modelspec import ModelSpec
from vlmpipe.providers import Generation, Request, register_provider


class EchoSpec(ModelSpec):
    """``provider: echo``: the fields of a model entry (``name`` and ``concurrency`` come from ModelSpec)."""

    provider: Literal["echo"] = "echo"
    text: str = Field(default="Здравствуйте! Помогите, пожалуйста, с заказом на скриншоте {item}.", min_length=1,
                      description="The answer; {item} is replaced by the screenshot's id.")
    delay_s: float = Field(default=0.0, ge=0, le=60, description="Wait this long before answering.")

    def sampling_signature(self) -> dict[str, Any]:
        # what changes the answer: another text makes new generations, another delay reuses the stored ones
        return {"provider": self.provider, "text": self.text}

    def describe(self) -> str:
        return f"{self.provider}: {self.text!r}"


class EchoProvider:
    """The implementation: one request in, one Generation out; a failure is returned, never raised."""

    def __init__(self, spec: EchoSpec) -> None:
        self.spec = spec

    async def generate(self, request: Request) -> Generation:
        t0 = time.perf_counter()
        await asyncio.sleep(self.spec.delay_s)
        if not request.item_id:
            return Generation(error="the request has no item id", error_kind="bad_request")
        text = self.spec.text.replace("{item}", request.item_id)
        return Generation(text=text, latency_s=time.perf_counter() - t0)

    async def aclose(self) -> None:
        return None


register_provider(EchoSpec, EchoProvider)
