"""Which suspected prompt injections swayed the judge (see :mod:`vlmpipe.metrics.injection`).

An answer that addresses the grader is *flagged* when its judged score is an outlier for its model (above the upper
Tukey fence, Q3 + 1.5·IQR, of that model's judged candidate scores): ``summary.json`` gets
``models.<m>.injection = {suspected, flagged, score_fence, items}`` — data for a human to review, never a verdict.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from vlmpipe.analysis.judge import combine
from vlmpipe.core.store import Store
from vlmpipe.metrics.injection import suspected_injection


def upper_fence(scores: list[float]) -> float | None:
    """Tukey's upper fence, Q3 + 1.5·IQR (``None`` with fewer than 4 scores: too few to call an outlier)."""
    if len(scores) < 4:
        return None
    q1, q3 = np.percentile(scores, [25, 75])
    return float(q3 + 1.5 * (q3 - q1))


def _candidate_scores(store: Store) -> dict[str, float]:
    """``{generation key: judged candidate score}`` for the current judge signature (empty when not judged)."""
    meta = store.judge_meta()
    if not meta.get("signature"):
        return {}
    by_gen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in store.judgements(signature=meta["signature"]):
        by_gen[r["generation_key"]].append(r)
    out = {}
    for key, rows in by_gen.items():
        j = combine(rows, meta.get("mode", "both"), int(meta.get("seed", 0)), key)
        if j["status"] == "ok":
            out[key] = j["candidate"]
    return out


def injection_blocks(store: Store, candidates: list[str]) -> dict[str, dict[str, Any]]:
    """``models.<m>.injection`` of every candidate: ``{suspected, flagged, score_fence, items}``."""
    scores = _candidate_scores(store)
    judged: dict[str, list[float]] = defaultdict(list)  # model -> its judged candidate scores
    suspects: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for chunk in store.iter_generations():  # the run's rows streamed: only the suspected ones are kept
        for g in chunk:
            if g["role"] != "candidate" or g["error"] is not None:
                continue
            if g["key"] in scores:
                judged[g["model"]].append(scores[g["key"]])
            phrase = suspected_injection(g["text"])
            if phrase:
                suspects[g["model"]].append(({k: g[k] for k in ("key", "item", "repeat")}, phrase))
    out = {}
    for name in candidates:
        fence = upper_fence(judged.get(name, []))
        entries = []
        for g, phrase in suspects.get(name, []):
            score = scores.get(g["key"])
            outlier = fence is not None and score is not None and score > fence
            entries.append({"item": g["item"], "repeat": g["repeat"], "phrase": phrase,
                            "candidate_score": score, "flagged": outlier})
        out[name] = {"suspected": len(entries), "flagged": sum(e["flagged"] for e in entries),
                     "score_fence": fence, "items": entries}
    return out
