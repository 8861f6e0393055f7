"""index.html of real runs: self-contained, escaped, a view of the typed summary and the catalogue, and checked in
headless Chromium (no console errors, the planted script not executed, sorting works).

The planted run (tests/report_runs.py) is ``vlmpipe.run`` against the stand-in servers; the bench section comes
from ``vlmpipe bench`` through the CLI against a stand-in server and a closed port.
"""

from __future__ import annotations

import json
import re
import socket
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from browser import Chromium
from fakeserver import FakeOpenAIServer
from html_tables import table
from report_runs import AWQ, EXPLANATION, FORMULA, GOOD, ITEMS, MODELS, PLANTED, REPEATS, SMALL, write_dataset
from vlmpipe.app.cli import app

CHROMIUM = pytest.mark.needs("chromium")


@pytest.fixture(scope="module")
def index(planted: Any) -> str:
    return (planted.report_dir / "index.html").read_text(encoding="utf-8")


def test_html_is_self_contained_and_escapes_model_text(index: str) -> None:
    html = index
    assert PLANTED not in html
    assert "&lt;script&gt;document.title=&#34;PWNED&#34;" in html
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html  # a judge explanation
    assert html.count("<script>") == 1  # the sorting script, allowed by its hash in the CSP
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src 'sha256-" in csp
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing loaded from anywhere
    assert html.count('<section class="card"') == len(ITEMS)
    # the 2B model's answer to failed_payment: «праходит» misspelled, «43» in neither the reference nor the facts
    assert '<mark class="spell">праходит</mark>' in html and '<mark class="number">43</mark>' in html
    assert "off-language: en" in html  # its English answer to cancelled_order
    assert "image not available" in html and "missing.png: image file not found" in html  # lost_image
    assert "1 screenshot(s) could not be used" in html


def test_ranking_is_the_catalogue_view_of_the_run(index: str, planted: Any) -> None:
    ranking = table(index, id="ranking-table")
    header = ranking.rows[0]
    # ranked by the judge's fixed scores: 8/8, 6/8, 4/8; the formula bot was never graded
    assert [r[0] for r in ranking.rows[1:]] == [GOOD, AWQ, SMALL, FORMULA]
    assert ranking.row(GOOD)[header.index("judge ratio [95%]")] == "1.000 [1.000, 1.000]"
    assert ranking.row(AWQ)[header.index("judge ratio [95%]")] == "0.750 [0.750, 0.750]"
    assert ranking.row(SMALL)[header.index("judge ratio [95%]")] == "0.500 [0.500, 0.500]"
    assert ranking.row(FORMULA)[header.index("judge ratio [95%]")] == "—"
    assert ranking.row(GOOD)[header.index("chrF")] == "100.0"  # its answers are the references word for word
    assert ranking.row(AWQ)[header.index("errors")] == "5"  # 2 × HTTP 500, 1 × HTTP 429, the lost screenshot × 2
    # the fields this run has, in the catalogue's order (count, judge, quality, grounding, language, fluency,
    # stability, speed); BLEURT and BERTScore have no checkpoint here and GPU memory was not measured: no column
    order = ["n", "errors", "judge ratio [95%]", "win rate", "ROUGE-1", "chrF", "fact recall", "invented numbers",
             "off-language", "spelling Σ", "perplexity", "consistency", "latency p50, s", "chars/s"]
    assert [h for h in header if h in order] == order
    assert not {"BLEURT", "BERTScore F1", "GPU, GB"} & set(header)
    assert "Ranked by judge ratio" in index
    assert re.search(r'<th data-key="chrf_mean" title="character n-gram F-score', index)
    why = re.search(r"<li><code>bleurt_mean</code>: ([^<]+)</li>", index)
    assert why and "no checkpoint configured" in why.group(1)  # the "Metrics not available" list


