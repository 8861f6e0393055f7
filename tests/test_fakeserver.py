"""Tests of the fake OpenAI-compatible server used by the rest of the suite."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakeserver import DEFAULT_REFUSAL, DEFAULT_TEXT, Behavior, FakeOpenAIServer, tokenize

FAKESERVER_PY = Path(__file__).with_name("fakeserver.py")
CHAT_BODY: dict[str, Any] = {
    "model": "fake-vlm",
    "messages": [
        {"role": "system", "content": "Ты помощник."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Что на скриншоте?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ],
}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def chat(client: httpx.Client, srv: FakeOpenAIServer, **extra: Any) -> httpx.Response:
    return client.post(f"{srv.url}/chat/completions", json={**CHAT_BODY, **extra})


def stream_events(client: httpx.Client, srv: FakeOpenAIServer, **extra: Any) -> list[Any]:
    """POST a streaming chat request; return decoded ``data:`` payloads (``"[DONE]"`` kept as a string)."""
    events: list[Any] = []
    body = {**CHAT_BODY, "stream": True, **extra}
    with client.stream("POST", f"{srv.url}/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def content_of(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict) and e["choices"]
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def port_bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# -- basic endpoints ------------------------------------------------------------------------------


def test_url_health_metrics_and_models(server: FakeOpenAIServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    assert server.port != 0
    with httpx.Client() as client:
        health = client.get(f"{server.root_url}/health")
        assert health.status_code == 200
        assert health.content == b""

        models = client.get(f"{server.url}/models").json()
        assert models["object"] == "list"
        assert [m["id"] for m in models["data"]] == ["fake-vlm"]
        assert models["data"][0]["object"] == "model"

        metrics = client.get(f"{server.root_url}/metrics").text
        assert "vllm:gpu_cache_usage_perc 0.25" in metrics
        assert "vllm:num_requests_running 1" in metrics
        assert "vllm:num_requests_waiting 0" in metrics

        assert client.get(f"{server.url}/nope").status_code == 404
    assert server.request_count == 0


def test_custom_models_list() -> None:
    with FakeOpenAIServer(models=["a", "b"]) as srv:
        data = httpx.get(f"{srv.url}/models").json()["data"]
    assert [m["id"] for m in data] == ["a", "b"]


def test_non_streaming_content_and_usage(server: FakeOpenAIServer) -> None:
    with httpx.Client() as client:
        resp = chat(client, server)
    assert resp.status_code == 200
    obj = resp.json()
    assert obj["object"] == "chat.completion"
    assert obj["model"] == "fake-vlm"
    choice = obj["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == DEFAULT_TEXT
    assert choice["finish_reason"] == "stop"
    usage = obj["usage"]
    assert usage["completion_tokens"] == len(DEFAULT_TEXT.split())
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert server.request_count == 1
    assert server.requests[0]["messages"] == CHAT_BODY["messages"]
    assert server.headers[0]["content-type"] == "application/json"
    assert server.paths == ["/v1/chat/completions"]


def test_responder_and_usage_off() -> None:
    def responder(body: dict[str, Any]) -> str:
        return f"модель {body['model']}\nвторая строка"

    with FakeOpenAIServer(responder=responder, usage=False) as srv, httpx.Client() as client:
        obj = chat(client, srv, model="other").json()
        events = stream_events(client, srv, stream_options={"include_usage": True})
    assert obj["choices"][0]["message"]["content"] == "модель other\nвторая строка"
    assert "usage" not in obj
    assert content_of(events) == "модель fake-vlm\nвторая строка"
    assert not any(isinstance(e, dict) and "usage" in e for e in events)


def test_max_tokens_gives_length_finish(server: FakeOpenAIServer) -> None:
    with httpx.Client() as client:
        obj = chat(client, server, max_tokens=2).json()
        events = stream_events(client, server, max_completion_tokens=2)
    expected = "".join(tokenize(DEFAULT_TEXT)[:2])
    assert obj["choices"][0]["message"]["content"] == expected
    assert obj["choices"][0]["finish_reason"] == "length"
    assert content_of(events) == expected
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_streaming_reassembles_and_ends_with_done_and_usage() -> None:
    text = "раз два  три\nчетыре пять"
    with FakeOpenAIServer(chunk_size=2) as srv, httpx.Client() as client:
        events = stream_events(client, srv, stream_options={"include_usage": True})
        expected = chat(client, srv, stream=False).json()["choices"][0]["message"]["content"]
        srv.enqueue(Behavior(text=text))
        custom = stream_events(client, srv)
    assert content_of(events) == expected == DEFAULT_TEXT
    assert events[0]["object"] == "chat.completion.chunk"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    content_chunks = [e for e in events[1:-3]]
    assert len(content_chunks) == (len(tokenize(DEFAULT_TEXT)) + 1) // 2
    assert all(e["choices"][0]["finish_reason"] is None for e in content_chunks)
    final, usage_chunk, done = events[-3:]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == len(tokenize(DEFAULT_TEXT))
    assert done == "[DONE]"
    # without stream_options.include_usage there is no usage chunk; whitespace survives chunking
    assert content_of(custom) == text
    assert custom[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and "usage" in e for e in custom)


def test_streaming_with_chunked_framing_keeps_connection_alive() -> None:
    with FakeOpenAIServer(sse_framing="chunked") as srv, httpx.Client() as client:
        for _ in range(3):
            events = stream_events(client, srv)
            assert content_of(events) == DEFAULT_TEXT
            assert events[-1] == "[DONE]"
        assert chat(client, srv).status_code == 200
    assert srv.request_count == 4


def test_timing_options_still_deliver_everything() -> None:
    with FakeOpenAIServer(ttft_s=0.05, token_delay_s=0.01) as srv, httpx.Client() as client:
        assert content_of(stream_events(client, srv)) == DEFAULT_TEXT
        assert chat(client, srv).json()["choices"][0]["message"]["content"] == DEFAULT_TEXT


def test_chat_logprobs() -> None:
    with FakeOpenAIServer() as srv, httpx.Client() as client:
        obj = chat(client, srv, logprobs=True, top_logprobs=1).json()
    entries = obj["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in entries] == tokenize(DEFAULT_TEXT)
    assert all(e["logprob"] <= 0 and len(e["top_logprobs"]) == 1 for e in entries)


# -- failure behaviours ---------------------------------------------------------------------------


def test_429_with_retry_after(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("status", status=429, retry_after=2))
    with httpx.Client() as client:
        resp = chat(client, server)
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "2"
        err = resp.json()["error"]
        assert err["type"] == "rate_limit_error"
        assert err["message"]
        # the script is exhausted: the next request succeeds
        assert chat(client, server).status_code == 200


def test_scripted_sequence() -> None:
    script = [
        Behavior("status", status=500),
        Behavior("status", status=503, retry_after=0.5, text="overloaded"),
        Behavior("empty"),
        Behavior(text="третий"),
        Behavior("refusal"),
    ]
    with FakeOpenAIServer(script=script) as srv, httpx.Client() as client:
        r500 = chat(client, srv)
        r503 = chat(client, srv)
        empty = chat(client, srv).json()
        third = chat(client, srv).json()
        refusal = chat(client, srv).json()
        after = chat(client, srv).json()
    assert r500.status_code == 500
    assert r500.json()["error"]["type"] == "server_error"
    assert "retry-after" not in r500.headers
    assert r503.status_code == 503
    assert r503.headers["retry-after"] == "0.5"
    assert r503.json()["error"]["message"] == "overloaded"
    assert empty["choices"][0]["message"]["content"] == ""
    assert empty["usage"]["completion_tokens"] == 0
    assert third["choices"][0]["message"]["content"] == "третий"
    assert refusal["choices"][0]["message"]["content"] == ""
    assert refusal["choices"][0]["message"]["refusal"] == DEFAULT_REFUSAL
    assert refusal["choices"][0]["finish_reason"] == "stop"
    assert after["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert srv.request_count == 6


def test_behavior_fn_gets_index_and_body() -> None:
    seen: list[int] = []

    def decide(index: int, body: dict[str, Any]) -> Behavior:
        seen.append(index)
        return Behavior(text=f"#{index} {body['model']}")

    with FakeOpenAIServer(behavior_fn=decide) as srv, httpx.Client() as client:
        first = chat(client, srv).json()["choices"][0]["message"]["content"]
        second = content_of(stream_events(client, srv))
    assert (first, second, seen) == ("#0 fake-vlm", "#1 fake-vlm", [0, 1])


def test_streaming_refusal_and_empty() -> None:
    with FakeOpenAIServer(script=[Behavior("refusal"), Behavior("empty")]) as srv, httpx.Client() as client:
        refusal = stream_events(client, srv)
        empty = stream_events(client, srv)
    assert content_of(refusal) == ""
    assert any(e["choices"][0]["delta"].get("refusal") == DEFAULT_REFUSAL for e in refusal[:-1])
    assert refusal[-2]["choices"][0]["finish_reason"] == "stop"
    assert content_of(empty) == ""
    assert empty[-1] == "[DONE]"


def test_stall_times_out_and_stop_wakes_the_stalled_handler() -> None:
    before = set(threading.enumerate())
    srv = FakeOpenAIServer(script=[Behavior("stall", stall_after_chunks=1, stall_s=3600)]).start()
    received: list[str] = []
    try:
        timeout = httpx.Timeout(5.0, read=0.5)
        with httpx.Client(timeout=timeout) as client, pytest.raises(httpx.ReadTimeout):
            body = {**CHAT_BODY, "stream": True}
            with client.stream("POST", f"{srv.url}/chat/completions", json=body) as resp:
                for line in resp.iter_lines():
                    if line:
                        received.append(line)
        handlers = [t for t in set(threading.enumerate()) - before if t.name.endswith("(process_request_thread)")]
        assert len(handlers) == 1 and handlers[0].is_alive()  # the stalled request's handler, sleeping its hour
    finally:
        srv.stop()
    handlers[0].join(timeout=30)  # stop() woke it: it does not sleep out the hour
    assert not handlers[0].is_alive()
    assert len(received) == 2  # role chunk + one content chunk
    assert port_refuses(srv.port)


def test_non_streaming_stall_times_out() -> None:
    with FakeOpenAIServer(script=[Behavior("stall", stall_s=30)]) as srv:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.url}/chat/completions", json=CHAT_BODY, timeout=httpx.Timeout(5.0, read=0.3))
        # the server still answers other requests while one handler is stalled
        assert httpx.post(f"{srv.url}/chat/completions", json=CHAT_BODY).status_code == 200


def test_malformed(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("malformed"), Behavior("malformed"))
    with httpx.Client() as client:
        resp = chat(client, server)
        assert resp.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            resp.json()
        with client.stream("POST", f"{server.url}/chat/completions", json={**CHAT_BODY, "stream": True}) as r:
            lines = [line for line in r.iter_lines() if line]
    assert "data: {not json" in lines
    assert lines[-1] == "data: [DONE]"


def test_truncated_stream_is_cut_at_http_level(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("truncated"))
    lines: list[str] = []
    body = {**CHAT_BODY, "stream": True}
    with (
        httpx.Client() as client,
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", f"{server.url}/chat/completions", json=body) as r,
    ):
        for line in r.iter_lines():
            if line:
                lines.append(line)
    assert lines, "some chunks arrive before the cut"
    assert "data: [DONE]" not in lines
    assert all('"finish_reason": null' in line for line in lines)


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_truncated_clean_stream_lacks_done(framing: str) -> None:
    with (
        FakeOpenAIServer(sse_framing=framing, script=[Behavior("truncated", truncate_clean=True)]) as srv,  # type: ignore[arg-type]
        httpx.Client() as client,
    ):
        events = stream_events(client, srv)
    assert events
    assert "[DONE]" not in events
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert 0 < len(content_of(events)) < len(DEFAULT_TEXT)


def test_truncated_non_streaming(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("truncated"))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{server.url}/chat/completions", json=CHAT_BODY)


def test_close_without_response(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("close"))
    with httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            chat(client, server)
        assert chat(client, server).status_code == 200
    assert server.request_count == 2


def test_api_key() -> None:
    with FakeOpenAIServer(api_key="sekret") as srv, httpx.Client() as client:
        assert chat(client, srv).status_code == 401
        assert client.get(f"{srv.url}/models").status_code == 401
        assert client.get(f"{srv.root_url}/health").status_code == 200
        ok = client.post(f"{srv.url}/chat/completions", json=CHAT_BODY, headers={"Authorization": "Bearer sekret"})
        assert ok.status_code == 200
    assert srv.request_count == 1
    assert srv.headers[0]["authorization"] == "Bearer sekret"


def test_responder_error_is_500(capsys: pytest.CaptureFixture[str]) -> None:
    def responder(body: dict[str, Any]) -> str:
        raise RuntimeError("boom")

    with FakeOpenAIServer(responder=responder) as srv, httpx.Client() as client:
        resp = chat(client, srv)
        assert resp.status_code == 500
        assert "boom" in resp.json()["error"]["message"]
        srv.responder = None
        assert chat(client, srv).status_code == 200
    assert "RuntimeError: boom" in capsys.readouterr().err


def test_bad_json_is_400(server: FakeOpenAIServer) -> None:
    resp = httpx.post(f"{server.url}/chat/completions", content=b"{nope", headers={"Content-Type": "x"})
    assert resp.status_code == 400
    assert server.request_count == 0


# -- /v1/completions --------------------------------------------------------------------------------


def test_completions_echo_logprobs_shape(server: FakeOpenAIServer) -> None:
    prompt = "Привет, как  дела?"
    body = {"model": "fake-vlm", "prompt": prompt, "echo": True, "logprobs": 1, "max_tokens": 0}
    obj = httpx.post(f"{server.url}/completions", json=body).json()
    assert obj["object"] == "text_completion"
    choice = obj["choices"][0]
    assert choice["text"] == prompt
    lp = choice["logprobs"]
    tokens = tokenize(prompt)
    assert lp["tokens"] == tokens == ["Привет,", " как", "  дела?"]
    assert lp["token_logprobs"][0] is None
    assert lp["token_logprobs"][1:] == [-len(t.strip()) / 4 for t in tokens[1:]]
    assert lp["text_offset"] == [0, 7, 11]
    assert all(prompt[off:].startswith(tok) for off, tok in zip(lp["text_offset"], tokens, strict=True))
    assert lp["top_logprobs"][0] is None
    assert lp["top_logprobs"][1] == {" как": -0.75}
    assert obj["usage"]["prompt_tokens"] == 3
    assert obj["usage"]["completion_tokens"] == 0
    assert server.paths == ["/v1/completions"]


def test_completions_generation_and_custom_logprob_fn() -> None:
    def lp_fn(token: str, position: int) -> float:
        return -float(position + 1)

    with FakeOpenAIServer(logprob_fn=lp_fn, responder=lambda body: "a b c d") as srv:
        gen = httpx.post(f"{srv.url}/completions", json={"prompt": "x y", "max_tokens": 2, "logprobs": 0}).json()
        echo = httpx.post(
            f"{srv.url}/completions", json={"prompt": "x y", "max_tokens": 5, "logprobs": 0, "echo": True}
        ).json()
        plain = httpx.post(f"{srv.url}/completions", json={"prompt": ["p", "q"]}).json()
    assert gen["choices"][0]["text"] == "a b"
    assert gen["choices"][0]["finish_reason"] == "length"
    assert gen["choices"][0]["logprobs"]["token_logprobs"] == [-1.0, -2.0]
    assert gen["choices"][0]["logprobs"]["top_logprobs"] is None
    assert echo["choices"][0]["text"] == "x ya b c d"
    assert echo["choices"][0]["finish_reason"] == "stop"
    assert echo["choices"][0]["logprobs"]["token_logprobs"] == [None, -2.0, -3.0, -4.0, -5.0, -6.0]
    assert [c["index"] for c in plain["choices"]] == [0, 1]
    assert plain["choices"][0]["logprobs"] is None


def test_completions_stream(server: FakeOpenAIServer) -> None:
    body = {"prompt": "x", "stream": True, "max_tokens": 100}
    with httpx.Client() as client, client.stream("POST", f"{server.url}/completions", json=body) as r:
        datas = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == DEFAULT_TEXT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_completions_status_behavior(server: FakeOpenAIServer) -> None:
    server.enqueue(Behavior("status", status=503, retry_after=1))
    resp = httpx.post(f"{server.url}/completions", json={"prompt": "x"})
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "1"


# -- lifecycle --------------------------------------------------------------------------------------


def test_startup_delay_in_process() -> None:
    srv = FakeOpenAIServer(startup_delay_s=0.3).start()
    try:
        assert not srv.running
        assert port_refuses(srv.port)
        assert srv.wait_ready(5)
        assert httpx.get(f"{srv.root_url}/health").status_code == 200
    finally:
        srv.stop()


def test_stop_frees_port_and_restart_reuses_it() -> None:
    srv = FakeOpenAIServer()
    with srv, httpx.Client() as client:
        assert chat(client, srv).status_code == 200  # leaves a keep-alive connection open
        port = srv.port
    assert port_refuses(port)
    assert port_bindable(port)
    with srv:
        assert srv.port == port
        assert httpx.get(f"{srv.root_url}/health").status_code == 200


async def test_async_concurrent_streams() -> None:
    with FakeOpenAIServer(chunk_size=3) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:

            async def one(i: int) -> str:
                parts: list[str] = []
                body = {**CHAT_BODY, "stream": True, "user": str(i)}
                async with client.stream("POST", "/chat/completions", json=body) as resp:
                    async for line in resp.aiter_lines():
                        if line.startswith("data: {"):
                            parts.append(json.loads(line[6:])["choices"][0]["delta"].get("content") or "")
                return "".join(parts)

            results = await asyncio.gather(*(one(i) for i in range(40)))
    assert results == [DEFAULT_TEXT] * 40
    assert sorted(int(b["user"]) for b in srv.requests) == list(range(40))


# -- subprocess mode --------------------------------------------------------------------------------


def test_subprocess_mode_health_then_sigterm() -> None:
    port = free_port()
    cmd = [sys.executable, str(FAKESERVER_PY), "--port", str(port), "--startup-delay", "0.3"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + 15
            ready = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        ready = True
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            assert ready, "fake server subprocess never became healthy"
            content = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT_BODY).json()
            assert content["choices"][0]["message"]["content"] == DEFAULT_TEXT
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}/v1" in out
    assert port_refuses(port)
    assert port_bindable(port)


def test_subprocess_crash_on_start() -> None:
    proc = subprocess.run(
        [sys.executable, str(FAKESERVER_PY), "--port", str(free_port()), "--crash-on-start"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "fake server: simulated crash on start" in proc.stderr
