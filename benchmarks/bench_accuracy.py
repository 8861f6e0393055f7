"""How closely `vlmpipe bench` measures a server whose timings are known: the test suite's stand-in server
(tests/fakeserver.py, in its own process) waits ``--ttft`` before the first token and ``--token-delay`` between the
others of a 31-token answer. Prints the measured TTFT, TPOT and ITL medians at concurrency 1 against the set values,
and the request throughput at concurrency 16 over that at 1 (ideally 16: the server runs requests in parallel).
Last line: ``max_rel_error=<float>``, the largest relative error of the three medians (target: <= 0.10; on a loaded
machine the client's scheduling delays show up here, which is why this is a benchmark and not a test).

    python benchmarks/bench_accuracy.py [--ttft 0.2] [--token-delay 0.02]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vlmpipe.app.pipeline import bench  # noqa: E402
from vlmpipe.core.config import config_from_dict  # noqa: E402
from vlmpipe.stages.bench import BenchSettings  # noqa: E402
from vlmpipe.stages.serving.launcher import free_port  # noqa: E402

TOKENS = 31


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttft", type=float, default=0.2)
    parser.add_argument("--token-delay", type=float, default=0.02)
    args = parser.parse_args()
    port = free_port()
    answer = " ".join(f"слово{i}" for i in range(TOKENS))
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", str(port),
                               "--ttft", str(args.ttft), "--token-delay", str(args.token_delay), "--text", answer],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "fake server: listening on ..."
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            for i in range(2):
                Image.new("RGB", (16, 16), (i * 80, 10, 10)).save(data / f"s{i}.png")
            cfg = config_from_dict({
                "name": "bench-accuracy", "output_dir": str(Path(tmp) / "runs"), "dataset": {"path": str(data)},
                "models": [{"name": "fake", "model": "fake-vlm", "base_url": f"http://127.0.0.1:{port}/v1"}],
            })
            result = bench(cfg, BenchSettings(levels=[1, 16], warmup=1, freeze_s=5.0))
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.summary.bench is not None, "the bench measured nothing"
    levels = result.summary.bench.models["fake"].levels
    one, sixteen = levels["1"], levels["16"]
    errors = {}
    for key, want in (("ttft_s", args.ttft), ("tpot_s", args.token_delay), ("itl_s", args.token_delay)):
        got = getattr(one, key).p50
        errors[key] = abs(got - want) / want
        print(f"{key[:-2].upper():5} p50 {got * 1000:7.1f} ms, set {want * 1000:6.1f} ms: {errors[key]:.1%} off")
    scale = sixteen.request_throughput / one.request_throughput
    print(f"throughput: {one.request_throughput:.2f} req/s at 1, {sixteen.request_throughput:.2f} at 16 "
          f"({scale:.1f}x; ideal 16x)")
    print(f"max_rel_error={max(errors.values()):.3f}")


if __name__ == "__main__":
    main()