def test_gallery_chips_are_the_ranking_fields_of_each_answer(index: str) -> None:
    chips = re.findall(r'<div class="gen" data-model="([^"]+)" data-repeat="\d">.*?<span class="chips">(.*?)</span>',
                       index, re.DOTALL)
    good = [c for m, c in chips if m == GOOD]
    assert len(good) == 3 * REPEATS  # every answer of the three usable screenshots
    assert all("chrF 100.0" in c and "fact recall 1.00" in c and "spelling 0" in c for c in good)
    assert all("perplexity" in c for c in good)
    small = next(c for m, c in chips if m == SMALL and "spelling 1" in c)  # «праходит»
    assert "fact recall 0.00" in small  # 20 588 ₽ is not in «43 рубля»
    assert not any("invented numbers" in c or "off-language" in c for _m, c in chips)  # shown as marks instead


def test_findings_list_and_settings(index: str, planted: Any) -> None:
    findings = re.findall(r'<li class="([a-z_]+)"><span class="kind">', index)
    summary = json.loads((planted.report_dir / "summary.json").read_text(encoding="utf-8"))
    assert findings == [f["kind"] for f in summary["findings"]]
    assert findings[:2] == ["best", "pareto"] and "invents_numbers" in findings and "inconsistent" in findings
    settings = table(index, id="settings-table")
    assert settings.row("judge") == ["judge", "fake-judge (both)"]
    assert settings.row("repeats") == ["repeats", "2"] and settings.row("screenshots") == ["screenshots", "4"]


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """`vlmpipe bench --concurrency 1,2 --requests 3 --warmup 0` through the CLI: a stand-in server with prefix
    caching on, and a model whose server is not there (a closed port)."""
    tmp = tmp_path_factory.mktemp("bench")
    data = write_dataset(tmp / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    metrics = 'vllm:cache_config_info{block_size="16",enable_prefix_caching="True"} 1.0\n'
    with FakeOpenAIServer(ttft_s=0.01, metrics_text=metrics) as srv:
        cfg = {"name": "bench", "output_dir": str(tmp / "runs"),
               "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
               "models": [{"name": "served", "base_url": srv.url, "model": "m"},
                          {"name": "absent", "base_url": f"http://127.0.0.1:{closed}/v1", "model": "m",
                           "connect_timeout_s": 1}]}
        (tmp / "bench.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        res = CliRunner().invoke(app, ["bench", str(tmp / "bench.yaml"), "--concurrency", "1,2", "--requests", "3",
                                       "--warmup", "0", "--quiet"], env={"COLUMNS": "250"})
    assert res.exit_code == 1, res.output  # the absent model's requests failed
    return res.output, (tmp / "runs" / "bench" / "report" / "index.html").read_text(encoding="utf-8")


def test_bench_rows_from_the_bench_section(bench_report: tuple[str, str]) -> None:
    output, html = bench_report
    bench = table(html, id="bench-table")
    assert bench.rows[0][:3] == ["model", "concurrency", "ok / n"]
    rows = {(r[0], r[1]): r for r in bench.rows[1:]}
    assert set(rows) == {("served", "1"), ("served", "2"), ("absent", "1"), ("absent", "2")}
    col = bench.rows[0].index
    for level in ("1", "2"):
        served, absent = rows[("served", level)], rows[("absent", level)]
        assert served[col("ok / n")] == "3 / 3" and served[col("errors")] == "0%" and served[col("freezes")] == "0"
        assert served[col("prefix cache")] == "on"  # from the stand-in's /metrics
        assert absent[col("ok / n")] == "0 / 3" and absent[col("errors")] == "100%"
        assert absent[col("req/s")] == "0.00" and absent[col("TTFT p50 ms")] == "—"  # no answer, no timing
    assert 'id="plot-bench"' in html and "Serving benchmark" in html
    # the CLI's own table reads the same section
    assert re.search(r"served\s+1\s+3/3", output) and re.search(r"absent\s+1\s+0/3", output)


