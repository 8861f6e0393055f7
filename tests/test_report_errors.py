"""index.html's Errors table on real runs: per-model errors by kind and error rate, in the ranking's order, only
when a model has errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from browser import Chromium
from html_tables import table
from report_runs import AWQ, FORMULA, GOOD, ITEMS, REPEATS, SMALL, after_rows, baseline_rows, import_run


@pytest.fixture(scope="module")
def html(planted: Any) -> str:
    return (planted.report_dir / "index.html").read_text(encoding="utf-8")


def test_errors_table_counts_by_kind_in_ranking_order(html: str) -> None:
    errors = table(html, id="errors-table")
    n = len(ITEMS) * REPEATS
    assert n == 8  # generations per model
    # planted: the lost screenshot fails both repeats of every model (4 × 2 "image"); the AWQ variant's first
    # request per screenshot got HTTP 500, 500, 429; the 2B model's first request for blocked_card stalled past
    # its 1 s timeout. Kinds by total count, then name: image 8, http_500 2, http_429 1, timeout 1
    assert errors.rows[0] == ["model", "errors", "error rate", "image", "http_500", "http_429", "timeout"]
    # ranked like the main table: judge ratio 1.0, 0.75, 0.5, then the formula bot without one
    order = [GOOD, AWQ, SMALL, FORMULA]
    assert [r[0] for r in errors.rows[1:]] == order
    assert [r[0] for r in table(html, id="ranking-table").rows[1:]] == order
    assert errors.row(AWQ)[1:] == ["5", "62.5%", "2", "2", "1", "0"]  # 5 of 8
    assert errors.row(SMALL)[1:] == ["3", "37.5%", "2", "0", "0", "1"]
    assert errors.row(GOOD)[1:] == ["2", "25.0%", "2", "0", "0", "0"]
    assert errors.row(FORMULA)[1:] == ["2", "25.0%", "2", "0", "0", "0"]
    assert "<code>http_429</code>: rate limited (HTTP 429)" in html
    assert "<code>http_500</code>: server error (HTTP 500)" in html
    assert "<code>image</code>: the screenshot could not be read" in html


def test_no_errors_table_without_errors_and_imported_failures(tmp_path: Path) -> None:
    """An imported run whose only failures are recorded ones: kind ``imported``; one without failures: no table."""
    clean = import_run(tmp_path, "clean", [r for r in after_rows() if not r["error"]])
    page = (clean / "report" / "index.html").read_text(encoding="utf-8")
    assert 'id="ranking-table"' in page and 'id="errors-table"' not in page
    failed = import_run(tmp_path, "failed", baseline_rows())
    errors = table((failed / "report" / "index.html").read_text(encoding="utf-8"), id="errors-table")
    assert errors.rows[0] == ["model", "errors", "error rate", "imported"]
    evil = next(r for r in errors.rows[1:] if r[0].startswith("Qwen<script>"))
    assert evil[1:] == ["2", "50.0%", "2"]  # its two failed second repeats, of 4


@pytest.mark.needs("chromium")
def test_errors_table_in_headless_chromium(planted: Any, tmp_path: Path) -> None:
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(planted.report_dir / "index.html")
        assert page.errors == []
        names = "Array.from(document.querySelectorAll('#errors-table tbody tr')).map(r => r.dataset.model)"
        assert browser.evaluate(names) == [GOOD, AWQ, SMALL, FORMULA]
        header = "document.querySelectorAll('#errors-table th')[1]"  # errors
        browser.evaluate(f"{header}.click()")
        browser.evaluate(f"{header}.click()")  # descending: the most errors first
        assert browser.evaluate(names)[:2] == [AWQ, SMALL]
        assert page.errors == []
