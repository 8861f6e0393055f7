"""Models served over HTTP: one ``base_url``, several replicas (``base_urls``) or a server vlmpipe launches.

:class:`HttpModelSpec` is the spec base of providers whose requests go to a server: the serving session
(``stages.serving``) launches it when the spec says ``launch``, points the spec at the launched server
(:meth:`~HttpModelSpec.served_at`), and measures GPU memory and the server's ``/metrics`` when the server runs on
this machine. The ``openai`` provider's spec extends it; so can a plugin's.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from vlmpipe.core.config import LaunchSpec
from vlmpipe.core.modelspec import ModelSpec

DEFAULT_BASE_URL = "http://localhost:8000/v1"


class HttpModelSpec(ModelSpec):
    """A model behind an HTTP server (see the module docstring)."""

    base_url: str = DEFAULT_BASE_URL
    launch: LaunchSpec | None = Field(default=None, description="How to start a server for this model.")
    base_urls: list[str] = Field(default_factory=list, description="Replicas; requests go round-robin.")

    @model_validator(mode="after")
    def _replicas_or_launch(self) -> Self:
        if self.launch is not None and self.base_urls:
            raise ValueError("base_urls and launch exclude each other: a launched model is served at its own URL")
        return self

    def urls(self) -> list[str]:
        """Where requests go: the replicas, or the one ``base_url`` (a launched server's, once it runs)."""
        return list(self.base_urls) or [self.base_url]

    def served_at(self, url: str) -> Self:
        """The spec pointed at the server vlmpipe launched for it."""
        return self.model_copy(update={"base_url": url, "base_urls": []})

    def address(self) -> str:
        return ", ".join(self.urls())

    def bench_skip_reason(self) -> str | None:
        return (f"bench measures streamed OpenAI-compatible requests, and provider {self.provider!r} does not "
                f"declare that it sends them")