@CHROMIUM
def test_report_in_headless_chromium(planted: Any, tmp_path: Path) -> None:
    summary = json.loads((planted.report_dir / "summary.json").read_text(encoding="utf-8"))
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(planted.report_dir / "index.html")
        assert page.errors == []
        assert browser.evaluate("document.title") == "vlmpipe report: planted"
        assert browser.evaluate("document.getElementById('pwned')") is None
        assert browser.evaluate("document.querySelectorAll('blink').length") == 0
        cards = browser.evaluate("Array.from(document.querySelectorAll('section.card')).map(c => c.dataset.item)")
        assert cards == list(ITEMS)
        answers = browser.evaluate("document.querySelectorAll('.gen').length")
        assert answers == len(MODELS) * len(ITEMS) * REPEATS  # the lost screenshot's failures too
        browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        shown = browser.evaluate("document.querySelector('#item-cancelled_order').innerText")
        assert EXPLANATION in shown  # the judge's explanation, as text
        assert PLANTED in shown  # the script is on the page as text
        imgs = browser.evaluate("Array.from(document.querySelectorAll('.shot img')).map(i => i.naturalWidth)")
        assert len(imgs) == len(ITEMS) - 1 and all(w > 100 for w in imgs)
        plots = browser.evaluate("Array.from(document.querySelectorAll('.plots img')).map(i => i.naturalWidth)")
        assert len(plots) == len(list(planted.report_dir.glob("*.png"))) and all(w > 300 for w in plots)
        assert browser.evaluate("document.querySelectorAll('.card details.repeats').length") == len(ITEMS) * len(MODELS)
        # sorting by a column orders the rows by its values (the script ran under the CSP)
        names = "Array.from(document.querySelectorAll('#ranking-table tbody td:first-child')).map(t => t.textContent)"
        assert browser.evaluate(names) == [GOOD, AWQ, SMALL, FORMULA]
        col = browser.evaluate("Array.from(document.querySelectorAll('#ranking-table th')).findIndex("
                               "th => th.dataset.key === 'chrf_mean')")
        browser.evaluate(f"document.querySelectorAll('#ranking-table th')[{col}].click()")
        by_chrf = sorted(MODELS, key=lambda m: summary["models"][m]["chrf_mean"])
        assert browser.evaluate(names) == by_chrf  # ascending
        browser.evaluate(f"document.querySelectorAll('#ranking-table th')[{col}].click()")
        assert browser.evaluate(names) == by_chrf[::-1]
        assert page.errors == []
        shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 100_000


@CHROMIUM
def test_demo_prints_ranking_and_report_with_screenshots(tmp_path: Path, demo_cli: tuple[int, str, Path]) -> None:
    """`vlmpipe demo` prints each demo's ranking table and the path of its index.html, which shows the demo's
    screenshots with the OCR baseline's answers."""
    exit_code, output, out = demo_cli
    assert exit_code == 0, output
    index = out / "demo" / "report" / "index.html"
    assert "ocr-baseline" in output and "ranked by chrF" in output and "ch/s" in output
    reports = [line for line in output.splitlines() if line.startswith("report: ")]
    assert reports == [f"report: {index}", f"report: {out / 'demo-vqa' / 'report' / 'index.html'}"]
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(index)
        assert page.errors == []
        cards = browser.evaluate("document.querySelectorAll('section.card').length")
        assert cards == 8
        widths = browser.evaluate("Array.from(document.querySelectorAll('.shot img')).map(i => i.naturalWidth)")
        assert len(widths) == 8 and min(widths) > 200
        answers = browser.evaluate("Array.from(document.querySelectorAll('.gen .answer')).map(a => a.innerText)")
        assert len(answers) == 8 and all(a.strip() for a in answers)
        assert any("Заказ" in a or "заказ" in a for a in answers)  # OCR read the Russian screenshots
        browser.screenshot(tmp_path / "demo-report.png")
    assert (tmp_path / "demo-report.png").stat().st_size > 100_000
