"""In-process fake OpenAI-compatible HTTP server for the test suite (stdlib only).

The server speaks enough of the OpenAI / vLLM HTTP protocol to exercise client code end to end:

* ``GET  /v1/models``            -- OpenAI list format, one entry per configured model.
* ``GET  /health``               -- ``200`` with an empty body (vLLM readiness probe).
* ``GET  /metrics``              -- a tiny Prometheus text exposition with vLLM gauge names.
* ``POST /v1/chat/completions``  -- non-streaming ``chat.completion`` objects and streaming
  ``chat.completion.chunk`` server-sent events (``stream: true``).
* ``POST /v1/completions``       -- legacy completions with ``echo`` / ``logprobs`` / ``max_tokens``,
  returning deterministic per-token log-probabilities (for perplexity-over-endpoint code).

What happens to each generation request (chat or completions) is decided by a :class:`Behavior`: taken
from ``behavior_fn(index, body)`` when given, else from the ``script`` queue (consumed in order, one per
generation request), else the default ``Behavior()`` (a normal answer).  Failure modes cover HTTP errors
with ``Retry-After``, stalled streams, malformed JSON / SSE, truncated streams, connections closed without
a response, empty answers and refusals.

Tokenisation is deliberately simple and deterministic: a "token" is a whitespace-delimited word together
with the whitespace that precedes it (regex ``\\s*\\S+``; trailing whitespace is glued to the last token).
Concatenating the tokens therefore reproduces the text exactly, so streamed deltas always re-assemble into
the same string the non-streaming endpoint returns.  ``completion_tokens`` is the number of such tokens.

Typical use::

    with FakeOpenAIServer(ttft_s=0.05, script=[Behavior("status", status=429, retry_after=1)]) as srv:
        client = openai_like_client(base_url=srv.url)
        ...
        assert srv.request_count == 2

It can also run as a separate process (for launcher / health-polling tests)::

    python tests/fakeserver.py --port 8123 [--startup-delay S] [--crash-on-start] [--ttft S] [--token-delay S]
                               [--text ANSWER]

which serves until SIGTERM / SIGINT (exit status 0).  See :func:`main`.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

__all__ = [
    "DEFAULT_REFUSAL",
    "DEFAULT_TEXT",
    "IMAGE_TOKENS",
    "Behavior",
    "BehaviorKind",
    "FakeOpenAIServer",
    "default_logprob",
    "main",
    "tokenize",
]

DEFAULT_TEXT = "Здравствуйте! Помогите, пожалуйста, разобраться с заказом."
"""Answer used when neither ``Behavior.text`` nor a ``responder`` provides one."""

DEFAULT_REFUSAL = "I can't help with that."
"""``message.refusal`` / ``delta.refusal`` text for ``Behavior(kind="refusal")``."""

IMAGE_TOKENS = 64
"""Prompt tokens charged per image part (``image_url`` / ``input_image``) in ``usage.prompt_tokens``."""

DEFAULT_COMPLETIONS_MAX_TOKENS = 16
"""``max_tokens`` default of ``/v1/completions`` (as in the OpenAI API)."""

BehaviorKind = Literal["ok", "status", "stall", "malformed", "truncated", "close", "empty", "refusal"]
_KINDS: frozenset[str] = frozenset(("ok", "status", "stall", "malformed", "truncated", "close", "empty", "refusal"))

_TOKEN_RE = re.compile(r"\s*\S+|\s+")

_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

_DEFAULT_METRICS = (
    "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n"
    "# TYPE vllm:gpu_cache_usage_perc gauge\n"
    "vllm:gpu_cache_usage_perc 0.25\n"
    "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running 1\n"
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    "vllm:num_requests_waiting 0\n"
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into fake tokens: each word with its leading whitespace.

    ``"".join(tokenize(t)) == t`` always holds; trailing whitespace is appended to the last token and a
    whitespace-only text yields a single token (an empty text yields none).
    """
    tokens: list[str] = _TOKEN_RE.findall(text)
    if len(tokens) >= 2 and tokens[-1].isspace():
        tail = tokens.pop()
        tokens[-1] += tail
    return tokens


def default_logprob(token: str, position: int) -> float:
    """Default deterministic log-probability of ``token``: ``-len(token.strip()) / 4``.

    ``position`` (the token's index in the returned sequence) is ignored; custom ``logprob_fn`` callables
    passed to :class:`FakeOpenAIServer` receive the same two arguments.
    """
    del position
    return -len(token.strip()) / 4


