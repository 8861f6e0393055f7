"""Benchmark mode (``vlmpipe bench CONFIG``): serving latency and throughput at several concurrency levels.

For each model served over HTTP (launched by vlmpipe when its spec says ``launch``) whose provider can be
benchmarked (``ModelSpec.bench_skip_reason``; the OCR baseline cannot: it has no server; a skipped model is
logged with that reason), warm-up requests are sent first and not counted; then, for each concurrency level C,
``requests`` requests built from the dataset's items (cycled) are sent by C workers in a closed loop (each
worker sends its next request when its previous one ends).
Retries are off: a failed request is counted as an error, not retried.

Per request (streamed), as vLLM's ``benchmark_serving`` defines them:

* TTFT: time from sending the request to the first content chunk.
* E2E latency: time from sending the request to the end of the stream.
* TPOT: ``(E2E − TTFT) / (output_tokens − 1)`` — time per output token *excluding the first*; requests with
  fewer than two output tokens have none. (Some tools divide by ``output_tokens`` and include the first.)
* ITL: every gap between consecutive content chunks of a request, pooled over requests (a chunk usually
  carries one token; with speculative decoding it may carry several).

Output tokens are the server's ``usage.completion_tokens``; when a server does not report usage, the number
of content chunks is used instead (``tokens_source: chunks``).

Per level: p50/p95/p99 (and mean) of each, request throughput (successful requests / wall time of the level),
output tokens/s (output tokens of successful requests / wall time), error rate, and the freeze count:
requests that timed out or whose TTFT or any inter-chunk gap exceeded ``freeze_s``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlmpipe.core.config import ConfigError, RunConfig, load_config
from vlmpipe.core.dataset import DatasetError
from vlmpipe.core.keys import require_api_keys
from vlmpipe.core.rundir import open_store, save_config
from vlmpipe.core.store import Store
from vlmpipe.providers import Generation, Request, make_provider
from vlmpipe.providers.http import HttpModelSpec
from vlmpipe.stages.prepare import load_task_items, prepare_items
from vlmpipe.stages.serving.session import ResourceMonitor, model_session
from vlmpipe.tasks import resolve

TPOT_DEFINITION = "(e2e_latency - ttft) / (output_tokens - 1): excludes the first token (vLLM benchmark_serving)"
ITL_DEFINITION = "gaps between consecutive content chunks of a request, pooled over all requests"
DEFAULT_LEVELS = (1, 4, 16)


@dataclass
class BenchSettings:
    levels: list[int] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    requests: int | None = None  # per level; default max(items, 4 × level)
    warmup: int = 2
    freeze_s: float = 10.0

    def requests_for(self, level: int, n_items: int) -> int:
        return self.requests if self.requests else max(n_items, 4 * level)

    def as_dict(self) -> dict[str, Any]:
        return {"concurrency": self.levels, "requests": self.requests or "max(items, 4 × concurrency)",
                "warmup": self.warmup, "freeze_s": self.freeze_s, "retries": 0,
                "tpot_definition": TPOT_DEFINITION, "itl_definition": ITL_DEFINITION}


def percentiles(values: Sequence[float | None]) -> dict[str, float] | None:
    """``{mean, p50, p95, p99}`` of the values present, ``None`` when there are none."""
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return None
    return {"mean": float(vals.mean()), "p50": float(np.percentile(vals, 50)),
            "p95": float(np.percentile(vals, 95)), "p99": float(np.percentile(vals, 99))}


def output_tokens(gen: Generation) -> tuple[int | None, str]:
    if gen.completion_tokens is not None:
        return gen.completion_tokens, "usage"
    if gen.token_times is not None:
        return len(gen.token_times), "chunks"
    return None, "none"


def tpot_s(gen: Generation) -> float | None:
    """vLLM's TPOT: (latency − TTFT) / (output tokens − 1); ``None`` below two tokens."""
    tokens, _ = output_tokens(gen)
    if gen.error or gen.latency_s is None or gen.ttft_s is None or not tokens or tokens < 2:
        return None
    return (gen.latency_s - gen.ttft_s) / (tokens - 1)


def itl_s(gen: Generation) -> list[float]:
    times = gen.token_times or []
    return [b - a for a, b in itertools.pairwise(times)]


