"""Client throughput: streamed requests/s vlmpipe's OpenAI-compatible provider sustains at concurrency 32, against
a bare asyncio + httpx streaming loop doing the least any streaming client must (send the same body, read the SSE
lines, parse each chunk, join the text), in the same run against the same local server (the test suite's stand-in
server, tests/fakeserver.py, in its own process so that it does not share the client's interpreter).

The two clients take turns (bare, vlmpipe, vlmpipe, bare, ...) so that drift in the machine's load, and whatever a
turn leaves behind at the server, hit both alike.
Last line: ``ratio=<vlmpipe requests/s ÷ bare requests/s>`` (target: >= 0.9).

    python benchmarks/client_throughput.py [--requests 2000] [--concurrency 32] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


from vlmpipe.providers import Request, make_provider  # noqa: E402
from vlmpipe.providers.openai_compat import OpenAICompatProvider  # noqa: E402
from vlmpipe.providers.openai_spec import OpenAISpec  # noqa: E402
from vlmpipe.stages.serving.launcher import free_port  # noqa: E402

REQUEST = Request(item_id="x", image_url="data:image/png;base64,iVBORw0KGgo=", system_prompt="Опишите запрос.")


async def closed_loop(send: Callable[[], Awaitable[bool]], requests: int, concurrency: int) -> tuple[float, float, int]:
    """``requests`` calls of ``send`` by ``concurrency`` workers: (wall seconds, CPU seconds, failures)."""
    left = requests
    failures = 0

    async def worker() -> None:
        nonlocal left, failures
        while left > 0:
            left -= 1
            failures += not await send()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, time.process_time() - cpu0, failures


class Vlmpipe:
    name = "vlmpipe"

    def __init__(self, base_url: str) -> None:
        spec = OpenAISpec(name="bench", model="fake-vlm", base_url=base_url, max_retries=0, stream=True)
        self.provider = make_provider(spec)
        assert isinstance(self.provider, OpenAICompatProvider)
        self.body = self.provider.payload(REQUEST)  # what the bare client sends too

    async def send(self) -> bool:
        return (await self.provider.generate(REQUEST)).ok

    async def aclose(self) -> None:
        await self.provider.aclose()


class Bare:
    name = "bare"

    def __init__(self, base_url: str, body: dict) -> None:
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", timeout=120,
                                        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.body = body

    async def send(self) -> bool:
        parts: list[str] = []
        async with self.client.stream("POST", "chat/completions", json=self.body) as resp:
            if resp.status_code != 200:
                return False
            async for line in resp.aiter_lines():
                if line.startswith("data:") and line != "data: [DONE]":
                    for choice in json.loads(line[5:]).get("choices") or []:
                        parts.append((choice.get("delta") or {}).get("content") or "")
        return bool("".join(parts))

    async def aclose(self) -> None:
        await self.client.aclose()


async def measure(base_url: str, requests: int, concurrency: int, rounds: int) -> dict[str, tuple[float, float, int]]:
    ours = Vlmpipe(base_url)
    bare = Bare(base_url, ours.body)
    totals = {c.name: (0.0, 0.0, 0) for c in (bare, ours)}
    try:
        for client in (bare, ours):  # warm-up: connections, caches, the first requests' imports
            await closed_loop(client.send, concurrency * 2, concurrency)
        for turn in range(rounds):
            for client in (bare, ours) if turn % 2 == 0 else (ours, bare):  # neither always goes first
                wall, cpu, failed = await closed_loop(client.send, requests // rounds, concurrency)
                w, c, f = totals[client.name]
                totals[client.name] = (w + wall, c + cpu, f + failed)
    finally:
        await ours.aclose()
        await bare.aclose()
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per client")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="turns per client")
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", str(port)],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "fake server: listening on ..."
        totals = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.requests, args.concurrency, args.rounds))
    finally:
        server.terminate()
        server.wait(timeout=10)
    n = args.requests // args.rounds * args.rounds
    rps = {}
    for name, (wall, cpu, failed) in totals.items():
        rps[name] = (n - failed) / wall
        print(f"{name:8} {n} streamed requests at concurrency {args.concurrency}: {failed} failed, {wall:.1f} s, "
              f"{rps[name]:.0f} requests/s; client CPU {cpu / n * 1000:.2f} ms per request")
    print(f"ratio={rps['vlmpipe'] / rps['bare']:.3f}")


if __name__ == "__main__":
    main()
