"""Model sessions: the server a model's requests go to, for the duration of its generations.

A model without ``launch`` is served elsewhere (its ``base_url`` is used as is).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .config import ModelSpec, RunConfig
from .store import Store


@dataclass
class ServedModel:
    spec: ModelSpec
    error: str | None = None


@asynccontextmanager
async def model_session(cfg: RunConfig, spec: ModelSpec, store: Store) -> AsyncIterator[ServedModel]:
    if spec.launch is not None:
        yield ServedModel(spec, error="launching servers is not supported yet: start the server yourself "
                                      "and set base_url")
        return
    yield ServedModel(spec)
