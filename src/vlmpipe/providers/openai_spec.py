"""The spec of ``provider: openai`` (the default): a model behind an OpenAI-compatible chat-completions API.

vLLM, SGLang, llama.cpp server, Ollama, OpenAI, Azure and proxies alike. The fields are those model entries
always had; the implementation is :mod:`vlmpipe.providers.openai_compat` (and :mod:`~vlmpipe.providers.replicas`
for ``base_urls``), which registers this class.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from vlmpipe.core.presets import UnknownPreset, apply_preset
from vlmpipe.providers.http import HttpModelSpec


class OpenAISpec(HttpModelSpec):
    """One model behind an OpenAI-compatible server: a candidate, the reference model, or the judge."""

    provider: Literal["openai"] = "openai"
    model: str | None = Field(default=None, description="Model id sent to the server (default: name).")
    api_key_env: str | None = Field(default=None, description="Environment variable holding the API key.")
    temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, gt=0)
    timeout_s: float = Field(default=120.0, gt=0, description="Whole-request limit, stalls included.")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, description="Retries on connection errors, 429 and 5xx.")
    retry_backoff_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles each retry.")
    max_retry_after_s: float = Field(default=60.0, ge=0, description="Cap on a server's Retry-After.")
    stream: bool = True
    system_prompt_as_user: bool = False
    extra_body: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = Field(default=None, description="A catalogue entry (vlmpipe models) filling model/launch.")

    can_judge: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset"):
            try:
                return apply_preset(data)
            except UnknownPreset as err:
                raise ValueError(str(err)) from None
        return data

    @property
    def model_id(self) -> str:
        return self.model or self.name

    def sampling_signature(self) -> dict[str, Any]:
        # unchanged since the first version: stored generations of existing runs keep their keys
        return {
            "provider": self.provider,
            "model": self.model_id,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "system_prompt_as_user": self.system_prompt_as_user,
            "extra_body": self.extra_body,
        }

    def describe(self) -> str:
        where = f"a server vlmpipe launches ({self.launch.engine})" if self.launch is not None else self.address()
        return (f"{self.provider} {self.model_id} @ {where}, temperature {self.temperature}, "
                f"max_tokens {self.max_tokens}")

    def key_env_vars(self) -> dict[str, str]:
        return {"api_key_env": self.api_key_env} if self.api_key_env else {}

    def record(self) -> dict[str, Any]:
        # extra_body may carry anything a server accepts; the store keeps only its keys
        return self.model_dump(mode="json", exclude={"extra_body"}) | {"extra_body_keys": sorted(self.extra_body)}

    def bench_skip_reason(self) -> str | None:
        return None

    def for_bench(self) -> Self:
        return self.model_copy(update={"max_retries": 0, "stream": True})
