"""The provider interface: one screenshot and prompt in, one generation out.

Providers never raise for a failed request: the failure is a :class:`Generation` with ``error`` and an
``error_kind`` (``timeout``, ``http_429``, ``http_500``, ``connection``, ``bad_response``, ``empty``,
``refusal``, ``image``...), so one bad request never stops a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from vlmpipe.core.modelspec import ModelSpec


@dataclass(frozen=True)
class Request:
    """What is sent for one generation. ``image_url`` is a data URL or an http(s) URL."""

    item_id: str
    image_url: str
    system_prompt: str
    user_message: str = ""
    image_bytes: bytes | None = None


@dataclass
class Generation:
    """The outcome of one request, with its timings (seconds from sending the request)."""

    text: str | None = None
    error: str | None = None
    error_kind: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    token_times: list[float] | None = None
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


class Provider(Protocol):
    """Anything that turns a :class:`Request` into a :class:`Generation`."""

    spec: ModelSpec

    async def generate(self, request: Request) -> Generation: ...

    async def aclose(self) -> None: ...
