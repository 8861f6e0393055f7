"""The OpenAI-compatible chat-completions provider (vLLM, SGLang, llama.cpp server, Ollama, OpenAI, proxies).

Streams by default so that both time to first token (TTFT) and end-to-end latency are measured; records
token usage when the server reports it and the arrival time of every content chunk (for TPOT and ITL).
The whole request, stalls mid-stream included, is bounded by ``timeout_s``. Connection errors, 429 and 5xx
are retried with exponential backoff, honouring ``Retry-After``. The API key is read from the environment
variable the config names and never appears in errors.

This module registers the ``openai`` provider: its spec (:class:`~vlmpipe.providers.openai_spec.OpenAISpec`)
and its factory, which serves a spec with ``base_urls`` through :class:`~vlmpipe.providers.replicas.ReplicaProvider`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from vlmpipe.core.limiter import AdaptiveLimiter
from vlmpipe.core.redact import redact
from vlmpipe.providers.base import Generation, Provider, Request
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.providers.registry import register_provider
from vlmpipe.providers.replicas import ReplicaProvider

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    def __init__(self, gen: Generation, retry_after: float | None = None) -> None:
        super().__init__(gen.error)
        self.gen = gen
        self.retry_after = retry_after


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _error_message(resp_text: str, limit: int = 300) -> str:
    try:
        body = json.loads(resp_text)
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message") if isinstance(err, dict) else None
        text = str(msg or err)
    except (json.JSONDecodeError, AttributeError):
        text = resp_text
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def build_messages(spec: OpenAISpec, request: Request) -> list[dict[str, Any]]:
    """System instruction plus the screenshot (and the user message when set)."""
    image_part = {"type": "image_url", "image_url": {"url": request.image_url}}
    if spec.system_prompt_as_user:
        text = request.system_prompt + (f"\n\n{request.user_message}" if request.user_message else "")
        return [{"role": "user", "content": [{"type": "text", "text": text}, image_part]}]
    user: list[dict[str, Any]] = []
    if request.user_message:
        user.append({"type": "text", "text": request.user_message})
    user.append(image_part)
    return [{"role": "system", "content": request.system_prompt}, {"role": "user", "content": user}]


def chat_body(spec: OpenAISpec, request: Request) -> dict[str, Any]:
    """The chat-completions body sent for ``request`` (live, and as a batch engine's request: ``stream: false``)."""
    body: dict[str, Any] = {
        "model": spec.model_id,
        "messages": build_messages(spec, request),
        "temperature": spec.temperature,
        "max_tokens": spec.max_tokens,
        "stream": spec.stream,
    }
    if spec.stream:
        body["stream_options"] = {"include_usage": True}
    body.update(spec.extra_body)
    return body


#: Keys of a body that say how the answer travels (streamed or not), not what is asked: a request's identity
#: (:func:`request_hash`) leaves them out, so a streamed live request and a batch request are the same request.
TRANSPORT_KEYS = ("stream", "stream_options")


def request_hash(body: dict[str, Any], **context: Any) -> str:
    """The identity of a request: a hash of its body (screenshot bytes, texts, model, sampling...) without the
    transport keys, and of any ``context`` the caller adds (e.g. the judge's template hash)."""
    content = {k: v for k, v in body.items() if k not in TRANSPORT_KEYS}
    payload = json.dumps({"body": content, **context}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def parse_completion(body: Any) -> tuple[str, str, dict[str, Any]]:
    """``(content, refusal, usage)`` of a non-streamed ``chat.completion`` body; ``ValueError`` when it is not one."""
    try:
        message = body["choices"][0]["message"]
        text = message.get("content") or ""
        refusal = message.get("refusal") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ValueError("not a chat.completion body (no choices[0].message)") from None
    usage = body.get("usage") if isinstance(body, dict) else None
    return str(text), str(refusal), usage if isinstance(usage, dict) else {}


def finish_generation(gen: Generation, text: str, refusal: str) -> Generation:
    """A generation with its text, or the error an empty answer or a refusal is."""
    if refusal and not text.strip():
        gen.error, gen.error_kind = f"the model refused: {refusal[:200]}", "refusal"
    elif not text.strip():
        gen.error, gen.error_kind = "empty answer", "empty"
    gen.text = text
    return gen


class OpenAICompatProvider:
    def __init__(self, spec: OpenAISpec, *, client: httpx.AsyncClient | None = None,
                 limiter: AdaptiveLimiter | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.spec = spec
        #: seconds, read when a request is sent, at each content chunk and at the end (tests pass a fake one)
        self.clock = clock
        #: when set, every HTTP attempt (not the waits between retries) holds one of its slots
        self.limiter = limiter
        self._api_key = os.environ.get(spec.api_key_env, "") if spec.api_key_env else ""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = client or httpx.AsyncClient(
            base_url=spec.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(spec.timeout_s, connect=spec.connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _redact(self, text: str) -> str:
        return redact(text, [self._api_key] if self._api_key else [])

    def _redacted(self, gen: Generation) -> Generation:
        """The last line of defence: no key in anything a generation carries to the store."""
        if gen.error:
            gen.error = self._redact(gen.error)
        if gen.text and self._api_key and self._api_key in gen.text:
            gen.text = self._redact(gen.text)
        return gen

    def payload(self, request: Request) -> dict[str, Any]:
        return chat_body(self.spec, request)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.spec.max_retry_after_s)
        base = self.spec.retry_backoff_s
        return wait_exponential_jitter(multiplier=base, max=max(base, 30.0), jitter=base / 2)(state)

    async def generate(self, request: Request) -> Generation:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.spec.max_retries + 1),
                wait=self._wait,
                retry=retry_if_exception_type(_Retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    gen = await self._attempt(request)
                    gen.attempts = attempts
                    return self._redacted(gen)
        except _Retryable as exc:
            exc.gen.attempts = attempts
            return self._redacted(exc.gen)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: Request) -> Generation:
        if self.limiter is None:
            return await self._attempt_once(request)
        async with self.limiter.slot() as slot:
            try:
                gen = await self._attempt_once(request)
            except _Retryable as exc:
                slot.outcome = exc.gen.error_kind
                raise
            slot.outcome = gen.error_kind or "ok"
            return gen

    async def _attempt_once(self, request: Request) -> Generation:
        t0 = self.clock()
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                if self.spec.stream:
                    gen = await self._stream(request, t0)
                else:
                    gen = await self._once(request, t0)
        except TimeoutError:
            return Generation(
                error=f"no complete answer within {self.spec.timeout_s:g} s",
                error_kind="timeout",
                latency_s=self.clock() - t0,
            )
        except httpx.TimeoutException as err:
            return Generation(
                error=f"timed out ({err.__class__.__name__})", error_kind="timeout",
                latency_s=self.clock() - t0,
            )
        except (httpx.TransportError, httpx.RemoteProtocolError) as err:
            gen = Generation(
                error=self._redact(f"connection to {self.spec.base_url} failed: {err.__class__.__name__}: {err}")[:300],
                error_kind="connection",
                latency_s=self.clock() - t0,
            )
            raise _Retryable(gen) from None
        return gen

    def _http_error(self, resp: httpx.Response, text: str, t0: float) -> Generation:
        hint = ""
        if resp.status_code == 404:  # a base_url without /v1, or a model id the server does not serve
            hint = f" (POST {resp.request.url}: check base_url, which usually ends in /v1, and model)"
        gen = Generation(
            error=f"HTTP {resp.status_code}: {_error_message(self._redact(text))}{hint}",
            error_kind=f"http_{resp.status_code}",
            latency_s=self.clock() - t0,
        )
        if resp.status_code in RETRYABLE_STATUS:
            raise _Retryable(gen, _retry_after_seconds(resp.headers.get("retry-after")))
        return gen

    @staticmethod
    def _finish(gen: Generation, text: str, refusal: str) -> Generation:
        return finish_generation(gen, text, refusal)

    async def _once(self, request: Request, t0: float) -> Generation:
        resp = await self._client.post("chat/completions", json=self.payload(request))
        body_text = resp.text
        if resp.status_code != 200:
            return self._http_error(resp, body_text, t0)
        latency = self.clock() - t0
        try:
            text, refusal, usage = parse_completion(json.loads(body_text))
        except ValueError:  # json.JSONDecodeError too
            return Generation(error=f"malformed response: {self._redact(body_text)[:200]!r}", error_kind="bad_response",
                              latency_s=latency)
        gen = Generation(latency_s=latency, prompt_tokens=usage.get("prompt_tokens"),
                         completion_tokens=usage.get("completion_tokens"))
        return self._finish(gen, text, refusal)

    async def _stream(self, request: Request, t0: float) -> Generation:
        parts: list[str] = []
        refusal: list[str] = []
        times: list[float] = []
        usage: dict[str, Any] = {}
        finished = done = False
        async with self._client.stream("POST", "chat/completions", json=self.payload(request)) as resp:
            if resp.status_code != 200:
                return self._http_error(resp, (await resp.aread()).decode("utf-8", "replace"), t0)
            async for line in resp.aiter_lines():
                # Read to the end of the body (it ends right after [DONE]); nothing after [DONE] counts. Leaving the
                # lines part-way would have the event loop finalize httpx's nested async generators, one task each:
                # ~0.2 ms per request, ~15% of the client's CPU at concurrency 32 (benchmarks/client_throughput.py).
                if done or not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    continue
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    return Generation(error=f"malformed stream chunk: {self._redact(data)[:200]!r}",
                                      error_kind="bad_response",
                                      latency_s=self.clock() - t0)
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk:
                    return Generation(error=f"server error in stream: {_error_message(self._redact(data))}",
                                      error_kind="stream_error", latency_s=self.clock() - t0)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        times.append(self.clock() - t0)
                        parts.append(delta["content"])
                    if delta.get("refusal"):
                        refusal.append(delta["refusal"])
                    if choice.get("finish_reason"):
                        finished = True
        latency = self.clock() - t0
        gen = Generation(
            latency_s=latency,
            ttft_s=times[0] if times else None,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            token_times=times,
        )
        if not (done or finished):
            gen.text = "".join(parts)
            gen.error, gen.error_kind = "stream ended before the answer was complete", "truncated"
            return gen
        return self._finish(gen, "".join(parts), "".join(refusal))


def make_openai_provider(spec: OpenAISpec) -> Provider:
    """One server, or with ``base_urls`` one provider per replica, requests round-robin."""
    if spec.base_urls:
        return ReplicaProvider(spec, OpenAICompatProvider)
    return OpenAICompatProvider(spec)


register_provider(OpenAISpec, make_openai_provider)
