"""Replicas: one model served at several base URLs (``base_urls``), requests spread round-robin.

Each replica has its own provider (own connection pool, retries), made by the model's provider from the spec
pointed at that replica; a request goes to the next replica in turn and records which one served it in
``Generation.extra["replica"]``. Past one machine, point ``base_urls`` at replicas served by an existing engine
(vLLM with Ray, a Kubernetes service): vlmpipe does not schedule clusters itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Generic, TypeVar

from vlmpipe.providers.base import Generation, Provider, Request
from vlmpipe.providers.http import HttpModelSpec

S = TypeVar("S", bound=HttpModelSpec)


class ReplicaProvider(Generic[S]):
    def __init__(self, spec: S, make_one: Callable[[S], Provider]) -> None:
        """``make_one``: the provider of one replica, from the spec pointed at it."""
        if not spec.base_urls:
            raise ValueError(f"model {spec.name!r} lists no base_urls")
        self.spec = spec
        self.replicas = [make_one(spec.served_at(url)) for url in spec.base_urls]
        self._next = itertools.cycle(range(len(self.replicas)))

    async def generate(self, request: Request) -> Generation:
        index = next(self._next)
        gen = await self.replicas[index].generate(request)
        gen.extra["replica"] = self.spec.base_urls[index]
        return gen

    async def aclose(self) -> None:
        for provider in self.replicas:
            await provider.aclose()
