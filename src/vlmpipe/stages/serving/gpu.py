"""GPU memory while a model is served: NVML (nvidia-ml-py) sampled in a background thread.

Memory is the *used* memory of the sampled devices as NVML reports it (what nvidia-smi shows), summed over
the devices, in GB of 2**30 bytes. The devices are those of ``CUDA_VISIBLE_DEVICES`` (the launch's ``env``
first, then vlmpipe's environment), else every device. ``baseline`` is one sample taken before the server
starts, so ``peak - baseline`` is what the model added when the GPU is shared.

Without NVML (no driver, no GPU, the package missing) the figures are ``None`` and ``reason`` says why.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

GIB = 1024**3


@dataclass
class GpuUsage:
    """The outcome of sampling: ``None`` figures with ``reason`` when nothing could be measured."""

    peak_gb: float | None = None
    mean_gb: float | None = None
    baseline_gb: float | None = None
    samples: int = 0
    devices: list[str] = field(default_factory=list)
    reason: str | None = None

    def as_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "gpu_memory_gb_peak": self.peak_gb,
            "gpu_memory_gb_mean": self.mean_gb,
            "gpu_memory_gb_baseline": self.baseline_gb,
            "gpu_devices": self.devices,
            "gpu_samples": self.samples,
        }
        if self.reason:
            info["unavailable"] = {"gpu_memory_gb_peak": self.reason, "gpu_memory_gb_mean": self.reason}
        return info


def load_nvml() -> tuple[ModuleType | None, str | None]:
    """The initialised ``pynvml`` module, or ``None`` and why it cannot be used here."""
    try:
        import pynvml
    except ImportError:
        return None, "NVML unavailable: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        return None, f"NVML unavailable: {err}"
    except OSError as err:  # pragma: no cover - a broken driver install
        return None, f"NVML unavailable: {err}"
    return pynvml, None


def parse_visible_devices(value: str | None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list of indexes or UUIDs; ``None`` when unset (all devices)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


class GpuSampler:
    """Samples used GPU memory every ``interval_s`` in a daemon thread between :meth:`start` and :meth:`stop`.

    ``nvml`` may be given (tests pass a stand-in module); by default :func:`load_nvml` is used.
    """

    def __init__(self, devices: list[str] | None = None, interval_s: float = 0.5,
                 nvml: ModuleType | Any | None = None) -> None:
        self.interval_s = interval_s
        self.wanted = devices
        self._nvml = nvml
        self._reason: str | None = None
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._values: list[float] = []
        self._baseline: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False

    def _open(self) -> None:
        if self._nvml is None:
            self._nvml, self._reason = load_nvml()
        elif hasattr(self._nvml, "nvmlInit"):
            try:
                self._nvml.nvmlInit()
            except Exception as err:  # NVMLError of the module given
                self._nvml, self._reason = None, f"NVML unavailable: {err}"
        if self._nvml is None:
            return
        nv = self._nvml
        ids: list[str] = self.wanted or []
        try:
            if self.wanted is None:
                ids = [str(i) for i in range(nv.nvmlDeviceGetCount())]
            for ident in ids:
                if ident.isdigit():
                    handle = nv.nvmlDeviceGetHandleByIndex(int(ident))
                else:
                    handle = nv.nvmlDeviceGetHandleByUUID(ident)
                self._handles.append(handle)
                self._names.append(ident)
        except Exception as err:
            self._reason = f"NVML unavailable: cannot open GPU devices {ids}: {err}"
            self._handles = []
            return
        if not self._handles:
            self._reason = "no GPU device to sample (CUDA_VISIBLE_DEVICES is empty or no device is present)"

    def sample_once(self) -> float | None:
        """Used memory of the devices now, in GB; ``None`` when it cannot be read."""
        if not self._handles or self._nvml is None:
            return None
        try:
            used = sum(int(self._nvml.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles)
        except Exception as err:
            self._reason = f"NVML read failed: {err}"
            return None
        return used / GIB

    def start(self) -> GpuSampler:
        """Open the devices, take the baseline sample and start sampling."""
        if self._started:
            return self
        self._started = True
        self._open()
        if self._handles:
            self._baseline = self.sample_once()
            self._thread = threading.Thread(target=self._loop, name="vlmpipe-gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            value = self.sample_once()
            if value is not None:
                self._values.append(value)
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> GpuUsage:
        """Stop sampling (taking one last sample) and summarise."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            last = self.sample_once()
            if last is not None:
                self._values.append(last)
        if self._nvml is not None and hasattr(self._nvml, "nvmlShutdown"):
            with contextlib.suppress(Exception):  # shutting down twice is harmless
                self._nvml.nvmlShutdown()
        if not self._values:
            return GpuUsage(devices=self._names, reason=self._reason or "NVML unavailable: no sample taken")
        return GpuUsage(
            peak_gb=max(self._values), mean_gb=sum(self._values) / len(self._values),
            baseline_gb=self._baseline, samples=len(self._values), devices=self._names,
        )
