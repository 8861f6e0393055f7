"""Model families: variants of one model (quantisations, precisions) share a family, so the report can compare
them with each other (``Qwen2-VL-7B-Instruct-GPTQ-Int4`` and ``Qwen/Qwen2-VL-7B-Instruct-AWQ`` are both
``Qwen2-VL-7B-Instruct``)."""

from __future__ import annotations

import re

#: Variant suffixes of one model family (quantisations, precisions); stripped to find the family's name.
_VARIANT = re.compile(r"(?i)[-_ ](bf16|fp16|fp8|int8|int4|gptq(-int[48])?|awq|gguf|q[2-8](_k)?(_[msl])?|[0-9]+bit)$")


def family(name: str) -> str:
    """``Qwen2-VL-7B-Instruct-GPTQ-Int4`` → ``Qwen2-VL-7B-Instruct``: the model a variant was made from."""
    base = name.rsplit("/", 1)[-1]
    while True:
        stripped = _VARIANT.sub("", base)
        if stripped == base:
            return base
        base = stripped


def same_family(a: str, b: str) -> bool:
    return family(a) == family(b)
