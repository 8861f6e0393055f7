"""index.html: self-contained, escaped, and checked in headless Chromium (console, cards, planted script)."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from browser import Chromium
from report_fixtures import ITEMS, MODELS, PLANTED, REPEATS, make_synthetic_run, patch_summary
from vlmpipe.app.pipeline import report


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, run_dir = make_synthetic_run(tmp_path)
    patch_summary(monkeypatch)
    report(run_dir)
    return run_dir / "report" / "index.html"


def test_html_is_self_contained_and_escapes_model_text(index: Path) -> None:
    html = index.read_text(encoding="utf-8")
    assert PLANTED not in html
    assert "&lt;script&gt;document.title=&#34;PWNED&#34;" in html
    assert "<img src=x onerror" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script>") == 1  # the sorting script, allowed by its hash in the CSP
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src 'sha256-" in csp
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing loaded from anywhere
    assert html.count('<section class="card"') == len(ITEMS)
    assert 'id="plot-decision"' in html and 'id="plot-judge_ratio"' in html
    assert "plot-bar_bleurt" not in html  # absent metric: no plot
    assert '<mark class="spell">праходит</mark>' in html and '<mark class="number">43</mark>' in html
    assert "off-language: en" in html
    assert "image not available" in html  # lost_image has no file
    assert '<h3 id="bench">' in html and "<td class=\"num\">81</td>" in html  # TTFT p50 in ms
    assert "server failed: server &lt;b&gt;died&lt;/b&gt;" in html


@pytest.mark.needs("chromium")
def test_report_in_headless_chromium(index: Path, tmp_path: Path) -> None:
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(index)
        assert page.errors == []
        assert browser.evaluate("document.title") == "vlmpipe report: synthetic"
        assert browser.evaluate("document.getElementById('pwned')") is None
        assert browser.evaluate("document.querySelectorAll('blink').length") == 0
        cards = browser.evaluate("Array.from(document.querySelectorAll('section.card')).map(c => c.dataset.item)")
        assert cards == [i for i, _ in ITEMS]
        answers = browser.evaluate("document.querySelectorAll('.gen').length")
        assert answers == len(MODELS) * len(ITEMS) * REPEATS
        browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        shown = browser.evaluate("document.querySelector('#item-cancelled_order').innerText")
        assert "<img src=x onerror=alert(1)> The candidate names the order." in shown
        assert PLANTED in shown  # the script is on the page as text
        imgs = browser.evaluate("Array.from(document.querySelectorAll('.shot img')).map(i => i.naturalWidth)")
        assert len(imgs) == len(ITEMS) - 1 and all(w > 100 for w in imgs)
        plots = browser.evaluate("Array.from(document.querySelectorAll('.plots img')).map(i => i.naturalWidth)")
        assert len(plots) >= 8 and all(w > 300 for w in plots)
        # repeats are collapsed, and sorting by a column works (the script ran under the CSP)
        assert browser.evaluate("document.querySelectorAll('.card details.repeats').length") == len(ITEMS) * len(MODELS)
        names = "Array.from(document.querySelectorAll('#ranking-table tbody td:first-child')).map(t => t.textContent)"
        assert browser.evaluate(names)[0] == "Qwen2-VL-7B-Instruct"
        col = browser.evaluate("Array.from(document.querySelectorAll('#ranking-table th')).findIndex("
                               "th => th.textContent.startsWith('chars/s'))")
        browser.evaluate(f"document.querySelectorAll('#ranking-table th')[{col}].click()")
        assert browser.evaluate(names)[0] == "ocr-baseline"  # slowest first when ascending
        assert page.errors == []
        shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 100_000


@pytest.mark.needs("chromium")
def test_demo_prints_ranking_and_report_with_screenshots(tmp_path: Path, demo_cli: tuple[int, str, Path]) -> None:
    """`vlmpipe demo` ends with the ranking table and the path of index.html, which shows the demo's
    screenshots with the OCR baseline's answers."""
    exit_code, output, out = demo_cli
    assert exit_code == 0, output
    index = out / "demo" / "report" / "index.html"
    assert "ocr-baseline" in output and "ranked by chrF" in output and "ch/s" in output
    assert output.rstrip().splitlines()[-1] == f"report: {index}"
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
