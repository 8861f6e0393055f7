"""Model sessions: the server a model's requests go to, for the duration of its generations.

Only models served over HTTP (:class:`~vlmpipe.providers.http.HttpModelSpec`) have a server; any other (the OCR
baseline, an in-process plugin) gets a session without one, and its GPU and server figures say why
(``ModelSpec.no_server_reason``). A model without ``launch`` is served elsewhere (its ``base_url`` or
``base_urls`` are used as is). A model with ``launch`` gets its own server (see :mod:`.launcher`): started before
its requests, stopped after, before the next model starts. While a session lasts, GPU memory is sampled through
NVML and vLLM's ``/metrics`` is scraped (see :mod:`.gpu`, :mod:`.server_metrics`); the figures go to the model's
info in the store and from there to summary.json.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vlmpipe.core.config import ModelSpec, RunConfig
from vlmpipe.core.store import Store
from vlmpipe.providers.http import HttpModelSpec
from vlmpipe.stages.serving.gpu import GpuSampler, parse_visible_devices
from vlmpipe.stages.serving.launcher import (
    LaunchedServer,
    ServerLaunchError,
    log_tail,
    start_server,
    stop_server,
    wait_ready,
)
from vlmpipe.stages.serving.server_metrics import MetricsScraper, root_of

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
_WEIGHTS = re.compile(r"(?:Loading model weights|Model loading) took ([0-9]+(?:\.[0-9]+)?) ?Gi?B")


@dataclass
class ServedModel:
    spec: ModelSpec
    error: str | None = None
    server: LaunchedServer | None = None


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


def weights_gb_from_log(path: Path) -> float | None:
    """The weights' GPU memory as vLLM logs it ("Model loading took 4.15 GiB"), the last such line."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = _WEIGHTS.findall(text)
    return float(found[-1]) if found else None


class ResourceMonitor:
    """GPU memory (NVML) and server gauges (/metrics) over one stretch of serving.

    ``start()`` before the server starts gives NVML a baseline; ``watch_server(root_url)`` once it is ready
    starts scraping its metrics; ``stop()`` returns the model-info fields, ``None`` with reasons when not
    measurable.
    """

    def __init__(self, spec: ModelSpec, *, gpu_interval_s: float = 0.5, metrics_interval_s: float = 1.0,
                 nvml: Any = None) -> None:
        self.spec = spec
        self.metrics_interval_s = metrics_interval_s
        self.gpu_reason: str | None = None
        self.sampler: GpuSampler | None = None
        self.scraper: MetricsScraper | None = None
        self.metrics_reason: str | None = None
        if not isinstance(spec, HttpModelSpec):
            self.gpu_reason = spec.no_server_reason
        elif spec.launch is None and not all(is_local(u) for u in spec.urls()):
            self.gpu_reason = ("served by another machine: GPU memory is measured only for servers on this one "
                               "(launch them with vlmpipe or run vlmpipe beside them)")
        else:
            env = spec.launch.env if spec.launch else {}
            visible = env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
            self.sampler = GpuSampler(parse_visible_devices(visible), interval_s=gpu_interval_s, nvml=nvml)

    def start(self) -> ResourceMonitor:
        if self.sampler is not None:
            self.sampler.start()
        return self

    def watch_server(self, urls: list[str]) -> None:
        local = [u for u in urls if is_local(u)]
        if not isinstance(self.spec, HttpModelSpec):
            self.metrics_reason = self.spec.no_server_reason
        elif not local:
            self.metrics_reason = "the server is on another machine; its /metrics is not scraped"
        else:
            self.scraper = MetricsScraper(root_of(local[0]), interval_s=self.metrics_interval_s).start()

    def stop(self) -> dict[str, Any]:
        unavailable: dict[str, str] = {}
        info: dict[str, Any] = {}
        if self.sampler is not None:
            gpu = self.sampler.stop().as_info()
        else:
            gpu = {"gpu_memory_gb_peak": None, "gpu_memory_gb_mean": None,
                   "unavailable": {"gpu_memory_gb_peak": self.gpu_reason, "gpu_memory_gb_mean": self.gpu_reason}}
        unavailable.update(gpu.pop("unavailable", {}))
        info.update(gpu)
        if self.scraper is not None:
            server = self.scraper.stop().as_info()
        else:
            reason = self.metrics_reason or "no server was watched"
            server = {"server_kv_cache_usage_peak": None, "unavailable": {"server_kv_cache_usage_peak": reason}}
        unavailable.update(server.pop("unavailable", {}))
        info.update(server)
        info["unavailable"] = unavailable
        return info


@asynccontextmanager
async def model_session(cfg: RunConfig, spec: ModelSpec, store: Store | None = None, *,
                        monitor: bool = True) -> AsyncIterator[ServedModel]:
    """Serve ``spec`` for the body of the ``async with``; record what was measured in the store.

    A launched server that dies or never gets ready yields ``ServedModel.error`` (the message ends with its
    log's tail) instead of raising, so the caller fails that model's requests and goes on with the next one.
    """
    mon = ResourceMonitor(spec).start() if monitor else None
    info: dict[str, Any] = {}
    try:
        if not isinstance(spec, HttpModelSpec) or spec.launch is None:
            if mon is not None:
                mon.watch_server(spec.urls() if isinstance(spec, HttpModelSpec) else [])
            yield ServedModel(spec)
            return
        log_dir = Path(cfg.run_dir) / "logs"
        server: LaunchedServer | None = None
        try:
            server = await asyncio.to_thread(start_server, spec, log_dir)
            if store is not None:  # known at once, so a killed run still tells which group to stop
                store.update_model_info(spec.name, {"server": {**server.info(), "status": "starting"}})
            await wait_ready(server)
        except ServerLaunchError as err:
            if server is not None:
                await asyncio.to_thread(stop_server, server)
                info["server"] = {**server.info(), "status": "failed"}
            else:
                info["server"] = {"status": "failed"}
            info["server"]["error"] = str(err)
            yield ServedModel(spec, error=str(err))
            return
        try:
            if mon is not None:
                mon.watch_server([server.base_url])
            yield ServedModel(spec.served_at(server.base_url), server=server)
        finally:
            died = not server.alive()
            if mon is not None:  # the last scrape of /metrics needs the server still up
                info.update(await asyncio.to_thread(mon.stop))
                mon = None
            await asyncio.to_thread(stop_server, server)
            info["server"] = {**server.info(), "status": "died" if died else "stopped"}
            if died:  # it exited while serving: the requests failed with connection errors; say why
                info["server"]["error"] = (f"the server exited with status {server.process.returncode} while "
                                           f"serving; last lines of {server.log_path}:\n{log_tail(server.log_path)}")
            weights = weights_gb_from_log(server.log_path)
            if weights is not None:
                info["gpu_memory_gb_weights"] = weights
    finally:
        if mon is not None:
            info.update(await asyncio.to_thread(mon.stop))
        if store is not None and info:
            store.update_model_info(spec.name, info)
