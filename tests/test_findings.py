"""Findings: each rule on hand-made summaries, with the evidence it states."""

from __future__ import annotations

from typing import Any

from vlmpipe.analysis.findings import derive_findings


def _model(**kw: Any) -> dict[str, Any]:
    base = {"role": "candidate", "n": 50, "n_errors": 0, "errors_by_kind": {},
            "latency_s": {"mean": 1.0, "p50": 1.0, "p95": 1.5, "max": 2.0}, "chars_per_s_mean": 200.0}
    for k, v in kw.items():
        if k == "latency_max":
            base["latency_s"] = {**base["latency_s"], "max": v}
        else:
            base[k] = v
    return base


def _judge(ratio: float, lo: float, hi: float) -> dict[str, Any]:
    return {"ratio_mean": ratio, "ratio_ci95": [lo, hi]}


def _kinds(findings: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        out.setdefault(f["kind"], []).append(f)
    return out


def test_best_not_separable_from_overlapping_intervals() -> None:
    s = {"models": {"7B": _model(judge=_judge(0.868, 0.834, 0.903), chars_per_s_mean=160.0, gpu_memory_gb_peak=17.0),
                    "7B-Int8": _model(judge=_judge(0.852, 0.803, 0.910), chars_per_s_mean=216.0,
                                      gpu_memory_gb_peak=10.0),
                    "2B": _model(judge=_judge(0.596, 0.52, 0.66), chars_per_s_mean=280.0, gpu_memory_gb_peak=5.0)}}
    k = _kinds(derive_findings(s))
    best = k["best"][0]
    assert best["evidence"]["model"] == "7B" and best["evidence"]["runner_up"] == "7B-Int8"
    assert best["evidence"]["lead"] == {"significant": False, "how": "intervals", "ci95_best": [0.834, 0.903],
                                        "ci95_second": [0.803, 0.910]}
    assert "not significant" in best["text"]
    assert k["pareto"][0]["evidence"]["models"] == ["7B", "7B-Int8", "2B"]
    assert k["recommend_quality"][0]["evidence"]["model"] == "7B"
    assert k["recommend_constrained"][0]["evidence"]["model"] == "2B"  # least memory on the front
    assert set(k) == {"best", "pareto", "recommend_quality", "recommend_constrained"}


def test_significant_lead_from_pairwise_either_direction() -> None:
    s = {"models": {"A": _model(judge=_judge(0.9, 0.85, 0.95)), "B": _model(judge=_judge(0.8, 0.7, 0.9))},
         "pairwise": [{"a": "B", "b": "A", "diff": -0.1, "ci95": [-0.15, -0.05], "p_a_better": 0.01}]}
    best = _kinds(derive_findings(s))["best"][0]
    lead = best["evidence"]["lead"]
    assert lead["significant"] is True and lead["how"] == "pairwise"
    assert lead["diff"] == 0.1 and lead["ci95"] == [0.05, 0.15] and abs(lead["p_a_better"] - 0.99) < 1e-9


def test_chrf_fallback_and_untested_lead() -> None:
    s = {"models": {"A": _model(chrf_mean=41.0, chars_per_s_mean=100.0), "B": _model(chrf_mean=45.0)}}
    k = _kinds(derive_findings(s))
    assert k["best"][0]["evidence"]["metric"] == "chrf_mean" and k["best"][0]["evidence"]["model"] == "B"
    assert k["best"][0]["evidence"]["lead"]["significant"] is None
    assert k["pareto"][0]["evidence"]["models"] == ["B"] and k["pareto"][0]["evidence"]["with_memory"] is False


def test_problem_rules_fire_on_their_thresholds_only() -> None:
    s = {"models": {
        "drifts": _model(chrf_mean=40.0, off_language_rate=0.055),
        "freezes": _model(chrf_mean=41.0, latency_max=61.6, errors_by_kind={}),
        "almost": _model(chrf_mean=42.0, latency_max=9.9),  # 9.9× the median: not a freeze
        "fails": _model(chrf_mean=43.0, n_errors=3, errors_by_kind={"timeout": 2, "http_500": 1}),
        "invents": _model(chrf_mean=44.0, hallucinated_number_rate=0.1, consistency_mean=30.0),
        "steady": _model(chrf_mean=45.0, hallucinated_number_rate=0.0, consistency_mean=50.0, off_language_rate=0.0),
    }}
    k = _kinds(derive_findings(s))
    assert [f["evidence"]["model"] for f in k["off_language"]] == ["drifts"]
    assert [f["evidence"]["model"] for f in k["freeze"]] == ["freezes", "fails"]
    assert k["freeze"][0]["evidence"]["latency_max"] == 61.6 and "62×" in k["freeze"][0]["text"]
    assert k["freeze"][1]["evidence"]["timeouts"] == 2
    assert [f["evidence"]["model"] for f in k["errors"]] == ["fails"]
    assert "3 of 50" in k["errors"][0]["text"]
    assert [f["evidence"]["model"] for f in k["invents_numbers"]] == ["invents"]
    assert [f["evidence"]["model"] for f in k["inconsistent"]] == ["invents"]
    # constrained pick: the fastest unflagged model on the front (no memory measured)
    assert k["recommend_constrained"][0]["evidence"]["model"] == "steady"


def test_no_quality_measure() -> None:
    k = _kinds(derive_findings({"models": {"ocr": _model()}}))
    assert "cannot be ranked" in k["best"][0]["text"] and "recommend_quality" not in k
    assert derive_findings({"models": {}}) == []
