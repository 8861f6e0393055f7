"""The report of the peer's recorded results (../shared/peer: 10 screenshots × 5 repeats × 8 models, imported and
scored): the repeats of one screenshot are not independent, so the cluster-bootstrap intervals are wider than the
naive ones; the ranking shows the judge ratio with the interval the peer's README quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from html_tables import table
from vlmpipe.analysis.compare import read_summary


def widths(summary: dict, key: str) -> dict[str, tuple[float, float]]:
    """Per model: (cluster width, naive width) of field ``key``."""
    out = {}
    for name, m in summary["models"].items():
        f = m["fields"][key]
        out[name] = (f["ci95"][1] - f["ci95"][0], f["ci95_naive"][1] - f["ci95_naive"][0])
    return out


#: screenshots a field is measured on: every one for the overlap metrics; fact recall only where the reference states
#: a number (key facts come from the reference's amounts, IDs and dates)
SCREENSHOTS = {"chrf_mean": 10, "rouge1_f_mean": 10, "fact_recall_mean": 3}


@pytest.mark.parametrize("key", list(SCREENSHOTS))
def test_cluster_intervals_are_wider_than_naive_ones(peer_run: Path, key: str) -> None:
    summary = json.loads((peer_run / "report" / "summary.json").read_text(encoding="utf-8"))
    w = widths(summary, key)
    assert len(w) == 8
    for name in w:
        f = summary["models"][name]["fields"][key]
        assert (f["n"], f["n_items"]) == (5 * SCREENSHOTS[key], SCREENSHOTS[key])  # 5 repeats per screenshot
    wider = [name for name, (cluster, naive) in w.items() if cluster > naive]
    assert len(wider) >= 7, w  # most models (measured: chrF 8/8, ROUGE-1 8/8, fact recall 7/8)


def test_chrf_pairs_in_the_summary(peer_run: Path) -> None:
    summary = read_summary(peer_run)
    far = summary.find_pair("chrf_mean", "Qwen2-VL-7B-Instruct", "Qwen2-VL-2B-Instruct-AWQ")
    near = summary.find_pair("chrf_mean", "Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8")
    assert far is not None and far.separable is True and far.n_items == 10 and far.ci95 and far.ci95[0] > 0
    assert near is not None and near.separable is False
    back = summary.find_pair("chrf_mean", "Qwen2-VL-2B-Instruct-AWQ", "Qwen2-VL-7B-Instruct")
    assert back is not None and back.diff == -far.diff and back.ci95 == [-far.ci95[1], -far.ci95[0]]
    assert back.p_a_better == pytest.approx(1 - far.p_a_better)  # type: ignore[operator]
    assert len(summary.pairs("chrf_mean")) == 8 * 7 // 2


def test_ranking_shows_the_judge_ratio_with_its_cluster_interval(peer_run: Path) -> None:
    html = (peer_run / "report" / "index.html").read_text(encoding="utf-8")
    ranking = table(html, id="ranking-table")
    col = ranking.rows[0].index("judge ratio [95%]")
    # README: «0.868 [0.834, 0.903]» (the peer's ±0.026 is the naive half-width)
    cell = ranking.row("Qwen2-VL-7B-Instruct")[col]
    value, lo, hi = (float(x) for x in cell.replace("[", "").replace("]", "").replace(",", "").split())
    assert value == 0.868 and lo == pytest.approx(0.834, abs=0.002) and hi == pytest.approx(0.903, abs=0.002)
    assert [r[0] for r in ranking.rows[1:3]] == ["Qwen2-VL-7B-Instruct", "Qwen2-VL-7B-Instruct-GPTQ-Int8"]
    assert html.count('<section class="card"') == 10 and html.count('<div class="gen"') == 400
