"""GPU memory through NVML (with the library absent, failing, or replaced by a stand-in module) and vLLM's
Prometheus metrics."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest

from vlmpipe.providers.ocr import OcrSpec
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.serving import gpu
from vlmpipe.stages.serving.gpu import GIB, GpuSampler, load_nvml, parse_visible_devices
from vlmpipe.stages.serving.server_metrics import parse_prometheus, snapshot
from vlmpipe.stages.serving.session import ResourceMonitor


class FakeNVMLError(Exception):
    pass


def fake_pynvml(used_gb: dict[str, list[float]], *, fail_init: bool = False) -> Any:
    """A stand-in ``pynvml``: devices "0", "1" (UUIDs GPU-a, GPU-b); each read of a device's memory takes the
    next value of its list (the last one repeats)."""
    mod = types.SimpleNamespace(NVMLError=FakeNVMLError, calls=[], inits=0, shutdowns=0)

    def init() -> None:
        if fail_init:
            raise FakeNVMLError("Driver Not Loaded")
        mod.inits += 1

    def shutdown() -> None:
        mod.shutdowns += 1

    def memory(handle: str) -> Any:
        values = used_gb[handle]
        value = values.pop(0) if len(values) > 1 else values[0]
        mod.calls.append(handle)
        return types.SimpleNamespace(used=int(value * GIB), total=int(80 * GIB), free=0)

    mod.nvmlInit = init
    mod.nvmlShutdown = shutdown
    mod.nvmlDeviceGetCount = lambda: 2
    mod.nvmlDeviceGetHandleByIndex = lambda i: str(i)
    mod.nvmlDeviceGetHandleByUUID = lambda u: {"GPU-a": "0", "GPU-b": "1"}[u]
    mod.nvmlDeviceGetMemoryInfo = memory
    return mod


def test_missing_package_is_a_reason_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    module, reason = load_nvml()
    assert module is None
    assert reason == "NVML unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    usage = GpuSampler().start().stop()
    assert usage.peak_gb is None and usage.mean_gb is None and usage.reason == reason
    assert usage.as_info()["unavailable"]["gpu_memory_gb_peak"] == reason


def test_nvml_init_error_is_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    def broken() -> None:
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", broken)
    module, reason = load_nvml()
    assert module is None and reason == "NVML unavailable: NVML Shared Library Not Found"
    # a module given explicitly that fails to initialise is handled the same way
    usage = GpuSampler(nvml=fake_pynvml({"0": [1.0]}, fail_init=True)).start().stop()
    assert usage.peak_gb is None and usage.reason == "NVML unavailable: Driver Not Loaded"


def test_sampling_peak_mean_and_baseline_with_a_stand_in_module() -> None:
    nv = fake_pynvml({"0": [1.0, 4.0, 2.0], "1": [0.5]})
    sampler = GpuSampler(interval_s=0.01, nvml=nv).start()
    deadline = time.monotonic() + 10
    while len(sampler._values) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    usage = sampler.stop()
    values = sampler._values
    assert usage.baseline_gb == pytest.approx(1.5)  # first read of both devices, before sampling starts
    assert values[0] == pytest.approx(4.5) and all(v == pytest.approx(2.5) for v in values[1:])
    assert usage.peak_gb == pytest.approx(4.5)
    assert usage.mean_gb == pytest.approx((4.5 + 2.5 * (len(values) - 1)) / len(values))
    assert usage.samples == len(values) and usage.devices == ["0", "1"] and usage.reason is None
    assert nv.inits == 1 and nv.shutdowns == 1


def test_only_the_visible_devices_are_sampled() -> None:
    assert parse_visible_devices(None) is None
    assert parse_visible_devices("2, 3") == ["2", "3"]
    nv = fake_pynvml({"0": [9.0], "1": [3.0]})
    usage = GpuSampler(devices=parse_visible_devices("GPU-b"), interval_s=0.01, nvml=nv).start().stop()
    assert set(nv.calls) == {"1"} and usage.peak_gb == pytest.approx(3.0) and usage.devices == ["GPU-b"]
    usage = GpuSampler(devices=[], nvml=fake_pynvml({"0": [1.0]})).start().stop()
    assert usage.peak_gb is None and "no GPU device to sample" in (usage.reason or "")


def test_monitor_reasons_for_remote_servers_and_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    remote = ResourceMonitor(OpenAISpec(name="gpt", base_url="https://api.openai.com/v1")).start()
    remote.watch_server(["https://api.openai.com/v1"])
    info = remote.stop()
    assert info["gpu_memory_gb_peak"] is None
    assert info["unavailable"]["gpu_memory_gb_peak"].startswith("served by another machine")
    assert "another machine" in info["unavailable"]["server_kv_cache_usage_peak"]
    ocr = ResourceMonitor(OcrSpec(name="ocr")).start().stop()
    assert ocr["unavailable"]["gpu_memory_gb_peak"] == "the OCR baseline runs on the CPU, without a server"
    # a local server is sampled through NVML; here NVML is replaced and fails
    monkeypatch.setattr(gpu, "load_nvml", lambda: (None, "NVML unavailable: NVML Shared Library Not Found"))
    local = ResourceMonitor(OpenAISpec(name="local", base_url="http://127.0.0.1:1/v1")).start().stop()
    assert local["unavailable"]["gpu_memory_gb_peak"] == "NVML unavailable: NVML Shared Library Not Found"


def test_prometheus_parsing_of_both_vllm_generations() -> None:
    v0 = "# HELP x\nvllm:gpu_cache_usage_perc 0.25\nvllm:num_requests_running 1\nvllm:num_requests_waiting 0\n"
    assert snapshot(parse_prometheus(v0)) == {"kv_cache_usage": 0.25, "running": 1.0, "waiting": 0.0}
    v1 = (
        'vllm:kv_cache_usage_perc{engine="0",model_name="q"} 0.5\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="q"} 0.75\n'
        'vllm:num_requests_running{engine="0",model_name="q"} 3.0\n'
        'vllm:num_requests_running{engine="1",model_name="q"} 4.0\n'
        'vllm:cache_config_info{block_size="16",enable_prefix_caching="True",gpu_memory_utilization="0.9"} 1.0\n'
        "process_cpu_seconds_total 12.5\nbroken line\n"
    )
    snap = snapshot(parse_prometheus(v1))
    assert snap == {"kv_cache_usage": 0.75, "running": 7.0, "prefix_caching": True}
    assert parse_prometheus(v1)[4][1]["gpu_memory_utilization"] == "0.9"
