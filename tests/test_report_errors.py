"""index.html's Errors table: per-model errors by kind and error rate, in the ranking's order, only when a model
has errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import Chromium
from html_tables import table
from report_fixtures import ITEMS, MODELS, REPEATS, key, make_synthetic_run, patch_summary
from vlmpipe.app.pipeline import report
from vlmpipe.core.store import Store
from vlmpipe.render.html import render_index

#: Failures planted on top of the synthetic run's one timeout (Модель-2B, blocked_card, repeat 1).
FAILURES = [("Qwen2-VL-7B-Instruct-AWQ", "failed_payment", 1, "http_500"),
            ("Qwen2-VL-7B-Instruct-AWQ", "cancelled_order", 0, "http_500"),
            ("Qwen2-VL-7B-Instruct-AWQ", "blocked_card", 0, "http_429"),
            ("Модель-2B", "lost_image", 0, "timeout")]


@pytest.fixture
def index_with_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, run_dir = make_synthetic_run(tmp_path)
    store = Store(run_dir / "run.sqlite")
    for model, item, repeat, kind in FAILURES:
        store.put_generation({"key": key(model, item, repeat), "model": model, "role": "candidate", "item": item,
                              "repeat": repeat, "text": None, "error": f"failed: {kind}", "error_kind": kind,
                              "latency_s": None, "ttft_s": None, "prompt_tokens": 100, "completion_tokens": None,
                              "token_times": None})
    store.close()
    patch_summary(monkeypatch)
    report(run_dir)
    return run_dir / "report" / "index.html"


def test_errors_table_counts_by_kind_in_ranking_order(index_with_errors: Path) -> None:
    html = index_with_errors.read_text(encoding="utf-8")
    errors = table(html, id="errors-table")
    n = len(ITEMS) * REPEATS  # 8 generations per model
    assert n == 8
    # kinds by total count, then name: http_500 2, timeout 2 (1 planted + the fixture's), http_429 1
    assert errors.rows[0] == ["model", "errors", "error rate", "http_500", "timeout", "http_429"]
    # ranked like the main table: judge ratio 0.868, 0.832, 0.596, then the OCR baseline without one
    assert [r[0] for r in errors.rows[1:]] == MODELS
    assert [r[0] for r in table(html, id="ranking-table").rows[1:]] == MODELS
    assert errors.row("Qwen2-VL-7B-Instruct-AWQ")[1:] == ["3", "37.5%", "2", "0", "1"]  # 3 of 8
    assert errors.row("Модель-2B")[1:] == ["2", "25.0%", "0", "2", "0"]  # 2 of 8
    assert errors.row("Qwen2-VL-7B-Instruct")[1:] == ["0", "0.0%", "0", "0", "0"]
    assert errors.row("ocr-baseline")[1:] == ["0", "0.0%", "0", "0", "0"]
    assert "<code>http_429</code>: rate limited (HTTP 429)" in html
    assert "<code>http_500</code>: server error (HTTP 500)" in html


def test_no_errors_table_without_errors() -> None:
    clean = {"run": {"name": "clean"}, "models": {
        "a": {"role": "candidate", "n": 4, "n_errors": 0, "error_rate": 0.0, "errors_by_kind": {}, "chrf_mean": 50.0},
        "b": {"role": "candidate", "n": 4, "n_errors": 0, "error_rate": 0.0, "errors_by_kind": {}, "chrf_mean": 40.0}}}
    html = render_index(None, clean, [], [], [], None)
    assert 'id="ranking-table"' in html and 'id="errors-table"' not in html
    clean["models"]["b"].update(n_errors=1, error_rate=0.25, errors_by_kind={"<b>odd</b>": 1})
    html = render_index(None, clean, [], [], [], None)
    assert table(html, id="errors-table").row("b")[1:] == ["1", "25.0%", "1"]
    assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt;" in html  # a kind from imported data is text


@pytest.mark.needs("chromium")
def test_errors_table_in_headless_chromium(index_with_errors: Path, tmp_path: Path) -> None:
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(index_with_errors)
        assert page.errors == []
        names = "Array.from(document.querySelectorAll('#errors-table tbody tr')).map(r => r.dataset.model)"
        assert browser.evaluate(names) == MODELS
        header = "document.querySelectorAll('#errors-table th')[1]"  # errors
        browser.evaluate(f"{header}.click()")
        browser.evaluate(f"{header}.click()")  # descending: the most errors first
        assert browser.evaluate(names)[:2] == ["Qwen2-VL-7B-Instruct-AWQ", "Модель-2B"]
        assert page.errors == []
