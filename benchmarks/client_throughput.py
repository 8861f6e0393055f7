"""Client throughput: streamed requests/s the project's provider sustains at concurrency 32 against a local
server that answers at once (the stand-in server of the test suite, in its own process so that it does not
share the client's interpreter). Last line: ``requests_per_s=<float>``.

    python benchmarks/client_throughput.py [--requests 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vlmpipe.providers import Request, make_provider  # noqa: E402
from vlmpipe.providers.openai_spec import OpenAISpec  # noqa: E402
from vlmpipe.stages.bench import run_level  # noqa: E402
from vlmpipe.stages.serving.launcher import free_port  # noqa: E402


async def measure(base_url: str, requests: int, concurrency: int) -> tuple[float, int]:
    spec = OpenAISpec(name="bench", model="fake-vlm", base_url=base_url, max_retries=0, stream=True)
    provider = make_provider(spec)
    req = Request(item_id="x", image_url="data:image/png;base64,iVBORw0KGgo=", system_prompt="Опишите запрос.")
    try:
        await run_level(provider, [req] * concurrency * 2, concurrency)  # warm-up
        cpu0 = time.process_time()
        gens, duration = await run_level(provider, [req] * requests, concurrency)
        cpu = time.process_time() - cpu0
    finally:
        await provider.aclose()
    errors = sum(g.error is not None for g in gens)
    print(f"client CPU {cpu / len(gens) * 1000:.2f} ms per request ({cpu:.1f} s CPU over {duration:.1f} s wall): "
          f"the client alone could sustain ~{len(gens) / cpu:.0f} requests/s on one core")
    return (len(gens) - errors) / duration, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", str(port)],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "fake server: listening on ..."
        t0 = time.perf_counter()
        rps, errors = asyncio.run(measure(f"http://127.0.0.1:{port}/v1", args.requests, args.concurrency))
        print(f"{args.requests} streamed requests at concurrency {args.concurrency}: {errors} errors, "
              f"{time.perf_counter() - t0:.1f} s")
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"requests_per_s={rps:.1f}")


if __name__ == "__main__":
    main()
