"""The judge's transport: the OpenAI-compatible provider (its retries, timeouts, API key and redaction), with
the judge's message shape — the judge instructions as the system message, the rendered user template and the
screenshot (with ``detail``) as the user message — and a ``response_format`` JSON schema.

The schema is sent unless ``judge.model.extra_body`` sets ``response_format`` itself (``null`` disables it).
A server that rejects the schema with HTTP 400 is asked again without it, once for the whole run.
"""

from __future__ import annotations

from typing import Any

import httpx

from vlmpipe.providers.base import Generation, Request
from vlmpipe.providers.openai_compat import OpenAICompatProvider, chat_body
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.judge.parse import RESPONSE_SCHEMA


def judge_body(spec: OpenAISpec, request: Request, *, image_detail: str = "auto",
               schema: dict[str, Any] | None = RESPONSE_SCHEMA) -> dict[str, Any]:
    """The judge's chat-completions body: the provider's (:func:`chat_body`), the screenshot with ``detail``, and the
    ``response_format`` schema (``None``: not sent; ``extra_body: {response_format: null}`` never sends it)."""
    body = chat_body(spec, request)
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    part["image_url"]["detail"] = image_detail
    if schema is not None:
        body["response_format"] = schema
    if "response_format" in body and body["response_format"] is None:
        del body["response_format"]
    return body


class JudgeClient(OpenAICompatProvider):
    def __init__(self, spec: OpenAISpec, *, image_detail: str = "auto", client: httpx.AsyncClient | None = None,
                 schema: dict[str, Any] = RESPONSE_SCHEMA) -> None:
        super().__init__(spec, client=client)
        self.image_detail = image_detail
        self.schema = schema
        self.use_schema = "response_format" not in spec.extra_body

    def payload(self, request: Request) -> dict[str, Any]:
        return judge_body(self.spec, request, image_detail=self.image_detail,
                          schema=self.schema if self.use_schema else None)

    def configured_payload(self, request: Request) -> dict[str, Any]:
        """The body as configured (the schema sent unless ``extra_body`` says otherwise), whatever a server's
        refusal of the schema changed since: what identifies the request (:func:`request_hash`)."""
        return judge_body(self.spec, request, image_detail=self.image_detail,
                          schema=self.schema if "response_format" not in self.spec.extra_body else None)

    async def ask(self, request: Request) -> Generation:
        """One judge answer; falls back to no schema when the server refuses ``response_format``."""
        gen = await self.generate(request)
        if gen.error_kind == "http_400" and self.use_schema:
            self.use_schema = False
            retry = await self.generate(request)
            retry.prompt_tokens = (retry.prompt_tokens or 0) + (gen.prompt_tokens or 0) or None
            return retry
        return gen
