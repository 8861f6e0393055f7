"""The OpenAI-compatible provider against a local in-process server (tests/fakeserver.py)."""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from fakeserver import Behavior, FakeOpenAIServer
from vlmpipe.providers import Generation, Request
from vlmpipe.providers.openai_compat import OpenAICompatProvider
from vlmpipe.providers.openai_spec import OpenAISpec

REQ = Request("item1", "data:image/png;base64,AAAA", "Сформулируй обращение.", user_message="")
ANSWER = "Здравствуйте! Мой заказ 02632305-0222 отменили, помогите разобраться."


def spec(url: str, **kw: Any) -> OpenAISpec:
    return OpenAISpec(name="m", base_url=url, model="fake-vlm", retry_backoff_s=0.01, **kw)


class Ticks:
    """A clock that moves one second each time it is read: the provider's timings become counts of readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def generate(s: OpenAISpec, req: Request = REQ, clock: Callable[[], float] | None = None) -> Generation:
    async def go() -> Generation:
        p = OpenAICompatProvider(s) if clock is None else OpenAICompatProvider(s, clock=clock)
        try:
            return await p.generate(req)
        finally:
            await p.aclose()

    return asyncio.run(go())


def test_streaming_answer_with_ttft_tokens_and_usage() -> None:
    with FakeOpenAIServer(responder=lambda body: ANSWER) as srv:
        gen = generate(spec(srv.url), clock=Ticks())
    assert gen.ok and gen.text == ANSWER
    n = len(ANSWER.split())  # the fake server's tokens are words, one per content chunk
    # the clock is read when the request is sent (1), at each content chunk (2 .. n+1; not at the role chunk, whose
    # content is empty, nor at the finish and usage chunks) and at the end of the stream (n+2)
    assert gen.token_times == [float(k) for k in range(1, n + 1)]
    assert gen.ttft_s == 1.0 and gen.latency_s == n + 1.0
    assert gen.completion_tokens == n
    assert gen.prompt_tokens is not None and gen.prompt_tokens > 0
    body = srv.requests[0]
    assert body["stream"] is True and body["temperature"] == 0.1 and body["model"] == "fake-vlm"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == [{"type": "image_url", "image_url": {"url": REQ.image_url}}]


def test_non_streaming_answer_and_user_message() -> None:
    req = Request("i", "https://example.invalid/a.png", "Инструкция.", user_message="Что тут?")
    with FakeOpenAIServer(responder=lambda body: ANSWER) as srv:
        gen = generate(spec(srv.url, stream=False), req)
    assert gen.ok and gen.text == ANSWER and gen.ttft_s is None
    assert gen.completion_tokens == len(ANSWER.split())
    user = srv.requests[0]["messages"][1]["content"]
    assert user[0] == {"type": "text", "text": "Что тут?"} and user[1]["image_url"]["url"].startswith("https://")


def test_system_prompt_as_user_puts_the_instruction_in_the_user_turn() -> None:
    with FakeOpenAIServer() as srv:
        generate(spec(srv.url, system_prompt_as_user=True))
    msgs = srv.requests[0]["messages"]
    assert [m["role"] for m in msgs] == ["user"]
    assert msgs[0]["content"][0] == {"type": "text", "text": REQ.system_prompt}


def test_500_is_retried_then_succeeds() -> None:
    with FakeOpenAIServer(script=[Behavior("status", status=500), Behavior("status", status=503)]) as srv:
        gen = generate(spec(srv.url))
    assert gen.ok and gen.attempts == 3 and srv.request_count == 3


def test_429_honours_retry_after() -> None:
    with FakeOpenAIServer(script=[Behavior("status", status=429, retry_after=0.3)]) as srv:
        gen = generate(spec(srv.url))
        assert gen.ok and gen.attempts == 2
    # the provider waits what the server asked for, not its own (0.01 s) backoff
    provider = OpenAICompatProvider(spec("http://127.0.0.1:9/v1"))
    from vlmpipe.providers.openai_compat import _Retryable

    class Outcome:
        def exception(self) -> BaseException:
            return _Retryable(Generation(error="x"), retry_after=7.5)

    class State:
        outcome = Outcome()
        attempt_number = 1

    assert provider._wait(State()) == 7.5  # type: ignore[arg-type]


def test_retries_give_up_with_the_error_kind() -> None:
    with FakeOpenAIServer(script=[Behavior("status", status=500)] * 5) as srv:
        gen = generate(spec(srv.url, max_retries=2))
    assert not gen.ok and gen.error_kind == "http_500" and gen.attempts == 3 and srv.request_count == 3
    assert gen.error is not None and gen.error.startswith("HTTP 500")


def test_400_is_not_retried() -> None:
    with FakeOpenAIServer(script=[Behavior("status", status=400)]) as srv:
        gen = generate(spec(srv.url))
    assert gen.error_kind == "http_400" and srv.request_count == 1


def test_stalled_stream_is_a_timeout_row_not_a_hang() -> None:
    with FakeOpenAIServer(script=[Behavior("stall", stall_after_chunks=2, stall_s=30)]) as srv:
        gen = generate(spec(srv.url, timeout_s=0.5, max_retries=0))
    # timed out by the provider: a stall that ran its 30 s would end as a cut stream (truncated), not a timeout
    assert gen.error_kind == "timeout" and gen.error == "no complete answer within 0.5 s"


@pytest.mark.parametrize("stream", [True, False])
def test_malformed_json_is_recorded(stream: bool) -> None:
    with FakeOpenAIServer(script=[Behavior("malformed")]) as srv:
        gen = generate(spec(srv.url, stream=stream, max_retries=0))
    assert gen.error_kind == "bad_response" and "malformed" in (gen.error or "")


def test_empty_answer_and_refusal_are_errors_with_their_kind() -> None:
    with FakeOpenAIServer(script=[Behavior("empty"), Behavior("refusal")]) as srv:
        empty = generate(spec(srv.url))
        refusal = generate(spec(srv.url))
    assert empty.error_kind == "empty"
    assert refusal.error_kind == "refusal" and "can't help" in (refusal.error or "")


def test_connection_refused_is_a_connection_error() -> None:
    gen = generate(spec("http://127.0.0.1:9/v1", max_retries=1, connect_timeout_s=1))
    assert gen.error_kind == "connection" and gen.attempts == 2
    assert (gen.error or "").startswith("connection to http://127.0.0.1:9/v1 failed: ConnectError")  # where to look


def test_not_found_says_where_it_posted_and_what_to_check() -> None:
    with FakeOpenAIServer() as srv:
        gen = generate(spec(srv.root_url, stream=False))  # base_url without /v1
    assert gen.error_kind == "http_404"
    assert gen.error == (f"HTTP 404: Not found: /chat/completions (POST {srv.root_url}/chat/completions: "
                         "check base_url, which usually ends in /v1, and model)")


def test_api_key_is_sent_but_never_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-sentinel-abcdefghijklmnopqrstuvwxyz"
    monkeypatch.setenv("FAKE_KEY", key)
    with FakeOpenAIServer(api_key=key) as srv:
        assert generate(spec(srv.url, api_key_env="FAKE_KEY")).ok
    assert srv.headers[0]["authorization"] == f"Bearer {key}"
    with FakeOpenAIServer(api_key="another-key") as srv:
        gen = generate(spec(srv.url, api_key_env="FAKE_KEY"))
    assert gen.error_kind == "http_401" and key not in (gen.error or "")


def test_nothing_after_done_counts() -> None:
    """The stream is read to the end of the body, but what a server sends after ``[DONE]`` is not the answer."""
    events = ['{"choices": [{"delta": {"content": "Заказ отменили"}}]}', '{"choices": [{"finish_reason": "stop"}]}',
              "[DONE]", '{"choices": [{"delta": {"content": ", а деньги?"}}]}']
    body = "".join(f"data: {e}\n\n" for e in events)

    async def go() -> Generation:
        transport = httpx.MockTransport(lambda _request: httpx.Response(
            200, text=body, headers={"content-type": "text/event-stream"}))
        p = OpenAICompatProvider(spec("http://mock/v1"),
                                 client=httpx.AsyncClient(base_url="http://mock/v1/", transport=transport))
        try:
            return await p.generate(REQ)
        finally:
            await p.aclose()

    gen = asyncio.run(go())
    assert gen.ok and gen.text == "Заказ отменили" and gen.token_times is not None and len(gen.token_times) == 1
