"""Per-model judge aggregates for ``summary.json`` (``models.<m>.judge``, ``pairwise``, ``judge_status``).

One *judgement* per candidate generation: in mode ``both`` the candidate and reference scores of the two
orders are averaged (a generation judged in only one order keeps that one); in mode ``random`` the row of the
seeded order; for recorded judgements the one recorded row. Its ratio is candidate / reference score; a
reference score of 0 has no ratio and is counted in ``n_reference_zero``. Failed judgements (malformed or
out-of-range answers, transport errors) are counted in ``n_failed``, never scored as 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Any

import numpy as np

from vlmpipe.core import stats
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.stages.judge.run import positions, text_sha

NOT_CONFIGURED = (
    "the LLM judge is not configured. Enable it with `judge: {enabled: true, model: {...}}` in the run's config "
    "and run `vlmpipe judge RUN` (docs/judge.md)"
)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def combine(rows: list[dict[str, Any]], mode: str, seed: int, generation_key: str) -> dict[str, Any]:
    """One generation's judgement from its rows: ``{"status": ok|failed|pending, scores, per-order info}``."""
    if mode == "random":
        wanted = positions("random", seed, generation_key)[0]
        rows = [r for r in rows if r["candidate_position"] == wanted]
    ok = [r for r in rows if r["error"] is None]
    if not ok:
        return {"status": "failed" if rows else "pending", "all_rows": rows}
    by_pos = {r["candidate_position"]: r for r in ok}
    out: dict[str, Any] = {
        "status": "ok",
        "candidate": float(np.mean([r["candidate_score"] for r in ok])),
        "reference": float(np.mean([r["reference_score"] for r in ok])),
        "rows": ok,
        "all_rows": rows,
    }
    if "A" in by_pos and "B" in by_pos:
        a, b = by_pos["A"], by_pos["B"]
        diff_a = a["candidate_score"] - a["reference_score"]  # candidate shown first
        diff_b = b["candidate_score"] - b["reference_score"]  # reference shown first
        out["consistent"] = _sign(diff_a) == _sign(diff_b)
        out["first_bonus"] = (diff_a - diff_b) / 2
    return out


def _rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def summarize(judged: list[tuple[str, dict[str, Any]]], *, mode: str, seed: int,
              n_resamples: int = stats.N_RESAMPLES) -> dict[str, Any]:
    """The ``judge`` block of one model from its ``(item, combined judgement)`` pairs."""
    ok = [(item, j) for item, j in judged if j["status"] == "ok"]
    ratios = [(item, j["candidate"] / j["reference"]) for item, j in ok if j["reference"] > 0]
    values = [r for _, r in ratios]
    clusters = [item for item, _ in ratios]
    rows = [r for _, j in ok for r in j["rows"]]
    first_pref = [
        (r["candidate_score"] > r["reference_score"]) == (r["candidate_position"] == "A")
        for r in rows if r["candidate_position"] in ("A", "B") and r["candidate_score"] != r["reference_score"]
    ]
    consistency = [j["consistent"] for _, j in ok if "consistent" in j]
    bonus = [j["first_bonus"] for _, j in ok if "first_bonus" in j]
    all_rows = [r for _, j in judged for r in j["all_rows"]]
    tokens_p = [r["prompt_tokens"] for r in all_rows if r.get("prompt_tokens") is not None]
    tokens_c = [r["completion_tokens"] for r in all_rows if r.get("completion_tokens") is not None]
    return {
        "ratio_mean": float(np.mean(values)) if values else None,
        "ratio_ci95_naive": stats.naive_ci95(values),
        "ratio_ci95": stats.cluster_bootstrap_ci95(values, clusters, n_resamples=n_resamples, seed=seed),
        "ratio_ci95_method": f"cluster bootstrap over items, {n_resamples} resamples, seed {seed}",
        "candidate_score_mean": float(np.mean([j["candidate"] for _, j in ok])) if ok else None,
        "reference_score_mean": float(np.mean([j["reference"] for _, j in ok])) if ok else None,
        "win_rate": _rate([j["candidate"] > j["reference"] for _, j in ok]),
        "tie_rate": _rate([j["candidate"] == j["reference"] for _, j in ok]),
        "loss_rate": _rate([j["candidate"] < j["reference"] for _, j in ok]),
        "n": len(ok),
        "n_failed": sum(1 for _, j in judged if j["status"] == "failed"),
        "n_pending": sum(1 for _, j in judged if j["status"] == "pending"),
        "n_reference_zero": len(ok) - len(values),
        "n_items": len(set(clusters)),
        "position_consistency": _rate(consistency),
        "first_position_preference": _rate(first_pref),
        "first_position_bonus": float(np.mean(bonus)) if bonus else None,
        "mode": mode,
        "prompt_tokens": int(sum(tokens_p)) if tokens_p else None,
        "completion_tokens": int(sum(tokens_c)) if tokens_c else None,
    }


