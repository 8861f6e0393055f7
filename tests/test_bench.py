"""Benchmark mode: the definitions (TTFT, TPOT, ITL, freezes) on hand-made generations, a level's workers and wall
time with a stand-in provider and clock, and an end-to-end run against a local streaming server. (How close the
measured TTFT/TPOT come to a server's known delays is a benchmark, not a test: benchmarks/bench_accuracy.py.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import summary_json
from fakeserver import FakeOpenAIServer
from vlmpipe.app.cli import app
from vlmpipe.app.pipeline import bench
from vlmpipe.core.config import config_from_dict
from vlmpipe.providers import Generation, Request
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.bench import (
    BenchSettings,
    is_freeze,
    itl_s,
    percentiles,
    prefix_caching_state,
    run_level,
    summarize_level,
    tpot_s,
)
from vlmpipe.stages.serving import gpu

ANSWER = " ".join(f"слово{i}" for i in range(31))  # 31 tokens for the fake server


def gen(ttft: float, times: list[float], latency: float, tokens: int | None, **kw: object) -> Generation:
    return Generation(text="x", ttft_s=ttft, token_times=times, latency_s=latency, completion_tokens=tokens,
                      **kw)  # type: ignore[arg-type]


def test_tpot_excludes_the_first_token_and_itl_is_the_gaps() -> None:
    g = gen(0.5, [0.5, 0.6, 0.8, 0.9], 1.1, 5)
    assert tpot_s(g) == pytest.approx((1.1 - 0.5) / 4)
    assert itl_s(g) == pytest.approx([0.1, 0.2, 0.1])
    assert tpot_s(gen(0.5, [0.5], 0.5, 1)) is None  # one token: no TPOT
    # without usage the content chunks are counted
    assert tpot_s(gen(0.2, [0.2, 0.3, 0.4], 0.4, None)) == pytest.approx(0.1)


def test_freezes_are_timeouts_and_long_gaps() -> None:
    assert not is_freeze(gen(0.5, [0.5, 0.6], 0.7, 2), 1.0)
    assert is_freeze(gen(0.5, [0.5, 2.0], 2.1, 2), 1.0)  # a 1.5 s stall mid-stream
    assert is_freeze(gen(3.0, [3.0, 3.1], 3.2, 2), 1.0)  # a 3 s wait for the first token
    assert is_freeze(Generation(error="no complete answer within 5 s", error_kind="timeout", latency_s=5), 10)
    assert not is_freeze(Generation(error="HTTP 500", error_kind="http_500", latency_s=0.1), 1.0)


def test_level_summary_by_hand() -> None:
    gens = [gen(0.1, [0.1, 0.3], 0.3, 2), gen(0.3, [0.3, 0.4, 0.5], 0.5, 3),
            Generation(error="HTTP 500", error_kind="http_500", latency_s=0.01)]
    s = summarize_level(gens, 2.0, 4, 10.0)
    assert (s["requests"], s["completed"], s["errors"], s["freezes"]) == (3, 2, 1, 0)
    assert s["error_rate"] == pytest.approx(1 / 3) and s["errors_by_kind"] == {"http_500": 1}
    assert s["request_throughput"] == pytest.approx(1.0) and s["output_tokens_per_s"] == pytest.approx(2.5)
    assert s["ttft_s"]["p50"] == pytest.approx(0.2) and s["tpot_s"]["mean"] == pytest.approx(0.15)
    assert s["itl_s"]["mean"] == pytest.approx(0.4 / 3) and s["tokens_source"] == "usage"
    p = percentiles(list(range(1, 101)))
    assert p == {"mean": 50.5, "p50": 50.5, "p95": pytest.approx(95.05), "p99": pytest.approx(99.01)}
    assert percentiles([None]) is None


async def test_a_level_keeps_its_concurrency_in_flight_and_is_timed_by_the_clock() -> None:
    class Provider:
        """Answers each request after one turn of the event loop, counting the requests in flight."""

        def __init__(self) -> None:
            self.in_flight = self.peak = 0

        async def generate(self, request: Request) -> Generation:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0)  # every worker that has a request sends it before any answer comes back
            self.in_flight -= 1
            return Generation(text=request.item_id, ttft_s=0.1, token_times=[0.1, 0.2], latency_s=0.2,
                              completion_tokens=2)

    requests = [Request(f"i{k}", "data:,", "p") for k in range(64)]
    for level, peak in ((1, 1), (16, 16), (100, 64)):  # more workers than requests: one per request
        provider = Provider()
        readings = iter([100.0, 104.0])  # the clock before the first request and after the last
        gens, duration = await run_level(provider, requests, level, clock=lambda r=readings: next(r))
        assert provider.peak == peak and duration == 4.0
        assert sorted(g.text for g in gens) == sorted(r.item_id for r in requests)  # each request once
        s = summarize_level(gens, duration, level, 10.0)
        assert s["request_throughput"] == 16.0 and s["output_tokens_per_s"] == 32.0  # 64 and 128 in 4 s


def test_prefix_caching_state_sources() -> None:
    plain = OpenAISpec(name="m")
    assert prefix_caching_state(plain, "on") == ("on", "server /metrics (vllm:cache_config_info)")
    assert prefix_caching_state(plain, None)[0] == "unknown"
    flagged = OpenAISpec.model_validate({"name": "m", "launch": {"enable_prefix_caching": True}})
    assert prefix_caching_state(flagged, None) == ("on", "launch.enable_prefix_caching")
    args = OpenAISpec.model_validate({"name": "m", "launch": {"args": ["--no-enable-prefix-caching"]}})
    assert prefix_caching_state(args, None) == ("off", "launch.args")


MODEL = "Qwen2-VL-7B-Instruct-AWQ"  # a long name, for the table's width


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    """`vlmpipe bench` at concurrency 1 and 16 against a streaming server: (result, requests)."""
    tmp = tmp_path_factory.mktemp("bench")
    data = tmp / "data"
    data.mkdir()
    for i in range(2):
        Image.new("RGB", (16, 16), (i * 80, 10, 10)).save(data / f"s{i}.png")
    metrics = ('vllm:num_requests_running 2\n'
               'vllm:cache_config_info{block_size="16",enable_prefix_caching="True"} 1.0\n')
    with pytest.MonkeyPatch.context() as mp, FakeOpenAIServer(
            responder=lambda _b: ANSWER, metrics_text=metrics) as srv:
        mp.setattr(gpu, "load_nvml", lambda: (None, "NVML unavailable: test has no GPU"))
        cfg = config_from_dict({
            "name": "bench", "output_dir": str(tmp / "runs"), "dataset": {"path": str(data)},
            "models": [{"name": MODEL, "model": "fake-vlm", "base_url": srv.url, "max_retries": 3}],
        })
        # requests per level: max(items, 4 × level) = 4 at concurrency 1, 64 at concurrency 16
        result = bench(cfg, BenchSettings(levels=[1, 16], warmup=1, freeze_s=5.0))
        return result, list(srv.requests)


def test_bench_against_a_streaming_server(streamed: tuple[Any, list[dict[str, Any]]]) -> None:
    result, bodies = streamed
    assert len(bodies) == 1 + 4 + 64 and all(b["stream"] for b in bodies)
    assert result.exit_code == 0
    levels = summary_json(result)["bench"]["models"][MODEL]["levels"]
    one, sixteen = levels["1"], levels["16"]
    for level, n in ((one, 4), (sixteen, 64)):
        assert (level["requests"], level["completed"], level["errors"]) == (n, n, 0)
        assert level["freezes"] == 0 and level["tokens_source"] == "usage" and level["output_tokens"] == n * 31
        # every figure is measured (its value is the server's timing, not the test's business: benchmarks/)
        assert all(level[k] is not None for k in ("ttft_s", "tpot_s", "itl_s", "e2e_latency_s", "request_throughput"))
    assert summary_json(result)["bench"]["models"][MODEL]["prefix_caching"] == "on"
    assert one["server_requests_running_max"] == 2.0
    assert one["gpu_memory_gb_peak"] is None
    assert one["unavailable"]["gpu_memory_gb_peak"] == "NVML unavailable: test has no GPU"
    tpot = summary_json(result)["bench"]["settings"]["tpot_definition"]
    assert tpot.startswith("(e2e_latency - ttft) / (output_tokens - 1)")

    report = result.run_dir / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert summary["bench"]["models"][MODEL]["levels"]["16"]["requests"] == 64
    assert (report / "bench.png").stat().st_size > 10_000


def test_bench_cli_rejects_bad_levels_and_lists_presets(tmp_path: Path) -> None:
    runner = CliRunner()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {{path: {tmp_path}}}\nmodels: [{{name: m}}]\n")
    res = runner.invoke(app, ["bench", str(cfg), "--concurrency", "1,zero"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    for name in ("qwen2-vl-7b-instruct ", "qwen2-vl-2b-instruct-awq", "Qwen/Qwen2-VL-7B-Instruct-GPTQ-Int8",
                 "16.07–21.56", "2.88–8.18"):
        assert name in res.output


def test_bench_table_fits_80_columns_without_cutting_figures(streamed: tuple[Any, list[dict[str, Any]]]) -> None:
    from rich.console import Console

    from vlmpipe.render.bench_table import COLUMNS, bench_table

    section = streamed[0].summary.bench  # the typed bench section of the run above

    def render(width: int) -> list[str]:
        console = Console(width=width, record=True)
        console.print(bench_table(section, width=width))
        return console.export_text().splitlines()

    narrow = render(80)
    assert all(len(ln) <= 80 for ln in narrow) and "…" not in "".join(narrow)  # was 16 columns cut to "f…"
    header = next(ln for ln in narrow if ln.lstrip().startswith("model"))
    assert header.split() == ["model", "conc.", "req/s", "TTFT", "p50", "TPOT", "p50", "E2E", "p50", "errors",
                              "freezes"]
    rows = [ln.split() for ln in narrow if ln.split() and ln.split()[-2:] in (["0%", "0"],)]
    assert [r[1] for r in rows] == ["1", "16"]  # both levels: no error, no freeze
    first = next(i for i, ln in enumerate(narrow) if ln.split() == rows[0])
    # a long model name folds over lines instead of being cut
    assert "".join(ln.split()[0] for ln in narrow[first:first + 3]) == MODEL
    assert "a wider terminal shows ok/n, tok/s" in " ".join(" ".join(narrow).split())
    wide = render(220)
    header = next(ln for ln in wide if ln.lstrip().startswith("model"))
    assert all(c in header for c in COLUMNS) and "wider terminal" not in " ".join(wide)
    row = next(ln.split() for ln in wide if ln.split()[:1] == [MODEL])
    assert row[1:3] == ["1", "4/4"] and row[-3:] == ["0%", "0", "on"]  # 4 requests at concurrency 1


def test_bench_says_why_requests_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "load_nvml", lambda: (None, "NVML unavailable: test has no GPU"))
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (16, 16), (80, 10, 10)).save(data / "s0.png")
    cfg = config_from_dict({"name": "dead", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(data)},
                            "models": [{"name": "dead", "base_url": "http://127.0.0.1:9/v1"}]})
    said: list[str] = []
    result = bench(cfg, BenchSettings(levels=[1], requests=2, warmup=0), log=said.append)
    assert result.exit_code == 1
    assert said == ["dead @ 1: 0/2 ok, 0.00 req/s; errors: connection: 2; first: connection to "
                    "http://127.0.0.1:9/v1 failed: ConnectError: All connection attempts failed"]


def test_bench_skips_a_model_without_a_server_saying_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "load_nvml", lambda: (None, "NVML unavailable: test has no GPU"))
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (16, 16), (80, 10, 10)).save(data / "s0.png")
    with FakeOpenAIServer() as srv:
        cfg = config_from_dict({"name": "mixed", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(data)},
                                "models": [{"name": "ocr-baseline", "provider": "ocr"},
                                           {"name": "served", "base_url": srv.url, "model": "fake-vlm"}]})
        said: list[str] = []
        result = bench(cfg, BenchSettings(levels=[1], requests=2, warmup=0), log=said.append)
    assert said[0] == ("ocr-baseline: skipped (bench measures model servers, and provider 'ocr' has none: the OCR "
                       "baseline runs on the CPU, without a server)")
    assert said[1].startswith("served @ 1: 2/2 ok") and result.exit_code == 0
    assert list(result.summary.bench.models) == ["served"]
