"""Reading summary.json: dotted paths, numbers, intervals, the run's quality measure, model-vs-model pairs.

A value that is absent is ``None``; nothing absent is ever turned into a zero.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Quality fields in order of preference: the judge's ratio, then chrF, then ROUGE-1 (see DESIGN.md).
QUALITY_FIELDS = [("judge.ratio_mean", "judge ratio"), ("chrf_mean", "chrF"), ("rouge1_f_mean", "ROUGE-1")]

#: Variant suffixes of one model family (quantisations, precisions); stripped to find the family's name.
_VARIANT = re.compile(r"(?i)[-_ ](bf16|fp16|fp8|int8|int4|gptq(-int[48])?|awq|gguf|q[2-8](_k)?(_[msl])?|[0-9]+bit)$")


def get(d: Any, path: str) -> Any:
    """``get(m, "judge.ratio_mean")``: a dotted path into nested dicts, ``None`` where any step is missing."""
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def number(v: Any) -> float | None:
    """A finite float, or ``None`` (missing, NaN, a label, a bool)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def models(summary: dict[str, Any], *, role: str | None = None) -> list[str]:
    """Model names in the summary's order; ``role="candidate"`` keeps the candidates only."""
    return [n for n, m in summary.get("models", {}).items() if role is None or m.get("role", "candidate") == role]


def value(summary: dict[str, Any], model: str, path: str) -> float | None:
    return number(get(summary.get("models", {}).get(model, {}), path))


def present(summary: dict[str, Any], path: str, names: list[str] | None = None) -> bool:
    """Whether any model (of ``names``) has a number at ``path``."""
    return any(value(summary, n, path) is not None for n in (names or models(summary)))


def interval(summary: dict[str, Any], model: str, path: str = "judge.ratio_ci95") -> tuple[float, float] | None:
    """A ``[lo, hi]`` interval as a tuple, or ``None``."""
    v = get(summary.get("models", {}).get(model, {}), path)
    if isinstance(v, list | tuple) and len(v) == 2 and all(number(x) is not None for x in v):
        return float(v[0]), float(v[1])
    return None


def quality_field(summary: dict[str, Any], names: list[str] | None = None) -> tuple[str, str] | None:
    """The quality measure this run has: ``(path, label)`` of the judge ratio, else chrF, else ROUGE-1."""
    for path, label in QUALITY_FIELDS:
        if present(summary, path, names):
            return path, label
    return None


def family(name: str) -> str:
    """``Qwen2-VL-7B-Instruct-GPTQ-Int4`` → ``Qwen2-VL-7B-Instruct``: the model a variant was made from."""
    base = name.rsplit("/", 1)[-1]
    while True:
        stripped = _VARIANT.sub("", base)
        if stripped == base:
            return base
        base = stripped


def pairwise(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary's model-vs-model comparisons, normalised to ``{a, b, metric, diff, ci95, p_a_better, n}``.

    ``pairwise`` is ``{"judge.ratio": [...], ...}`` (one list per measure, as the judge stage writes it) or a
    plain list; the usual spellings are accepted (``model_a``/``a``, ``diff``/``difference``, ``ci95``/``diff_ci95``,
    ``p_a_better``/``prob_a_better``). Entries without two model names and a difference are skipped.
    """
    raw = summary.get("pairwise") or []
    entries: list[tuple[str | None, Any]] = []
    if isinstance(raw, dict):
        for metric, lst in raw.items():
            entries += [(metric, p) for p in (lst if isinstance(lst, list) else [])]
    elif isinstance(raw, list):
        entries = [(None, p) for p in raw]
    out = []
    for metric, p in entries:
        if not isinstance(p, dict):
            continue
        a = p.get("a", p.get("model_a"))
        b = p.get("b", p.get("model_b"))
        diff = number(first(p, "diff", "difference", "ratio_diff", "diff_mean"))
        if not isinstance(a, str) or not isinstance(b, str) or diff is None:
            continue
        ci = first(p, "ci95", "diff_ci95", "ratio_diff_ci95")
        ci95 = (float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None
        out.append({"a": a, "b": b, "metric": p.get("metric") or metric or "judge.ratio_mean", "diff": diff,
                    "ci95": ci95, "p_a_better": number(first(p, "p_a_better", "prob_a_better", "p_a_gt_b")),
                    "n": p.get("n_items", p.get("n"))})
    return out


def find_pair(pairs: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """The comparison of ``a`` against ``b``, turned around when stored as ``b`` vs ``a``."""
    for p in pairs:
        if (p["a"], p["b"]) == (a, b):
            return p
        if (p["a"], p["b"]) == (b, a):
            ci = (-p["ci95"][1], -p["ci95"][0]) if p["ci95"] else None
            pa = 1 - p["p_a_better"] if p["p_a_better"] is not None else None
            return {**p, "a": a, "b": b, "diff": -p["diff"], "ci95": ci, "p_a_better": pa}
    return None


def first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None
