"""Findings of real runs: the peer's recorded results (with and without its judge) and the planted run.

Expected values come from the data: the peer's published table (../shared/peer/README.md: judge ratios, chars/s,
the 2B-AWQ's 61.59 s average from one ~600 s answer, the 2B GPTQ-Int4 and AWQ variants drifting into English) and
what tests/report_runs.py planted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from report_runs import AWQ, FORMULA, GOOD, SMALL, import_run, peer_run
from vlmpipe.analysis.compare import read_summary
from vlmpipe.analysis.findings import derive_findings, lead
from vlmpipe.analysis.summary import Finding, RunSummary
from vlmpipe.core.fields import field

Q7B, Q7B_INT8, Q7B_AWQ = "Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8", "Qwen2-VL-7B-Instruct-AWQ"
Q2B, Q2B_INT4, Q2B_AWQ = "Qwen2-VL-2B-Instruct", "Qwen2-VL-2B-Instruct-GPTQ-Int4", "Qwen2-VL-2B-Instruct-AWQ"


def kinds(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.kind, []).append(f)
    return out


@pytest.fixture(scope="module")
def judged(peer_run: Path) -> RunSummary:
    return read_summary(peer_run)


@pytest.fixture(scope="module")
def unjudged(peer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunSummary:
    """The same 400 generations imported without judgement_scores.xlsx: the run's quality measure is chrF."""
    return read_summary(peer_run(peer_dir, tmp_path_factory.mktemp("unjudged") / "peer", judged=False))


def test_the_peer_judge_lead_is_not_significant(judged: RunSummary) -> None:
    k = kinds(judged.findings)
    best = k["best"][0]
    # README: 0.868 [0.834, 0.903] and 0.852 [0.803, 0.910]: the 7B BF16 and GPTQ-Int8 variants are not separable
    assert best.evidence["model"] == Q7B and best.evidence["runner_up"] == Q7B_INT8
    assert best.evidence["metric"] == "judge.ratio_mean"
    ld = best.evidence["lead"]
    assert ld["significant"] is False and ld["how"] == "pairwise"
    assert ld["diff"] == pytest.approx(0.868 - 0.852, abs=0.002) and ld["ci95"][0] < 0 < ld["ci95"][1]
    assert "not significant (the 95% interval of the paired difference includes 0" in best.text
    assert k["recommend_quality"][0].evidence["model"] == Q7B
    # README: the 2B AWQ averaged 61.59 s over 50 answers, one of them ~600 s; the 2B GPTQ-Int4 and AWQ drift
    # into English
    (freeze,) = k["freeze"]
    assert freeze.evidence["model"] == Q2B_AWQ and freeze.evidence["latency_max"] > 100 * freeze.evidence["latency_p50"]
    assert [f.evidence["model"] for f in k["off_language"]] == [Q2B_INT4, Q2B_AWQ]
    # the 2B declines the task in 9 of its 50 answers («Извините, но я не могу предсказать, как человек
    # сформулировал бы обращение…»); the 2B GPTQ-Int4 and AWQ in 3 ("Sorry, but I can't assist with that.")
    assert {f.evidence["model"]: f.evidence["refusal_rate"] for f in k["refuses"]} == {
        Q2B: 9 / 50, Q2B_INT4: 3 / 50, Q2B_AWQ: 3 / 50}
    # no GPU memory recorded: the fastest model on the front that is not flagged — the 2B GPTQ-Int4 (304.7 chars/s)
    # drifts off-language and the 2B (282.7 chars/s) refuses, so the 7B AWQ (247.4 chars/s)
    pick = k["recommend_constrained"][0]
    assert pick.evidence["model"] == "Qwen2-VL-7B-Instruct-AWQ" and pick.evidence["with_memory"] is False
    assert "247 chars/s" in pick.text
    assert "errors" not in k and "server_down" not in k


