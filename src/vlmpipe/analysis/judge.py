"""Per-model judge aggregates for ``summary.json`` (``models.<m>.judge``, ``judge_status``; the paired
differences of the ratio are made with every other field's, :mod:`vlmpipe.analysis.aggregate`).

One *judgement* per candidate generation: in mode ``both`` the candidate and reference scores of the two
orders are averaged (a generation judged in only one order keeps that one); in mode ``random`` the row of the
seeded order; for recorded judgements the one recorded row. Its ratio is candidate / reference score; a
reference score of 0 has no ratio and is counted in ``n_reference_zero``. Failed judgements (malformed or
out-of-range answers, transport errors) are counted in ``n_failed``, never scored as 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vlmpipe.analysis.agreement import panel_agreement
from vlmpipe.analysis.intervals import Series, field_value
from vlmpipe.core import stats
from vlmpipe.core.config import RunConfig
from vlmpipe.core.store import Store
from vlmpipe.stages.judge.run import HUMAN, positions, text_sha

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


def combine_panel(per_judge: list[dict[str, Any]]) -> dict[str, Any]:
    """One generation's panel judgement from each judge's combined judgement: the judges' candidate scores averaged,
    and their reference scores (so the ratio is mean candidate / mean reference, per judgement). Usable only when
    every judge's is (a judgement one judge failed on counts as failed, so the panel mean is always over the same
    judges); ``consistency_flags`` and ``first_bonuses`` pool the judges' position checks."""
    all_rows = [r for j in per_judge for r in j["all_rows"]]
    statuses = {j["status"] for j in per_judge}
    if statuses != {"ok"}:
        return {"status": "failed" if "failed" in statuses else "pending", "all_rows": all_rows}
    return {
        "status": "ok",
        "candidate": float(np.mean([j["candidate"] for j in per_judge])),
        "reference": float(np.mean([j["reference"] for j in per_judge])),
        "rows": [r for j in per_judge for r in j["rows"]],
        "all_rows": all_rows,
        "consistency_flags": [j["consistent"] for j in per_judge if "consistent" in j],
        "first_bonuses": [j["first_bonus"] for j in per_judge if "first_bonus" in j],
    }


