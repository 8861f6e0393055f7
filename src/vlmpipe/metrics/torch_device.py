"""Where a torch-based metric model runs: the ``device`` setting of perplexity (``hf``), BLEURT and BERTScore.

``auto`` (the default) is the first CUDA GPU when torch sees one, else the CPU; ``cpu``, ``cuda`` and ``cuda:N``
are taken as asked, and a GPU that torch cannot see is a clear "unavailable: why", not a silent CPU run. The
device does not name the scorer: the model computes in float32 on both (TF32 stays off, torch's default), so the
numbers agree to float rounding.
"""

from __future__ import annotations

import logging
from typing import Any

from vlmpipe.metrics.base import MetricUnavailable

log = logging.getLogger("vlmpipe")

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


def torch_device(torch: Any, requested: str = "auto", what: str = "metric") -> Any:
    """The ``torch.device`` for ``requested``; raises :class:`MetricUnavailable` when it is a GPU torch cannot use."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if getattr(torch.version, "cuda", None) is None else "no usable GPU or driver"
        raise MetricUnavailable(f"{what}: device {requested!r} was asked for, but torch {torch.__version__} sees no "
                                f"CUDA GPU ({build}); set device: cpu or auto")
    device = torch.device(requested)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise MetricUnavailable(f"{what}: device {requested!r} was asked for, but torch sees {count} CUDA GPU(s)")
    return device


def place(model: Any, torch: Any, requested: str, what: str) -> tuple[Any, Any]:
    """``model`` moved to the device for ``requested``: ``(model, device)``. Under ``auto``, a GPU without room for
    the model (another process, e.g. a vLLM server, holds its memory) means the CPU, with a warning."""
    device = torch_device(torch, requested, what)
    if device.type == "cpu":
        return model, device
    try:
        return model.to(device), device
    except RuntimeError as err:  # torch.OutOfMemoryError is one
        if requested != "auto":
            raise MetricUnavailable(f"{what}: could not move the model to {device}: {err}") from None
        log.warning("%s: the model does not fit on %s (%s); scoring on the CPU", what, device, err)
        return model.to("cpu"), torch.device("cpu")
