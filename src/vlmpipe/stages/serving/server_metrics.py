"""vLLM's Prometheus ``/metrics`` while a model is served: KV-cache usage, running and waiting requests,
and whether prefix caching is on.

Scraped every ``interval_s`` in a daemon thread. Gauge names changed across vLLM versions
(``vllm:gpu_cache_usage_perc`` became ``vllm:kv_cache_usage_perc``); both are read. A server without
``/metrics`` (SGLang without ``--enable-metrics``, llama.cpp, OpenAI) yields ``None`` figures and a reason.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
CACHE_CONFIG = "vllm:cache_config_info"

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample of a Prometheus text exposition (comments skipped)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, value))
    return out


def snapshot(samples: list[tuple[str, dict[str, str], float]]) -> dict[str, Any]:
    """The figures vlmpipe reads from one scrape (series of the same gauge summed, cache usage maxed)."""
    snap: dict[str, Any] = {}
    for name, labels, value in samples:
        if name in KV_CACHE:
            snap["kv_cache_usage"] = max(snap.get("kv_cache_usage", 0.0), value)
        elif name == RUNNING:
            snap["running"] = snap.get("running", 0.0) + value
        elif name == WAITING:
            snap["waiting"] = snap.get("waiting", 0.0) + value
        elif name == CACHE_CONFIG and "enable_prefix_caching" in labels:
            snap["prefix_caching"] = labels["enable_prefix_caching"].lower() == "true"
    return snap


def scrape(root_url: str, timeout_s: float = 2.0, client: httpx.Client | None = None) -> dict[str, Any] | None:
    """One scrape of ``root_url/metrics``; ``None`` when there is no vLLM metrics endpoint."""
    try:
        if client is not None:
            resp = client.get("/metrics")
        else:
            resp = httpx.get(root_url.rstrip("/") + "/metrics", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    snap = snapshot(parse_prometheus(resp.text))
    return snap or None


def root_of(base_url: str) -> str:
    """``http://host:port/v1`` → ``http://host:port``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass
class ServerUsage:
    kv_cache_usage_peak: float | None = None
    requests_running_max: float | None = None
    requests_waiting_max: float | None = None
    prefix_caching: bool | None = None
    scrapes: int = 0
    reason: str | None = None

    def as_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "server_kv_cache_usage_peak": self.kv_cache_usage_peak,
            "server_requests_running_max": self.requests_running_max,
            "server_requests_waiting_max": self.requests_waiting_max,
        }
        if self.prefix_caching is not None:
            info["prefix_caching"] = "on" if self.prefix_caching else "off"
        if self.reason:
            info["unavailable"] = {k: self.reason for k in info if info[k] is None}
        return info


@dataclass
class MetricsScraper:
    """Scrapes ``root_url/metrics`` every ``interval_s`` between :meth:`start` and :meth:`stop`."""

    root_url: str
    interval_s: float = 1.0
    _snaps: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MetricsScraper:
        self._thread = threading.Thread(target=self._loop, name="vlmpipe-metrics", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        with httpx.Client(base_url=self.root_url, timeout=2.0) as client:
            while True:
                snap = scrape(self.root_url, client=client)
                if snap:
                    self._snaps.append(snap)
                elif not self._snaps:
                    return  # no metrics endpoint: stop asking
                if self._stop.wait(self.interval_s):
                    return

    def stop(self) -> ServerUsage:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
        last = scrape(self.root_url, timeout_s=1.0)  # a short run may end before the thread's first scrape
        if last:
            self._snaps.append(last)
        snaps = self._snaps
        if not snaps:
            return ServerUsage(reason=f"no vLLM metrics at {self.root_url}/metrics")

        def peak(key: str) -> float | None:
            vals = [s[key] for s in snaps if key in s]
            return max(vals) if vals else None

        flags = [s["prefix_caching"] for s in snaps if "prefix_caching" in s]
        usage = ServerUsage(kv_cache_usage_peak=peak("kv_cache_usage"), requests_running_max=peak("running"),
                            requests_waiting_max=peak("waiting"), prefix_caching=flags[-1] if flags else None,
                            scrapes=len(snaps))
        if usage.kv_cache_usage_peak is None:
            usage.reason = "the server's /metrics has no KV-cache gauge"
        return usage