@dataclass
class Behavior:
    """What the server does for one generation request (chat or completions).

    Kinds:

    * ``"ok"``        -- a normal answer (``text`` overrides the content).
    * ``"status"``    -- HTTP ``status`` with an OpenAI error body ``{"error": {"message", "type", "code"}}``
      (``text`` overrides the message); ``retry_after`` adds a ``Retry-After`` header (seconds, ``%g``).
      A ``status`` left at 200 becomes 500.  Streaming requests get the same JSON error, not SSE.
    * ``"stall"``     -- streaming: send headers, the role chunk and ``stall_after_chunks`` content chunks,
      then send nothing more, keeping the socket open, until ``stall_s`` passes or the server stops; then
      the connection is closed.  Non-streaming: no response at all for that long, then close.
    * ``"malformed"`` -- ``200`` with a body that is not valid JSON (non-streaming) or, streaming, a
      ``data: {not json`` event after the role chunk (the stream then ends normally with ``[DONE]``).
    * ``"truncated"`` -- streaming: the role chunk and about half the content chunks, then the connection
      is closed: no ``finish_reason`` chunk and no ``[DONE]``.  By default the response uses chunked
      encoding and the HTTP body is left incomplete (httpx raises ``RemoteProtocolError`` while reading,
      like a crashed vLLM); with ``truncate_clean`` the HTTP body ends properly (EOF on ``"close"``
      framing, terminating chunk on ``"chunked"``), only the SSE stream is incomplete.
      Non-streaming: a ``Content-Length`` larger than the bytes sent, then close.
    * ``"close"``     -- the request is read, then the socket is closed without any response.
    * ``"empty"``     -- a normal answer whose content is ``""``.
    * ``"refusal"``   -- content ``""`` with ``message.refusal`` (``delta.refusal`` when streaming) set to
      ``text`` or :data:`DEFAULT_REFUSAL`, ``finish_reason`` ``"stop"``.

    ``ttft_s`` / ``token_delay_s``, when not ``None``, override the server-wide timings for this request.
    """

    kind: BehaviorKind = "ok"
    status: int = 200
    retry_after: float | None = None
    text: str | None = None
    stall_after_chunks: int = 1
    stall_s: float = 30.0
    truncate_clean: bool = False
    ttft_s: float | None = None
    token_delay_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown behavior kind {self.kind!r}; expected one of {sorted(_KINDS)}")
        if self.kind == "status" and self.status == 200:
            self.status = 500


class _Aborted(Exception):
    """Raised inside a handler when the server is stopping or the client went away."""


