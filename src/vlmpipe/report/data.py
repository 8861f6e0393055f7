"""Small accessors between the report and what a run holds (summary.json, the store).

Everything the report renders goes through these functions, so that a change in how a metric, the judge or the
benchmark records its numbers changes one place. A value that is absent is ``None`` and the report leaves it out;
nothing absent is ever turned into a zero.
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Any

from ..store import Store

#: Quality fields in order of preference: the judge's ratio, then chrF, then ROUGE-1 (see DESIGN.md).
QUALITY_FIELDS = [("judge.ratio_mean", "judge ratio"), ("chrf_mean", "chrF"), ("rouge1_f_mean", "ROUGE-1")]

#: Per-generation metrics of the technical sheet (summary_test_stats.xlsx of the original); the rest are automatic.
TECH_METRICS = ("spelling_errors", "non_ru_en_letters", "en_letters_pct", "unique_en_words", "language",
                "off_language", "perplexity")

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
        diff = number(_first(p, "diff", "difference", "ratio_diff", "diff_mean"))
        if not isinstance(a, str) or not isinstance(b, str) or diff is None:
            continue
        ci = _first(p, "ci95", "diff_ci95", "ratio_diff_ci95")
        ci95 = (float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2 else None
        out.append({"a": a, "b": b, "metric": p.get("metric") or metric or "judge.ratio_mean", "diff": diff,
                    "ci95": ci95, "p_a_better": number(_first(p, "p_a_better", "prob_a_better", "p_a_gt_b")),
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


def _first(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


# --- the store ------------------------------------------------------------------------------------------

def judgements(store: Store) -> list[dict[str, Any]] | None:
    """The judge's rows for the current plan's generations (``None`` when the judge stage never ran).

    Only rows of the judge's current signature count (the ``judge`` meta the judge stage records); a store
    without that meta but with rows (an older layout) is read whole. Rows hold model, item and repeat; the
    generation's text is added as ``candidate``.
    """
    try:
        exists = store.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='judgements'").fetchone()
        if not exists:
            return None
        signature = (store.get_meta("judge", {}) or {}).get("signature")
        cols = {r[1] for r in store.conn.execute("PRAGMA table_info(judgements)")}
        if signature and "signature" in cols:
            rows = [dict(r) for r in store.conn.execute("SELECT * FROM judgements WHERE signature = ?",
                                                        (signature,))]
        else:
            rows = [dict(r) for r in store.conn.execute("SELECT * FROM judgements")]
            if not rows:
                return None
    except sqlite3.Error:
        return None
    gens = {g["key"]: g for g in store.generations()}
    out = []
    for r in rows:
        k = r.get("generation_key") or r.get("key")
        if k is not None and k not in gens:
            continue  # a judgement of a generation outside the current plan (an older prompt, a removed model)
        g = gens.get(k or "")
        if g:
            for f in ("model", "item", "repeat"):
                if r.get(f) is None:
                    r[f] = g[f]
            r.setdefault("candidate", g["text"])
        out.append(r)
    order = {k: i for i, k in enumerate(gens)}  # the generations' order: model, item, repeat
    out.sort(key=lambda r: (order.get(r.get("generation_key") or r.get("key") or "", len(order)),
                            str(r.get("candidate_position") or "")))
    return out


def judgement_view(row: dict[str, Any]) -> dict[str, Any]:
    """A judgement's scores and explanation under fixed names, whatever the table calls them."""
    return {
        "candidate_score": number(_first(row, "candidate_score", "score_candidate", "cand_score")),
        "reference_score": number(_first(row, "reference_score", "score_reference", "ref_score")),
        "explanation": _first(row, "explanation_candidate", "explanation", "judge_explanation") or "",
        "error": row.get("error"),
        "position": _first(row, "candidate_position", "ordering", "position"),
    }


def generation_key(row: dict[str, Any]) -> str | None:
    return row.get("generation_key") or (row.get("key") if "generation_key" not in row else None)


# --- per-generation marks -------------------------------------------------------------------------------

def words_of(detail: Any, *keys: str) -> list[str]:
    """The words/numbers a metric's detail lists: a list, or a dict holding one under ``keys``."""
    if isinstance(detail, dict):
        for k in keys:
            if isinstance(detail.get(k), list):
                detail = detail[k]
                break
        else:
            return []
    if isinstance(detail, list):
        return [str(x) for x in detail if isinstance(x, str | int | float) and str(x).strip()]
    return []


def marks(metrics: dict[str, tuple[float | None, Any]], expected_language: str = "ru") -> dict[str, Any]:
    """What the gallery marks on one answer: its language when off, misspelled words, invented numbers."""
    language = None
    lang = metrics.get("language")
    if lang is not None:
        _v, d = lang
        d = d if isinstance(d, str) else get(d, "language") if isinstance(d, dict) else None
        language = d if isinstance(d, str) and re.fullmatch(r"[a-z]{2,3}", d) else None  # not "short"/"undetermined"
    off = metrics.get("off_language")
    if off is not None and number(off[0]) is not None:
        is_off = number(off[0]) > 0  # type: ignore[operator]
    else:
        is_off = language is not None and language != expected_language
    return {
        "language": language,
        "off_language": is_off,
        "misspelled": words_of(metrics.get("spelling_errors", (None, None))[1], "words", "misspelled"),
        "invented": words_of(metrics.get("hallucinated_numbers", (None, None))[1], "numbers", "invented"),
    }


def segments(text: str, misspelled: list[str], invented: list[str]) -> list[tuple[str, str]]:
    """Split ``text`` into ``(piece, kind)`` with kind ``""``, ``"spell"`` or ``"number"`` for highlighting.

    The pieces are plain text; the template escapes each one, so marking never builds HTML from model output.
    """
    terms = [(w, "spell") for w in misspelled] + [(n, "number") for n in invented]
    terms = [(t, k) for t, k in terms if t]
    if not terms or not text:
        return [(text or "", "")]
    kinds = {}
    for t, k in terms:
        kinds.setdefault(t.casefold(), k)
    alternatives = sorted({re.escape(t) for t, _ in terms}, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    out: list[tuple[str, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], ""))
        out.append((m.group(0), kinds.get(m.group(0).casefold(), "spell")))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], ""))
    return out
