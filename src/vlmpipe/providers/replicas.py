"""Replicas: one model served at several base URLs (``base_urls``), requests spread round-robin.

Each replica has its own OpenAI-compatible provider (own connection pool, retries); a request goes to the
next replica in turn and records which one served it in ``Generation.extra["replica"]``. Past one machine,
point ``base_urls`` at replicas served by an existing engine (vLLM with Ray, a Kubernetes service):
vlmpipe does not schedule clusters itself.
"""

from __future__ import annotations

import itertools

from vlmpipe.core.config import ModelSpec
from vlmpipe.providers.base import Generation, Request
from vlmpipe.providers.openai_compat import OpenAICompatProvider


class ReplicaProvider:
    def __init__(self, spec: ModelSpec) -> None:
        if not spec.base_urls:
            raise ValueError(f"model {spec.name!r} lists no base_urls")
        self.spec = spec
        self.replicas = [OpenAICompatProvider(spec.model_copy(update={"base_url": url, "base_urls": []}))
                         for url in spec.base_urls]
        self._next = itertools.cycle(range(len(self.replicas)))

    async def generate(self, request: Request) -> Generation:
        index = next(self._next)
        gen = await self.replicas[index].generate(request)
        gen.extra["replica"] = self.spec.base_urls[index]
        return gen

    async def aclose(self) -> None:
        for provider in self.replicas:
            await provider.aclose()