def model_judgements(store: Store, meta: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{model: [(item, combined judgement), ...]}`` over the current plan's successful candidate generations."""
    signature = meta.get("signature")
    mode = meta.get("mode", "both")
    seed = int(meta.get("seed", 0))
    refs = {i["id"]: text_sha(i["reference"]) for i in store.items()}
    by_gen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in store.judgements(signature=signature):
        if r["reference_sha"] is None or r["reference_sha"] == refs.get(r["item"]):
            by_gen[r["generation_key"]].append(r)
    out: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for g in store.generations(role="candidate"):
        rows = by_gen.get(g["key"], [])
        if g["error"] is not None and not rows:
            continue
        out[g["model"]].append((g["item"], combine(rows, mode, seed, g["key"])))
    return out


def add_judge(cfg: RunConfig | None, store: Store, summary: dict[str, Any]) -> None:
    """Fill ``judge`` of every candidate model, ``pairwise["judge.ratio"]`` and ``judge_status`` in place."""
    meta = store.judge_meta()
    enabled = bool(cfg and cfg.judge.enabled)
    models = summary.get("models", {})
    candidates = [name for name, m in models.items() if m.get("role") == "candidate"]
    if not meta.get("signature"):
        why = (NOT_CONFIGURED if not enabled else
               "the judge is configured but has not run yet: run `vlmpipe judge RUN`")
        summary["judge_status"] = {"configured": enabled, "state": "not_configured" if not enabled else "not_run",
                                   "message": why}
        for name in candidates:
            models[name]["judge"] = None
            models[name].setdefault("unavailable", {})["judge"] = why
        return
    mode = meta.get("mode", "both")
    seed = int(cfg.judge.seed if cfg else meta.get("seed", 0))
    per_model = model_judgements(store, meta)
    ratios: dict[str, tuple[list[float], list[str]]] = {}
    n_failed = 0
    for name in candidates:
        block = summarize(per_model.get(name, []), mode=mode, seed=seed)
        models[name]["judge"] = block
        n_failed += block["n_failed"]
        if block["ratio_mean"] is None:
            models[name].setdefault("unavailable", {})["judge"] = (
                f"no usable judgement: {block['n_failed']} failed, {block['n_pending']} not judged yet, "
                f"{block['n_reference_zero']} with reference score 0 (see report/judgements.csv)")
        pairs = [(item, j["candidate"] / j["reference"]) for item, j in per_model.get(name, [])
                 if j["status"] == "ok" and j["reference"] > 0]
        ratios[name] = ([r for _, r in pairs], [i for i, _ in pairs])
    pairwise = []
    for a, b in combinations(candidates, 2):
        res = stats.paired_bootstrap(ratios[a][0], ratios[a][1], ratios[b][0], ratios[b][1], seed=seed)
        if res is not None:
            pairwise.append({"a": a, "b": b, "metric": "judge.ratio_mean", "diff": res["diff"], "ci95": res["ci95"],
                             "p_a_better": res["p_a_better"], "n_items": res["n_clusters"],
                             "separable": not (res["ci95"][0] <= 0 <= res["ci95"][1])})
    summary.setdefault("pairwise", {})["judge.ratio"] = pairwise
    cost = store.judge_cost(signature=meta["signature"])
    summary["judge_status"] = {
        "configured": True,
        "state": "recorded" if mode == "recorded" else "done",
        "mode": mode,
        "judge_model": meta.get("model"),
        "templates": meta.get("templates"),
        "n_failed": n_failed,
        "cost_usd": None if cost is None or (isinstance(cost, float) and math.isnan(cost)) else float(cost),
        "message": meta.get("source") or f"judged by {meta.get('model')} in mode {mode}",
    }


def plan_judgements(store: Store) -> list[dict[str, Any]] | None:
    """The judge's rows of the current signature for the current plan's generations, in the generations' order
    (``None`` when the judge stage never ran). Each row gets the generation's text as ``candidate``."""
    signature = store.judge_meta().get("signature")
    if not signature:
        return None
    gens = {g["key"]: g for g in store.generations()}
    out = []
    for r in store.judgements(signature=signature):
        g = gens.get(r["generation_key"])
        if g is None:
            continue  # a judgement of a generation outside the current plan (an older prompt, a removed model)
        r.setdefault("candidate", g["text"])
        out.append(r)
    order = {k: i for i, k in enumerate(gens)}  # model, item, repeat
    out.sort(key=lambda r: (order[r["generation_key"]], str(r.get("candidate_position") or "")))
    return out