def test_chrf_leads_are_tested_like_the_judge_s(judged: RunSummary, unjudged: RunSummary) -> None:
    """``pairwise.chrf_mean`` lets findings call a chrF lead significant or not, exactly as the judge ratio's."""
    chrf, ratio = field("chrf_mean"), field("judge.ratio_mean")
    for summary in (judged, unjudged):  # the same generations: the same chrF pairs
        far = lead(summary, Q7B, Q2B_AWQ, chrf)
        near = lead(summary, Q7B, Q7B_INT8, chrf)
        assert far["how"] == near["how"] == "pairwise"
        assert far["significant"] is True and far["ci95"][0] > 0  # 7B vs 2B-AWQ: ~20 chrF points apart
        assert near["significant"] is False and near["ci95"][0] < 0 < near["ci95"][1]
    assert lead(judged, Q7B, Q2B_AWQ, ratio)["significant"] is True  # and so the judge says
    assert lead(judged, Q7B, Q7B_INT8, ratio)["significant"] is False
    k = kinds(unjudged.findings)
    best = k["best"][0]
    assert best.evidence["metric"] == "chrf_mean"
    assert {best.evidence["model"], best.evidence["runner_up"]} == {Q7B, Q7B_INT8}
    assert best.evidence["lead"]["how"] == "pairwise" and best.evidence["lead"]["significant"] is False
    assert unjudged.judge_status is not None and unjudged.judge_status.state == "not_configured"


def test_planted_problems_fire_on_the_models_that_have_them(planted: Any) -> None:
    summary = read_summary(planted.run_dir)
    k = kinds(summary.findings)
    best = k["best"][0]
    assert (best.evidence["model"], best.evidence["runner_up"]) == (GOOD, AWQ)
    assert best.evidence["lead"] == {"significant": True, "how": "pairwise", "diff": pytest.approx(0.25),
                                     "ci95": [pytest.approx(0.25), pytest.approx(0.25)], "p_a_better": 1.0}
    (invents,) = k["invents_numbers"]  # «43 рубля» in 2 of the 2B model's 5 answers
    assert invents.evidence["model"] == SMALL and invents.evidence["hallucinated_number_rate"] == pytest.approx(0.4)
    (inconsistent,) = k["inconsistent"]  # a formula, then a question about trains
    assert inconsistent.evidence["model"] == FORMULA and inconsistent.evidence["consistency_mean"] < 50
    (freeze,) = k["freeze"]
    assert freeze.evidence["model"] == SMALL and freeze.evidence["timeouts"] == 1
    errors = {f.evidence["model"]: f.evidence["errors_by_kind"] for f in k["errors"]}
    assert errors == {GOOD: {"image": 2}, AWQ: {"image": 2, "http_500": 2, "http_429": 1},
                      SMALL: {"image": 2, "timeout": 1}, FORMULA: {"image": 2}}
    assert SMALL in [f.evidence["model"] for f in k["off_language"]]  # its English answer to cancelled_order
    assert derive_findings(summary) == summary.findings  # summary.json holds what the rules say


def test_one_model_with_quality_and_none(tmp_path: Path) -> None:
    """An imported run where only one model answered (the other's rows are failures), and one without references
    or a judge: nothing to rank on."""
    rows = [{"model": "works", "item": i, "repeat": 0, "text": "Заказ отменили", "reference": "Заказ отменили.",
             "latency_s": 1.0, "error": ""} for i in ("a", "b")]
    rows += [{"model": "broken", "item": i, "repeat": 0, "text": "", "reference": "", "latency_s": "",
              "error": "HTTP 500"} for i in ("a", "b")]
    k = kinds(read_summary(import_run(tmp_path, "one", rows)).findings)
    assert k["best"][0].text.startswith("works is the only model with a chrF")
    assert k["errors"][0].evidence == {"model": "broken", "n_errors": 2, "n": 2, "errors_by_kind": {"imported": 2}}
    bare = [{**r, "reference": ""} for r in rows[:2]]
    k = kinds(read_summary(import_run(tmp_path, "bare", bare)).findings)
    assert "cannot be ranked" in k["best"][0].text and "recommend_quality" not in k