def _rate(flags: list[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def ratio_series(judged: list[tuple[str, dict[str, Any]]], cluster: dict[str, str] | None = None) -> Series:
    """The per-judgement ratios (candidate / reference score) of the usable judgements, by screenshot (``cluster``:
    item → screenshot; each item is its own screenshot without it)."""
    series = Series()
    for item, j in judged:
        if j["status"] == "ok" and j["reference"] > 0:
            series.add(j["candidate"] / j["reference"], (cluster or {}).get(item, item))
    return series


def summarize(judged: list[tuple[str, dict[str, Any]]], *, mode: str, seed: int,
              n_resamples: int = stats.N_RESAMPLES, cluster: dict[str, str] | None = None,
              kind: str = "pairwise") -> dict[str, Any]:
    """The ``judge`` block of one model from its ``(item, combined judgement)`` pairs. The ratio is the
    ``judge.ratio_mean`` field, aggregated like any per-generation metric (:func:`field_value`). A graded judge
    compares no two answers: its win, tie and loss rates are ``None``."""
    ok = [(item, j) for item, j in judged if j["status"] == "ok"]
    ratio = field_value(ratio_series(judged, cluster), "mean", seed=seed, n_resamples=n_resamples)
    rows = [r for _, j in ok for r in j["rows"]]
    first_pref = [
        (r["candidate_score"] > r["reference_score"]) == (r["candidate_position"] == "A")
        for r in rows if r["candidate_position"] in ("A", "B") and r["candidate_score"] != r["reference_score"]
    ]
    consistency = [flag for _, j in ok
                   for flag in j.get("consistency_flags", [j["consistent"]] if "consistent" in j else [])]
    bonus = [b for _, j in ok for b in j.get("first_bonuses", [j["first_bonus"]] if "first_bonus" in j else [])]
    all_rows = [r for _, j in judged for r in j["all_rows"]]
    tokens_p = [r["prompt_tokens"] for r in all_rows if r.get("prompt_tokens") is not None]
    tokens_c = [r["completion_tokens"] for r in all_rows if r.get("completion_tokens") is not None]
    live = mode != "recorded"  # recorded judgements were sent by the original pipeline, not by this one
    return {
        "ratio_mean": ratio.value,
        "ratio_ci95_naive": ratio.ci95_naive,
        "ratio_ci95": ratio.ci95,
        "ratio_ci95_method": f"cluster bootstrap over items, {n_resamples} resamples, seed {seed}",
        "candidate_score_mean": float(np.mean([j["candidate"] for _, j in ok])) if ok else None,
        "reference_score_mean": float(np.mean([j["reference"] for _, j in ok])) if ok else None,
        "win_rate": _rate([j["candidate"] > j["reference"] for _, j in ok]) if kind == "pairwise" else None,
        "tie_rate": _rate([j["candidate"] == j["reference"] for _, j in ok]) if kind == "pairwise" else None,
        "loss_rate": _rate([j["candidate"] < j["reference"] for _, j in ok]) if kind == "pairwise" else None,
        "n": len(ok),
        "n_failed": sum(1 for _, j in judged if j["status"] == "failed"),
        "n_pending": sum(1 for _, j in judged if j["status"] == "pending"),
        "n_reference_zero": len(ok) - ratio.n,
        "n_items": ratio.n_items,
        "position_consistency": _rate(consistency),
        "first_position_preference": _rate(first_pref),
        "first_position_bonus": float(np.mean(bonus)) if bonus else None,
        "mode": mode,
        "prompt_tokens": int(sum(tokens_p)) if tokens_p else None,
        "completion_tokens": int(sum(tokens_c)) if tokens_c else None,
        "requests_sent": sum(int(r.get("attempts") or 0) for r in all_rows if not r.get("reused")) if live else None,
        "requests_reused": sum(1 for r in all_rows if r.get("reused")) if live else None,
    }


def judges_of(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The judges of the stored judgements: a panel's (``meta["judges"]``), or the single judge's."""
    return list(meta.get("judges") or [{"name": meta.get("model"), "signature": meta.get("signature")}])


def _current(store: Store, meta: dict[str, Any], signature: str | None = None) -> list[dict[str, Any]]:
    """The judge's rows of its current signature (``signature``: one judge of a panel) whose reference is still the
    item's."""
    refs = {i["id"]: text_sha(i["reference"]) for i in store.items()}
    return [r for r in store.judgements(signature=signature or meta.get("signature"))
            if r["reference_sha"] is None or r["reference_sha"] == refs.get(r["item"])]


def human_scores(store: Store, meta: dict[str, Any]) -> dict[str, float]:
    """``{item: the judges' mean score of the human answer}`` (graded tasks in mode ``both``; empty otherwise)."""
    per_item: dict[str, list[float]] = defaultdict(list)
    for judge in judges_of(meta):
        for r in _current(store, meta, judge["signature"]):
            if r["candidate_position"] == HUMAN and r["error"] is None:
                per_item[r["item"]].append(float(r["candidate_score"]))
    return {item: float(np.mean(v)) for item, v in per_item.items()}


def model_judgements(store: Store, meta: dict[str, Any], signature: str | None = None
                     ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{model: [(item, combined judgement), ...]}`` over the current plan's successful candidate generations (of
    the judge with ``signature``; default: the single judge's). Each judgement carries its ``generation_key``."""
    mode = meta.get("mode", "both")
    seed = int(meta.get("seed", 0))
    by_gen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _current(store, meta, signature):
        by_gen[r["generation_key"]].append(r)
    out: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for g in store.generations(role="candidate"):
        rows = by_gen.get(g["key"], [])
        if g["error"] is not None and not rows:
            continue
        out[g["model"]].append((g["item"], {**combine(rows, mode, seed, g["key"]), "generation_key": g["key"]}))
    return out


def panel_judgements(per_judge: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]]
                     ) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{model: [(item, panel judgement), ...]}``: each generation's judgements by every judge, combined."""
    first = next(iter(per_judge.values()))
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for model, judged in first.items():
        others = [{j["generation_key"]: j for _i, j in per_judge[name].get(model, [])} for name in per_judge]
        out[model] = [(item, {**combine_panel([o.get(j["generation_key"], {"status": "pending", "all_rows": []})
                                                for o in others]), "generation_key": j["generation_key"]})
                      for item, j in judged]
    return out


@dataclass
class JudgeResults:
    """What the judge stage left for aggregation: its state, and each candidate's combined judgements (a panel's:
    the judges' scores averaged per judgement; ``panel``: each judge's own)."""

    status: dict[str, Any]
    per_model: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    mode: str = "both"
    seed: int = 0
    cluster: dict[str, str] = field(default_factory=dict)  # item -> screenshot
    panel: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return self.status["state"] not in ("not_configured", "not_run")

    def _judged(self, judged: list[tuple[str, dict[str, Any]]], items: set[str] | None
                ) -> list[tuple[str, dict[str, Any]]]:
        return [(i, j) for i, j in judged if items is None or i in items]

    def block(self, model: str, items: set[str] | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """``(judge block, why it has no ratio)`` of ``model``, over the screenshots in ``items`` (all when None); a
        panel's block holds each judge's own under ``panel``."""
        if not self.ran:
            return None, self.status["message"]
        kind = self.status.get("kind", "pairwise")
        judged = self._judged(self.per_model.get(model, []), items)
        block = summarize(judged, mode=self.mode, seed=self.seed, cluster=self.cluster, kind=kind)
        if self.panel:
            block["panel"] = {name: summarize(self._judged(per.get(model, []), items), mode=self.mode,
                                              seed=self.seed, cluster=self.cluster, kind=kind)
                              for name, per in self.panel.items()}
        why = None
        if block["ratio_mean"] is None:
            why = (f"no usable judgement: {block['n_failed']} failed, {block['n_pending']} not judged yet, "
                   f"{block['n_reference_zero']} with reference score 0 (see report/judgements.csv)")
        return block, why

    def ratios(self, model: str, items: set[str] | None = None) -> Series:
        return ratio_series(self._judged(self.per_model.get(model, []), items), self.cluster)


def _agreement(results: JudgeResults) -> dict[str, Any]:
    """The panel's agreement (:func:`vlmpipe.analysis.agreement.panel_agreement`) over the per-judgement ratios."""
    scores: dict[str, dict[tuple[str, str], float]] = {}
    clusters: dict[tuple[str, str], str] = {}
    ratios: dict[str, dict[str, float]] = {}
    for name, per_model in results.panel.items():
        scores[name] = {}
        ratios[name] = {}
        for model, judged in per_model.items():
            for item, j in judged:
                if j["status"] == "ok" and j["reference"] > 0:
                    unit = (model, j["generation_key"])
                    scores[name][unit] = j["candidate"] / j["reference"]
                    clusters[unit] = results.cluster.get(item, item)
            series = ratio_series(judged, results.cluster)
            if series.values:
                ratios[name][model] = float(np.mean(series.values))
    out = panel_agreement(scores, clusters, ratios, seed=results.seed)
    out["score"] = "per-judgement ratio: candidate score / reference score (graded tasks: score / 10)"
    return out


def judge_results(cfg: RunConfig | None, store: Store) -> JudgeResults:
    """The judge's state (``summary.json``'s ``judge_status``) and every candidate's combined judgements."""
    meta = store.judge_meta()
    enabled = bool(cfg and cfg.judge.enabled)
    if not meta.get("signature"):
        why = (NOT_CONFIGURED if not enabled else
               "the judge is configured but has not run yet: run `vlmpipe judge RUN`")
        return JudgeResults({"configured": enabled, "state": "not_configured" if not enabled else "not_run",
                             "message": why})
    mode = meta.get("mode", "both")
    seed = int(cfg.judge.seed if cfg else meta.get("seed", 0))
    judges = judges_of(meta)
    panel: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = {}
    if len(judges) > 1:
        panel = {j["name"]: model_judgements(store, meta, j["signature"]) for j in judges}
        per_model = panel_judgements(panel)
    else:
        per_model = model_judgements(store, meta)
    n_failed = sum(1 for judged in per_model.values() for _i, j in judged if j["status"] == "failed")
    human = human_scores(store, meta)
    signatures = [j["signature"] for j in judges]
    cost = store.judge_cost(signatures=signatures)
    saved = store.judge_cost_saved(signatures=signatures)
    rows = [r for sig in signatures for r in store.judgements(signature=sig)]  # like the cost: every stored row
    live = mode != "recorded"
    status = {
        "configured": True,
        "state": "recorded" if mode == "recorded" else "done",
        "mode": mode,
        "judge_model": meta.get("model"),
        "templates": meta.get("templates"),
        "n_failed": n_failed,
        "cost_usd": None if cost is None or math.isnan(cost) else cost,
        "cost_saved_usd": (saved or 0.0) if live and (cost is not None or saved is not None) else None,
        "requests_sent": sum(int(r.get("attempts") or 0) for r in rows if not r.get("reused")) if live else None,
        "requests_reused": sum(1 for r in rows if r.get("reused")) if live else None,
        "message": meta.get("source") or f"judged by {meta.get('model')} in mode {mode}",
        "kind": meta.get("kind", "pairwise"),
    }
    if human:
        status["human_answer_score_mean"] = float(np.mean(list(human.values())))
        status["n_human_graded"] = len(human)
    results = JudgeResults(status, per_model, mode, seed, {i["id"]: i["screenshot"] for i in store.items()}, panel)
    if panel:
        status["judges"] = [j["name"] for j in judges]
        status["agreement"] = _agreement(results)
    return results


def plan_judgements(store: Store) -> list[dict[str, Any]] | None:
    """Every current judge's rows (each judge of a panel) for the current plan's generations, in the generations'
    order, then the judges' (``None`` when the judge stage never ran). Each row gets the generation's text as
    ``candidate``."""
    meta = store.judge_meta()
    if not meta.get("signature"):
        return None
    gens = {g["key"]: g for g in store.generations()}
    order = {k: i for i, k in enumerate(gens)}  # model, item, repeat
    ranked: list[tuple[int, int, str, dict[str, Any]]] = []
    for rank, judge in enumerate(judges_of(meta)):
        for r in store.judgements(signature=judge["signature"]):
            g = gens.get(r["generation_key"])
            if g is None:
                continue  # a judgement of a generation outside the current plan (an older prompt, a removed model)
            r.setdefault("candidate", g["text"])
            ranked.append((order[r["generation_key"]], rank, str(r.get("candidate_position") or ""), r))
    return [r for *_, r in sorted(ranked, key=lambda t: t[:3])]
