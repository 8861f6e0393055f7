"""The model catalogue: the specification's eight Qwen2-VL variants, ready to be served by vLLM.

A model spec that says ``preset: qwen2-vl-7b-instruct-awq`` gets the preset's Hugging Face id as ``model`` and
its ``launch`` settings (``engine: vllm`` with the preset's arguments); whatever the spec sets itself wins, and
a ``launch`` mapping in the spec is merged over the preset's. ``launch: null`` in the spec keeps the preset's
model id but serves it elsewhere (``base_url``).

Quantised checkpoints carry their method in ``quantization_config``, and vLLM reads it from there and picks the
fastest kernel the GPU supports (Marlin on Ampere and newer). Passing ``--quantization gptq`` or ``awq``
explicitly *forces* the older, slower kernels, so the presets leave ``quantization`` unset and only record the
method; set ``launch: {quantization: ...}`` to force one.

``gpu_memory_gb`` is the range of the specification's table (input of 1 to 6144 tokens). vLLM reserves
``gpu_memory_utilization`` of the GPU for weights and KV cache up front, so the memory NVML sees while a model
is served is that reservation, not these figures (see docs/serving.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    hf_id: str
    size: str
    weights: str
    quantization: str | None
    gpu_memory_gb: tuple[float, float]
    launch: dict[str, Any] = field(default_factory=dict)

    def launch_dict(self) -> dict[str, Any]:
        return {"engine": "vllm", **self.launch}


_COMMON: dict[str, Any] = {"max_model_len": 8192, "limit_mm_per_prompt": {"image": 1}}

# (size, weights, quantization method, dtype, GPU memory range in GB from the specification's table)
_TABLE: list[tuple[str, str, str | None, str, tuple[float, float]]] = [
    ("7B", "BF16", None, "bfloat16", (16.07, 21.56)),
    ("7B", "GPTQ-Int8", "gptq", "float16", (10.11, 15.61)),
    ("7B", "GPTQ-Int4", "gptq", "float16", (7.20, 12.69)),
    ("7B", "AWQ", "awq", "float16", (7.07, 12.56)),
    ("2B", "BF16", None, "bfloat16", (4.68, 10.01)),
    ("2B", "GPTQ-Int8", "gptq", "float16", (3.55, 8.87)),
    ("2B", "GPTQ-Int4", "gptq", "float16", (2.91, 8.21)),
    ("2B", "AWQ", "awq", "float16", (2.88, 8.18)),
]


def _make(size: str, weights: str, quant: str | None, dtype: str, mem: tuple[float, float]) -> Preset:
    suffix = "" if weights == "BF16" else f"-{weights}"
    hf_id = f"Qwen/Qwen2-VL-{size}-Instruct{suffix}"
    return Preset(name=hf_id.split("/", 1)[1].lower(), hf_id=hf_id, size=size, weights=weights,
                  quantization=quant, gpu_memory_gb=mem, launch={**_COMMON, "dtype": dtype})


PRESETS: dict[str, Preset] = {p.name: p for p in (_make(*row) for row in _TABLE)}


class UnknownPreset(KeyError):
    def __str__(self) -> str:
        return f"unknown preset {self.args[0]!r}; known presets: {', '.join(PRESETS)}"


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise UnknownPreset(name) from None


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """A model spec's raw mapping with its preset's fields filled in (the spec's own values win)."""
    if not data.get("preset"):
        return data
    preset = get_preset(str(data["preset"]))
    out = dict(data)
    out.setdefault("name", preset.name)
    out.setdefault("model", preset.hf_id)
    if "launch" not in out or out["launch"] == "vllm":
        out["launch"] = preset.launch_dict()
    elif isinstance(out["launch"], dict) and out["launch"].get("engine", "vllm") == "vllm" \
            and "command" not in out["launch"]:
        out["launch"] = {**preset.launch_dict(), **out["launch"]}
    return out