class _HTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` tuned for many short keep-alive connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about client disconnects; print other errors as usual."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, _Aborted, ValueError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Request handler; all state lives on ``self.server.fake``."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    # Buffered writes: everything produced without a pause in between (headers, SSE events, body) goes
    # out in one send(); ``_flush`` is called before every wait and ``handle_one_request`` flushes at the
    # end of each request.  Far fewer segments means far less work for the client under test.
    wbufsize = 64 * 1024
    server: _HTTPServer

    # -- plumbing ---------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            sys.stderr.write(f"fake server: {self.address_string()} {format % args}\n")

    _headers_sent = False

    def end_headers(self) -> None:
        self._headers_sent = True
        super().end_headers()

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._send_bytes(status, body, headers=headers)

    def _send_error_json(
        self, status: int, message: str, headers: dict[str, str] | None = None, err_type: str | None = None
    ) -> None:
        etype = err_type or _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error")
        self._send_json(status, {"error": {"message": message, "type": etype, "code": status}}, headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _authorized(self) -> bool:
        key = self.server.fake.api_key
        if key is None or self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._send_error_json(401, "Incorrect API key provided.")
        return False

    def handle_expect_100(self) -> bool:
        ok = super().handle_expect_100()
        self._flush()
        return ok

    def _flush(self) -> None:
        self.wfile.flush()

    def _wait(self, seconds: float) -> None:
        """Send what is buffered, then sleep ``seconds`` unless the server stops first (then abort)."""
        if seconds > 0:
            self._flush()
            if self.server.fake._stop_event.wait(seconds):
                raise _Aborted

    def _stall(self, seconds: float) -> None:
        """Send what is buffered, hang for ``seconds`` (or until the server stops), then drop the socket."""
        self._flush()
        self.server.fake._stop_event.wait(seconds)
        self._abort_connection()

    def _abort_connection(self) -> None:
        """Send what is buffered, then shut the socket down (no further response on this connection)."""
        self.close_connection = True
        with contextlib.suppress(OSError, ValueError):
            self._flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- SSE framing ------------------------------------------------------------------------------
    def _start_sse(self, behavior: Behavior) -> None:
        """Send the SSE response headers.

        Framing is the server's ``sse_framing``, except that a ``"truncated"`` behaviour without
        ``truncate_clean`` always uses chunked encoding, so that the cut is visible at the HTTP level.
        """
        abrupt = behavior.kind == "truncated" and not behavior.truncate_clean
        self._sse_chunked = abrupt or self.server.fake.sse_framing == "chunked"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if self._sse_chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def _sse_raw(self, data: bytes) -> None:
        if self._sse_chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.wfile.write(data)

    def _sse(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self._sse_raw(f"data: {text}\n\n".encode())

    def _end_sse(self) -> None:
        if self._sse_chunked:
            self.wfile.write(b"0\r\n\r\n")

    # -- routing ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        fake = self.server.fake
        if path == "/health":
            self._send_bytes(200, b"", content_type="text/plain")
        elif path == "/metrics":
            self._send_bytes(200, fake.metrics_text.encode(), content_type="text/plain; version=0.0.4")
        elif path == "/v1/models":
            if self._authorized():
                self._send_json(200, fake._models_payload())
        else:
            self._send_error_json(404, f"Not found: {self.path}")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        self._headers_sent = False
        try:
            raw = self._read_body()
            if path not in ("/v1/chat/completions", "/v1/completions"):
                self._send_error_json(404, f"Not found: {self.path}")
                return
            if not self._authorized():
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._send_error_json(400, "Request body is not valid JSON.")
                return
            if not isinstance(body, dict):
                self._send_error_json(400, "Request body must be a JSON object.")
                return
            fake = self.server.fake
            index = fake._record(path, body, self.headers)
            behavior = fake._behavior_for(index, body)
            if path == "/v1/chat/completions":
                self._chat(index, body, behavior)
            else:
                self._completions(index, body, behavior)
        except (_Aborted, OSError):
            self._abort_connection()
        except Exception as exc:  # a bug in a responder / behavior_fn / logprob_fn: report it loudly
            traceback.print_exc()
            if self._headers_sent:
                self._abort_connection()
            else:
                self._send_error_json(500, f"fake server error: {exc!r}")

    # -- shared behaviour handling ----------------------------------------------------------------
    def _pre_behavior(self, behavior: Behavior, stream: bool) -> bool:
        """Handle the kinds that do not produce a normal answer; return True when the request is done."""
        if behavior.kind == "status":
            headers: dict[str, str] = {}
            if behavior.retry_after is not None:
                headers["Retry-After"] = f"{behavior.retry_after:g}"
            message = behavior.text or f"Simulated error (HTTP {behavior.status})."
            self._send_error_json(behavior.status, message, headers)
            return True
        if behavior.kind == "close":
            self._abort_connection()
            return True
        if behavior.kind == "stall" and not stream:
            self._stall(behavior.stall_s)
            return True
        if behavior.kind == "malformed" and not stream:
            self._send_bytes(200, b'{"id": "chatcmpl-fake", "object": "chat.completion", "choices": [{"mess')
            return True
        return False

    def _timings(self, behavior: Behavior) -> tuple[float, float]:
        fake = self.server.fake
        ttft = fake.ttft_s if behavior.ttft_s is None else behavior.ttft_s
        delay = fake.token_delay_s if behavior.token_delay_s is None else behavior.token_delay_s
        return ttft, delay

    def _send_truncated_json(self, obj: Any) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: max(1, len(body) // 2)])
        self._abort_connection()

    def _stream_content(
        self,
        chunks: list[str],
        behavior: Behavior,
        make_chunk: Callable[[str, int], Any],
        first_wait: float,
    ) -> bool:
        """Send content chunks (``first_wait`` before the first, ``token_delay_s`` between the others).

        Returns False when the behaviour cut the stream short (stall / truncated); the connection is
        then already closed.
        """
        delay = self._timings(behavior)[1]
        limit = len(chunks)
        if behavior.kind == "stall":
            limit = min(limit, max(0, behavior.stall_after_chunks))
        elif behavior.kind == "truncated":
            limit = min(limit, max(1, len(chunks) // 2)) if chunks else 0
        for i in range(limit):
            self._wait(first_wait if i == 0 else delay)
            self._sse(make_chunk(chunks[i], i))
        if behavior.kind == "stall":
            self._stall(behavior.stall_s)
            return False
        if behavior.kind == "truncated":
            if behavior.truncate_clean:
                self._end_sse()
            self._abort_connection()
            return False
        return True

    # -- /v1/chat/completions ---------------------------------------------------------------------
    def _chat(self, index: int, body: dict[str, Any], behavior: Behavior) -> None:
        fake = self.server.fake
        stream = bool(body.get("stream"))
        if self._pre_behavior(behavior, stream):
            return
        refusal: str | None = None
        if behavior.kind == "refusal":
            refusal, text = behavior.text or DEFAULT_REFUSAL, ""
        elif behavior.kind == "empty":
            text = ""
        else:
            text = fake._content(body, behavior)
        tokens = tokenize(text)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and 0 <= max_tokens < len(tokens):
            tokens, finish = tokens[:max_tokens], "length"
            text = "".join(tokens)
        want_logprobs = bool(body.get("logprobs"))
        top_k = int(body.get("top_logprobs") or 0)
        model = str(body.get("model") or fake.models[0])
        cid = f"chatcmpl-fake-{index}"
        created = int(time.time())
        usage = {
            "prompt_tokens": fake._chat_prompt_tokens(body),
            "completion_tokens": len(tokens),
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]

        if not stream:
            ttft, delay = self._timings(behavior)
            self._wait(ttft + delay * max(0, len(tokens) - 1))
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": refusal}
            choice: dict[str, Any] = {
                "index": 0,
                "message": message,
                "logprobs": {"content": fake._chat_logprobs(tokens, 0, top_k)} if want_logprobs else None,
                "finish_reason": finish,
            }
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [choice],
            }
            if fake.usage:
                obj["usage"] = usage
            if behavior.kind == "truncated":
                self._send_truncated_json(obj)
            else:
                self._send_json(200, obj)
            return

        size = fake.chunk_size
        groups = [tokens[i : i + size] for i in range(0, len(tokens), size)]
        positions = [i * size for i in range(len(groups))]

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, lp: Any = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": finish_reason}],
            }

        def content_chunk(piece: str, i: int) -> dict[str, Any]:
            lp = None
            if want_logprobs:
                lp = {"content": fake._chat_logprobs(groups[i], positions[i], top_k)}
            return chunk({"content": piece}, lp=lp)

        # Headers go out at once; the role chunk comes with the first token, after ttft_s (as in vLLM).
        self._start_sse(behavior)
        self._wait(self._timings(behavior)[0])
        self._sse(chunk({"role": "assistant", "content": ""}))
        if behavior.kind == "malformed":
            self._sse("{not json")
        elif refusal is not None:
            self._sse(chunk({"refusal": refusal}))
        elif not self._stream_content(["".join(g) for g in groups], behavior, content_chunk, 0.0):
            return
        self._sse(chunk({}, finish_reason=finish))
        opts = body.get("stream_options")
        if fake.usage and isinstance(opts, dict) and opts.get("include_usage"):
            self._sse({**chunk({}), "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_sse()

    # -- /v1/completions --------------------------------------------------------------------------
    def _completions(self, index: int, body: dict[str, Any], behavior: Behavior) -> None:
        fake = self.server.fake
        stream = bool(body.get("stream"))
        if self._pre_behavior(behavior, stream):
            return
        prompts = _normalise_prompt(body.get("prompt", ""))
        echo = bool(body.get("echo"))
        n_logprobs = body.get("logprobs")
        want_logprobs = n_logprobs is not None and n_logprobs is not False
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 0:
            max_tokens = DEFAULT_COMPLETIONS_MAX_TOKENS
        gen_text = "" if behavior.kind in ("empty", "refusal") else fake._content(body, behavior)
        gen_tokens = tokenize(gen_text)
        finish = "stop"
        if len(gen_tokens) > max_tokens:
            gen_tokens, finish = gen_tokens[:max_tokens], "length"
        model = str(body.get("model") or fake.models[0])
        cid = f"cmpl-fake-{index}"
        created = int(time.time())
        prompt_tokens = sum(len(tokenize(p)) for p in prompts)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(gen_tokens) * len(prompts),
            "total_tokens": prompt_tokens + len(gen_tokens) * len(prompts),
        }

        if stream:
            self._completions_stream(cid, created, model, body, behavior, prompts, gen_tokens, finish, usage)
            return

        ttft, delay = self._timings(behavior)
        self._wait(ttft + delay * max(0, len(gen_tokens) - 1))
        choices = []
        for i, prompt in enumerate(prompts):
            p_tokens = tokenize(prompt) if echo else []
            all_tokens = p_tokens + gen_tokens
            choice: dict[str, Any] = {
                "index": i,
                "text": "".join(all_tokens) if echo else "".join(gen_tokens),
                "logprobs": None,
                "finish_reason": finish,
            }
            if want_logprobs:
                choice["logprobs"] = fake._completion_logprobs(all_tokens, echo, int(n_logprobs or 0))
            choices.append(choice)
        obj: dict[str, Any] = {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if fake.usage:
            obj["usage"] = usage
        if behavior.kind == "truncated":
            self._send_truncated_json(obj)
        else:
            self._send_json(200, obj)

    def _completions_stream(
        self,
        cid: str,
        created: int,
        model: str,
        body: dict[str, Any],
        behavior: Behavior,
        prompts: list[str],
        gen_tokens: list[str],
        finish: str,
        usage: dict[str, int],
    ) -> None:
        fake = self.server.fake
        size = fake.chunk_size
        pieces = ["".join(gen_tokens[i : i + size]) for i in range(0, len(gen_tokens), size)]

        def chunk(text: str, choice_index: int = 0, finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"index": choice_index, "text": text, "logprobs": None, "finish_reason": finish_reason}],
            }

        ttft = self._timings(behavior)[0]
        self._start_sse(behavior)
        if behavior.kind == "malformed":
            self._sse("{not json")
        elif not self._stream_content(pieces, behavior, lambda piece, _i: chunk(piece), ttft):
            return
        elif not pieces:
            self._wait(ttft)
        for i in range(len(prompts)):
            self._sse(chunk("", i, finish))
        opts = body.get("stream_options")
        if fake.usage and isinstance(opts, dict) and opts.get("include_usage"):
            self._sse({**chunk(""), "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_sse()


def _normalise_prompt(prompt: Any) -> list[str]:
    """``prompt`` as a list of texts: a string, a list of strings, or token ids (joined with spaces)."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list):
        if not prompt:
            return [""]
        if all(isinstance(p, int) for p in prompt):
            return [" ".join(str(p) for p in prompt)]
        return [p if isinstance(p, str) else " ".join(str(t) for t in p) for p in prompt]
    return [str(prompt)]


class FakeOpenAIServer:
    """A local OpenAI-compatible HTTP server running in a daemon thread.

    Args:
        responder: ``responder(body) -> str`` computes the answer from the parsed request JSON (used when
            the request's :class:`Behavior` has no ``text``); default answer is :data:`DEFAULT_TEXT`.
        models: model ids served by ``GET /v1/models``; the first is echoed when a request has no model.
        ttft_s: delay before the first content chunk (streaming) -- also part of the total delay of a
            non-streaming answer, which is ``ttft_s + token_delay_s * (chunks - 1)``.
        token_delay_s: delay between consecutive content chunks.
        chunk_size: tokens per streamed content chunk (see :func:`tokenize`).
        script: behaviours consumed in order, one per generation request (chat *and* completions);
            once exhausted every request gets ``Behavior()``.  :meth:`enqueue` appends more.
        behavior_fn: ``behavior_fn(index, body) -> Behavior`` decides per request instead of ``script``;
            ``index`` is the 0-based position of the request in :attr:`requests`.
        startup_delay_s: the port is bound at :meth:`start` (so :attr:`url` is known) but only accepts
            connections after this delay -- connecting earlier is refused.
        api_key: when set, ``/v1/*`` endpoints require ``Authorization: Bearer <api_key>`` (else 401).
        usage: include ``usage`` in answers (and the usage chunk when ``stream_options.include_usage``).
        logprob_fn: ``logprob_fn(token, position) -> float`` for ``/v1/completions`` logprobs and chat
            ``logprobs: true``; defaults to :func:`default_logprob` (``-len(token.strip()) / 4``).
        sse_framing: how streamed responses are delimited.  ``"close"`` (default): ``Connection: close``
            and the stream ends when the socket closes -- measured ~3x faster than ``"chunked"`` with
            httpx at concurrency 32, because httpcore's pool bookkeeping is quadratic in the number of
            idle keep-alive connections.  ``"chunked"``: chunked transfer encoding, the connection is
            kept alive after the stream.  Non-streaming responses always use ``Content-Length`` and
            keep-alive.
        metrics_text: body of ``GET /metrics`` (default: three vLLM gauges, no labels).
        host, port: where to bind; ``port=0`` picks a free port.
        verbose: log requests to stderr.

    Attributes:
        requests: parsed JSON bodies of every ``/v1/chat/completions`` and ``/v1/completions`` request.
        headers: their request headers, as dicts with lower-cased names.
        paths: their request paths.
    """

    def __init__(
        self,
        *,
        responder: Callable[[dict[str, Any]], str] | None = None,
        models: Sequence[str] = ("fake-vlm",),
        ttft_s: float = 0.0,
        token_delay_s: float = 0.0,
        chunk_size: int = 1,
        script: Sequence[Behavior] | None = None,
        behavior_fn: Callable[[int, dict[str, Any]], Behavior] | None = None,
        startup_delay_s: float = 0.0,
        api_key: str | None = None,
        usage: bool = True,
        logprob_fn: Callable[[str, int], float] | None = None,
        sse_framing: Literal["chunked", "close"] = "close",
        metrics_text: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if not models:
            raise ValueError("models must not be empty")
        if sse_framing not in ("chunked", "close"):
            raise ValueError("sse_framing must be 'chunked' or 'close'")
        self.responder = responder
        self.models: list[str] = list(models)
        self.ttft_s = ttft_s
        self.token_delay_s = token_delay_s
        self.chunk_size = chunk_size
        self.behavior_fn = behavior_fn
        self.startup_delay_s = startup_delay_s
        self.api_key = api_key
        self.usage = usage
        self.logprob_fn: Callable[[str, int], float] = logprob_fn or default_logprob
        self.sse_framing = sse_framing
        self.metrics_text = _DEFAULT_METRICS if metrics_text is None else metrics_text
        self.host = host
        self.port = port
        self.verbose = verbose

        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []

        self._script: collections.deque[Behavior] = collections.deque(script or ())
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._serving = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Bind the port and serve in a daemon thread; returns ``self``.

        Returns immediately: with ``startup_delay_s`` the port is bound but refuses connections until
        the delay passes (see :meth:`wait_ready`).  After :meth:`stop` the server can be started again;
        it then re-binds the same port.
        """
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._stop_event = threading.Event()
        self._ready = threading.Event()
        self._serving = False
        httpd = _HTTPServer((self.host, self.port), _Handler, bind_and_activate=False)
        httpd.fake = self
        try:
            httpd.server_bind()
        except OSError:
            httpd.server_close()
            raise
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=self._run, name=f"fakeserver-{self.port}", daemon=True)
        self._thread.start()
        if self.startup_delay_s <= 0:
            self._ready.wait(5.0)
        return self

    def _run(self) -> None:
        httpd = self._httpd
        assert httpd is not None
        if self.startup_delay_s > 0 and self._stop_event.wait(self.startup_delay_s):
            return
        with self._lock:
            if self._stop_event.is_set():
                return
            httpd.server_activate()
            self._serving = True
        self._ready.set()
        httpd.serve_forever(poll_interval=0.05)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the server accepts connections; return False on timeout."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, wake stalled / sleeping handlers, drop open connections and free the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stop_event.set()
        with self._lock:
            serving = self._serving
            self._serving = False
        if serving:
            httpd.shutdown()
        thread.join(timeout)
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd = None
        self._thread = None
        self._ready.clear()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- public helpers ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, e.g. ``http://127.0.0.1:PORT/v1`` (port known after start)."""
        return f"{self.root_url}/v1"

    @property
    def root_url(self) -> str:
        """Server root without ``/v1`` (where ``/health`` and ``/metrics`` live)."""
        if self.port == 0:
            raise RuntimeError("server not started yet: the port is unknown")
        return f"http://{self.host}:{self.port}"

    @property
    def request_count(self) -> int:
        """Number of generation requests received so far."""
        with self._lock:
            return len(self.requests)

    @property
    def running(self) -> bool:
        """True while the server accepts connections."""
        return self._ready.is_set()

    def enqueue(self, *behaviors: Behavior) -> None:
        """Append behaviours to the script."""
        with self._lock:
            self._script.extend(behaviors)

    def reset(self) -> None:
        """Forget recorded requests (the script and request numbering are kept)."""
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self.paths.clear()

    # -- internals used by the handler ------------------------------------------------------------
    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _record(self, path: str, body: dict[str, Any], headers: Any) -> int:
        hdrs = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append(body)
            self.headers.append(hdrs)
            self.paths.append(path)
            return len(self.requests) - 1

    def _behavior_for(self, index: int, body: dict[str, Any]) -> Behavior:
        if self.behavior_fn is not None:
            return self.behavior_fn(index, body)
        with self._lock:
            if self._script:
                return self._script.popleft()
        return Behavior()

    def _content(self, body: dict[str, Any], behavior: Behavior) -> str:
        if behavior.text is not None:
            return behavior.text
        if self.responder is not None:
            return str(self.responder(body))
        return DEFAULT_TEXT

    def _models_payload(self) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "fakeserver", "root": m}
                for m in self.models
            ],
        }

    @staticmethod
    def _chat_prompt_tokens(body: dict[str, Any]) -> int:
        """Tokens of all text parts of all messages plus :data:`IMAGE_TOKENS` per image part."""
        total = 0
        messages = body.get("messages")
        for msg in messages if isinstance(messages, list) else ():
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                total += len(tokenize(content))
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict):
                        continue
                    if part.get("type") in ("image_url", "input_image", "image"):
                        total += IMAGE_TOKENS
                    elif isinstance(part.get("text"), str):
                        total += len(tokenize(part["text"]))
        return total

    def _chat_logprobs(self, tokens: list[str], start: int, top_k: int) -> list[dict[str, Any]]:
        out = []
        for i, tok in enumerate(tokens):
            lp = self.logprob_fn(tok, start + i)
            entry = {"token": tok, "logprob": lp, "bytes": list(tok.encode("utf-8"))}
            out.append({**entry, "top_logprobs": [entry] if top_k > 0 else []})
        return out

    def _completion_logprobs(self, tokens: list[str], echo: bool, top_k: int) -> dict[str, Any]:
        """Legacy ``logprobs`` object; with ``echo`` the first (prompt) token's logprob is ``None``."""
        token_logprobs: list[float | None] = []
        offsets: list[int] = []
        pos = 0
        for i, tok in enumerate(tokens):
            token_logprobs.append(None if (echo and i == 0) else self.logprob_fn(tok, i))
            offsets.append(pos)
            pos += len(tok)
        top: list[dict[str, float] | None] = [
            None if lp is None else {tok: lp} for tok, lp in zip(tokens, token_logprobs, strict=True)
        ]
        return {
            "tokens": list(tokens),
            "token_logprobs": token_logprobs,
            "top_logprobs": top if top_k > 0 else None,
            "text_offset": offsets,
        }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake server as a process until SIGTERM / SIGINT (exit status 0).

    Prints ``fake server: listening on http://HOST:PORT/v1`` to stdout once connections are accepted.
    ``--startup-delay S`` keeps the port closed for S seconds first; ``--crash-on-start`` waits the same
    startup delay, then prints ``fake server: simulated crash on start`` to stderr and exits 1.
    """
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--crash-on-start", action="store_true")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--ttft", type=float, default=0.0)
    parser.add_argument("--chunk-size", type=int, default=1)
    parser.add_argument("--text", default=None, help="the answer to every request (default: DEFAULT_TEXT)")
    parser.add_argument("--model", action="append", dest="models", help="served model id (repeatable)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    if args.crash_on_start:
        if args.startup_delay > 0:
            stop.wait(args.startup_delay)
        print("fake server: simulated crash on start", file=sys.stderr, flush=True)
        return 1

    text = args.text
    server = FakeOpenAIServer(
        responder=None if text is None else lambda _body: text,
        models=args.models or ("fake-vlm",),
        ttft_s=args.ttft,
        token_delay_s=args.token_delay,
        chunk_size=args.chunk_size,
        startup_delay_s=args.startup_delay,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
    )
    server.start()
    try:
        while not stop.is_set():
            if server.wait_ready(0.1):
                print(f"fake server: listening on {server.url}", flush=True)
                break
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