def is_freeze(gen: Generation, freeze_s: float) -> bool:
    """Timed out, or the first chunk or any later chunk came more than ``freeze_s`` after the previous one."""
    if gen.error_kind == "timeout":
        return True
    times = gen.token_times or []
    gaps = ([times[0]] if times else []) + itl_s(gen)
    if not times and gen.error and gen.latency_s is not None and gen.latency_s > freeze_s:
        return True  # nothing came back for longer than the threshold, then the request failed
    return any(g > freeze_s for g in gaps)


def summarize_level(gens: list[Generation], duration_s: float, concurrency: int, freeze_s: float) -> dict[str, Any]:
    """The figures of one concurrency level (see the module docstring for the definitions)."""
    ok = [g for g in gens if g.error is None]
    tokens = [output_tokens(g) for g in ok]
    token_sum = sum(t for t, _ in tokens if t is not None)
    sources = sorted({s for _, s in tokens})
    itls = [x for g in ok for x in itl_s(g)]
    errors: dict[str, int] = {}
    for g in gens:
        if g.error is not None:
            errors[g.error_kind or "error"] = errors.get(g.error_kind or "error", 0) + 1
    return {
        "concurrency": concurrency,
        "requests": len(gens),
        "completed": len(ok),
        "errors": len(gens) - len(ok),
        "error_rate": (len(gens) - len(ok)) / len(gens) if gens else None,
        "errors_by_kind": errors,
        "freezes": sum(is_freeze(g, freeze_s) for g in gens),
        "duration_s": duration_s,
        "request_throughput": len(ok) / duration_s if duration_s > 0 else None,
        "output_tokens": token_sum,
        "output_tokens_per_s": token_sum / duration_s if duration_s > 0 and ok else None,
        "tokens_source": sources[0] if len(sources) == 1 else ",".join(sources) or None,
        "ttft_s": percentiles([g.ttft_s for g in ok]),
        "tpot_s": percentiles([tpot_s(g) for g in ok]),
        "itl_s": percentiles(itls),
        "e2e_latency_s": percentiles([g.latency_s for g in ok]),
    }


async def run_level(provider: Any, requests: Sequence[Request], concurrency: int,
                    clock: Callable[[], float] = time.perf_counter) -> tuple[list[Generation], float]:
    """Send ``requests`` with ``concurrency`` workers in a closed loop; the generations and the wall time (``clock``
    read before the first request and after the last)."""
    queue: asyncio.Queue[tuple[int, Request]] = asyncio.Queue()
    for pair in enumerate(requests):
        queue.put_nowait(pair)
    out: list[Generation | None] = [None] * len(requests)

    async def worker() -> None:
        while True:
            try:
                i, req = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            out[i] = await provider.generate(req)

    t0 = clock()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(requests))))))
    duration = clock() - t0
    return [g for g in out if g is not None], duration


def prefix_caching_state(spec: HttpModelSpec, scraped: str | None) -> tuple[str, str]:
    """``(on|off|unknown, where it was read)``: the server's /metrics first, then the launch settings."""
    if scraped in ("on", "off"):
        return scraped, "server /metrics (vllm:cache_config_info)"
    launch = spec.launch
    if launch is not None:
        if launch.enable_prefix_caching is not None:
            return ("on" if launch.enable_prefix_caching else "off"), "launch.enable_prefix_caching"
        if "--enable-prefix-caching" in launch.args:
            return "on", "launch.args"
        if "--no-enable-prefix-caching" in launch.args:
            return "off", "launch.args"
    return "unknown", "not reported by the server and not set in the config"


def build_requests(cfg: RunConfig, store: Store, images: dict[str, Any]) -> list[Request]:
    """One request per usable dataset item, in dataset order."""
    out = []
    for item in store.items():
        image = images.get(item["id"])
        if item.get("error") or image is None:
            continue
        out.append(Request(
            item_id=item["id"],
            image_url=image if isinstance(image, str) else image.data_url(),
            system_prompt=cfg.system_prompt or "",
            user_message=str(item.get("user_message") or cfg.user_message or ""),
            image_bytes=None if isinstance(image, str) else image.data,
        ))
    return out


