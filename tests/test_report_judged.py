"""The report of a run judged end to end by the judge stage (fake candidate and judge servers on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

import vlmpipe
from browser import Chromium
from conftest import summary_json
from fakeserver import FakeOpenAIServer
from test_judge import BAD, GOOD, ITEMS, BiasedJudge, candidate_responder, make_config
from vlmpipe.app.pipeline import open_store


@pytest.mark.needs("chromium")
def test_report_of_a_judged_run(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate_responder) as cand, FakeOpenAIServer(responder=BiasedJudge()) as judge:
        cfg = make_config(tmp_path, cand.url, judge.url, mode="both", repeats=2)
        result = vlmpipe.run(cfg, show_progress=False)
    assert result.exit_code == 0
    report_dir = result.report_dir
    s = summary_json(result)
    assert s["models"][GOOD]["judge"]["ratio_mean"] > s["models"][BAD]["judge"]["ratio_mean"]
    best = next(f for f in s["findings"] if f["kind"] == "best")
    assert best["evidence"]["model"] == GOOD and best["evidence"]["metric"] == "judge.ratio_mean"
    assert best["evidence"]["lead"]["how"] == "pairwise"

    with open_store(result.run_dir) as store:
        signature = store.get_meta("judge")["signature"]
        n_judged = store.conn.execute("SELECT COUNT(*) FROM judgements WHERE signature = ?",
                                      (signature,)).fetchone()[0]
    assert n_judged == 2 * len(ITEMS) * 2 * 2  # models × items × repeats × both orders
    wb = openpyxl.load_workbook(report_dir / "results.xlsx")
    assert wb["judgements"].max_row - 1 == n_judged
    assert {p.name for p in report_dir.glob("*.png")} >= {"field_judge_ratio_mean.png", "decision.png", "latency.png"}

    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(report_dir / "index.html")
        assert page.errors == []
        assert browser.evaluate("document.querySelectorAll('section.card').length") == len(ITEMS)
        assert browser.evaluate("document.querySelectorAll('.judgement').length") == n_judged
        first = browser.evaluate("document.querySelector('#ranking-table tbody td').textContent")
        assert first == GOOD
        assert browser.evaluate("document.getElementById('judge-status')") is None
        browser.screenshot(tmp_path / "judged-report.png")
