"""compare.html of two real (imported, scored) runs: written beside compare.json, hand-checked differences and
interval overlap, a model named in markup shown as text, and clean in headless Chromium."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser import Chromium
from html_tables import table
from report_runs import EVIL_MODEL, GOOD, NEW_MODELS, PLANTED
from vlmpipe.app.cli import app

#: 2026-01-02 03:04:05 UTC, the A summary's modification time.
WRITTEN_A = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def pages(imported_pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    a, b = imported_pair
    os.utime(a / "report" / "summary.json", (WRITTEN_A, WRITTEN_A))
    out = tmp_path_factory.mktemp("compare") / "out"
    res = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "compare.html" in res.output
    assert (out / "compare.json").is_file()
    return out / "compare.html", res.output


def test_compare_html_contents(pages: tuple[Path, str]) -> None:
    page, _ = pages
    html = page.read_text(encoding="utf-8")
    runs = table(html, id="runs-table")
    assert runs.row("run")[1:] == ["baseline", "after"]  # the run directories' names
    assert runs.row("summary written")[1] == "2026-01-02 03:04 UTC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", runs.row("summary written")[2])
    assert runs.row("screenshots × repeats")[1:] == ["2 × 2", "2 × 2"]
    q = table(html, data_model=GOOD)
    # field, A, B, B − A, interval A, interval B, overlap — from the recorded latencies, failures and texts
    assert q.row("latency p50, s latency_s.p50")[1:] == ["1.25", "1.5", "+0.25", "", "", ""]
    assert q.row("errors n_errors")[1:4] == ["0", "1", "+1"]
    chrf = q.row("chrF chrf_mean")
    assert chrf[1] == "100" and chrf[4] == "[100, 100]" and chrf[6] == "do not overlap"  # no B answer is the ref.
    evil = table(html, data_model=EVIL_MODEL)  # the attribute, unescaped by the parser, is the name itself
    assert evil.row("errors n_errors")[1:4] == ["2", "0", "-2"]  # its two recorded failures in A, none in B
    assert evil.row("chrF chrf_mean")[3] == "+0" and evil.row("chrF chrf_mean")[6] == "overlap"  # same answers
    assert [r[0] for r in q.rows[1:]][:3] == ["errors n_errors", "ROUGE-1 rouge1_f_mean", "chrF chrf_mean"]
    assert "It does not prove that nothing changed" in html  # the legend
    # which way is better, from the catalogue, for the headline fields shown
    assert re.search(r"higher\s+is better for [^;]*chrF", html) and re.search(r"lower is better for [^.]*errors", html)
    # untrusted text is escaped: no markup from a summary reaches the page
    assert PLANTED not in html and "<img" not in html
    assert unescape(html).count(PLANTED) >= 2 and "&lt;script&gt;" in html
    assert "<script" not in html  # the page has no script of its own either
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "script-src 'none'" in csp
    assert not re.search(r'(src|href)="(https?:)?//', html)
    only_a = re.search(r'<ul id="only-a">(.*?)</ul>', html).group(1)
    only_b = re.search(r'<ul id="only-b">(.*?)</ul>', html).group(1)
    assert only_a == "<li>retired</li>"
    assert only_b == "<li>new&lt;img src=x onerror=alert(1)&gt;</li><li>模型-中文</li>"


def test_compare_html_only_with_out(pages: tuple[Path, str], imported_pair: tuple[Path, Path]) -> None:
    page, _ = pages
    root = imported_pair[0].parent
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    res = CliRunner().invoke(app, ["compare", *map(str, imported_pair)], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "compare.html" not in res.output
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # without --out nothing is written
    assert sorted(p.name for p in page.parent.iterdir()) == ["compare.html", "compare.json"]


@pytest.mark.needs("chromium")
def test_compare_html_in_headless_chromium(pages: tuple[Path, str], tmp_path: Path) -> None:
    page, _ = pages
    with Chromium(tmp_path / "browser") as browser:
        loaded = browser.open(page)
        assert loaded.errors == []
        assert browser.evaluate("document.title") == "vlmpipe compare: baseline vs after"
        assert browser.evaluate("document.getElementById('pwned')") is None
        assert browser.evaluate("document.querySelectorAll('blink, script, img').length") == 0
        headings = browser.evaluate("Array.from(document.querySelectorAll('h3.model')).map(h => h.textContent)")
        assert headings == [GOOD, "Qwen2-VL-7B-Instruct-GPTQ-Int8", EVIL_MODEL]  # the script is on the page as text
        shown = browser.evaluate("document.body.innerText")
        assert NEW_MODELS[0] in shown and "do not overlap" in shown
        assert loaded.errors == []
        shot = browser.screenshot(tmp_path / "compare.png")
    assert shot.stat().st_size > 20_000