def cycle(requests: Sequence[Request], n: int) -> list[Request]:
    return [requests[i % len(requests)] for i in range(n)] if requests else []


# --- running ------------------------------------------------------------------------------------------
async def bench_model(cfg: RunConfig, spec: HttpModelSpec, requests: list[Request], settings: BenchSettings,
                      store: Store, log: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Benchmark one model at every level; the per-level results (also stored)."""
    results: list[dict[str, Any]] = []
    async with model_session(cfg, spec.for_bench(), store, monitor=False) as served:
        if served.error:
            for level in settings.levels:
                result = {"concurrency": level, "error": served.error, "server_error": served.error,
                          "prefix_caching": "unknown", "prefix_caching_source": "the server did not start"}
                store.put_bench(spec.name, level, result)
                results.append(result)
            log(f"{spec.name}: server failed: {served.error.splitlines()[0]}")
            return results
        provider = make_provider(served.spec)
        try:
            if settings.warmup:
                await run_level(provider, cycle(requests, settings.warmup), 1)
            for level in settings.levels:
                batch = cycle(requests, settings.requests_for(level, len(requests)))
                mon = ResourceMonitor(served.spec).start()
                mon.watch_server(served.spec.urls() if isinstance(served.spec, HttpModelSpec) else [])
                gens, duration = await run_level(provider, batch, level)
                usage = await asyncio.to_thread(mon.stop)
                result = summarize_level(gens, duration, level, settings.freeze_s)
                state, source = prefix_caching_state(spec, usage.get("prefix_caching"))
                result.update({
                    "prefix_caching": state, "prefix_caching_source": source,
                    "gpu_memory_gb_peak": usage.get("gpu_memory_gb_peak"),
                    "gpu_memory_gb_mean": usage.get("gpu_memory_gb_mean"),
                    "server_kv_cache_usage_peak": usage.get("server_kv_cache_usage_peak"),
                    "server_requests_running_max": usage.get("server_requests_running_max"),
                    "server_requests_waiting_max": usage.get("server_requests_waiting_max"),
                    "unavailable": usage.get("unavailable", {}),
                })
                store.put_bench(spec.name, level, result)
                results.append(result)
                failed = next((g.error for g in gens if g.error), None)  # why, not only how many
                why = "" if failed is None else (
                    f"; errors: {', '.join(f'{k}: {v}' for k, v in result['errors_by_kind'].items())}; "
                    f"first: {failed}")
                log(f"{spec.name} @ {level}: {result['completed']}/{result['requests']} ok, "
                    f"{result['request_throughput'] or 0:.2f} req/s{why}")
        finally:
            await provider.aclose()
    return results


@dataclass
class BenchResult:
    run_dir: Path
    cfg: RunConfig
    exit_code: int


def run_bench(config: RunConfig | str | Path, settings: BenchSettings | None = None,
              log: Callable[[str], None] = lambda _m: None) -> BenchResult:
    """``vlmpipe bench``: every model of the config, one after another, at every level."""
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    settings = settings or BenchSettings()
    source = "config" if isinstance(config, RunConfig) else str(config)
    try:
        resolve(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    require_api_keys(cfg, references=False, judge=False, source=source)
    run_dir = Path(cfg.run_dir)
    dataset = load_task_items(cfg)  # DatasetError (could not start) before anything is written
    save_config(cfg, run_dir, source=source)
    with open_store(run_dir) as store:
        images = prepare_items(cfg, store, dataset)
        requests = build_requests(cfg, store, images)
        if not requests:
            raise DatasetError(f"{cfg.dataset.path}: no usable item to build benchmark requests from")
        store.set_meta("bench_settings", settings.as_dict())
        failed = False

        async def all_models() -> None:
            nonlocal failed
            for spec in cfg.models:
                reason = spec.bench_skip_reason()
                if reason is not None or not isinstance(spec, HttpModelSpec):
                    log(f"{spec.name}: skipped ({reason or 'bench measures models served over HTTP'})")
                    continue
                for r in await bench_model(cfg, spec, requests, settings, store, log):
                    failed = failed or bool(r.get("error") or r.get("errors"))

        asyncio.run(all_models())
    return BenchResult(run_dir, cfg, 1 if failed else 0)
