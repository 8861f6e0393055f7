"""compare.html: written beside compare.json, hand-checked differences and interval overlap, untrusted names
shown as text, and clean in headless Chromium."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from browser import Chromium
from html_tables import table
from vlmpipe.app.cli import app

EVIL = '<script>document.title="PWNED";document.body.appendChild(document.createElement("blink")).id="pwned"</script>'
EVIL_MODEL = "Qwen" + EVIL
RUN_B_NAME = "after <b>upgrade</b>"
#: 2026-01-02 03:04:05 UTC, the A summary's modification time.
WRITTEN_A = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


def _model(ratio: float, ci: list[float], chrf: float, p50: float, errors: int) -> dict:
    return {"role": "candidate", "n": 20, "n_errors": errors, "error_rate": errors / 20,
            "errors_by_kind": {"timeout": errors} if errors else {}, "chrf_mean": chrf,
            "latency_s": {"p50": p50, "max": 3 * p50}, "judge": {"ratio_mean": ratio, "ratio_ci95": ci},
            "unavailable": {"bleurt_mean": "not installed"}}


def _summary(name: str, models: dict) -> dict:
    return {"schema": 1, "run": {"name": name, "items": 10, "repeats": 2, "prompt_hash": "p1"}, "models": models}


@pytest.fixture
def pages(tmp_path: Path) -> tuple[Path, str]:
    a = _summary("baseline", {"qwen-7b": _model(0.80, [0.76, 0.84], 50.0, 1.25, 0),
                              EVIL_MODEL: _model(0.60, [0.50, 0.70], 30.0, 0.5, 2),
                              "retired": _model(0.4, [0.3, 0.5], 20.0, 0.4, 0)})
    b = _summary(RUN_B_NAME, {"qwen-7b": _model(0.90, [0.86, 0.94], 47.5, 1.5, 1),
                              EVIL_MODEL: _model(0.65, [0.55, 0.75], 31.0, 0.5, 0),
                              "new<img src=x onerror=alert(1)>": _model(0.7, [0.6, 0.8], 40.0, 1.0, 0)})
    for name, s in (("a", a), ("b", b)):
        (tmp_path / name / "report").mkdir(parents=True)
        (tmp_path / name / "report" / "summary.json").write_text(json.dumps(s), encoding="utf-8")
    os.utime(tmp_path / "a" / "report" / "summary.json", (WRITTEN_A, WRITTEN_A))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "compare.html" in res.output
    assert (out / "compare.json").is_file()
    return out / "compare.html", res.output


def test_compare_html_contents(pages: tuple[Path, str]) -> None:
    page, _ = pages
    html = page.read_text(encoding="utf-8")
    runs = table(html, id="runs-table")
    assert runs.row("run")[1:] == ["baseline", RUN_B_NAME]
    assert runs.row("summary written")[1] == "2026-01-02 03:04 UTC"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", runs.row("summary written")[2])
    q = table(html, data_model="qwen-7b")
    # field, A, B, B − A, interval A, interval B, overlap — checked by hand
    assert q.row("chrF chrf_mean")[1:4] == ["50", "47.5", "-2.5"]
    assert q.row("latency p50, s latency_s.p50")[1:4] == ["1.25", "1.5", "+0.25"]
    assert q.row("errors n_errors")[1:4] == ["0", "1", "+1"]
    assert q.row("judge ratio judge.ratio_mean")[1:] == ["0.8", "0.9", "+0.1", "[0.76, 0.84]", "[0.86, 0.94]",
                                                         "do not overlap"]  # 0.84 < 0.86
    evil = table(html, data_model=EVIL_MODEL)  # the attribute, unescaped by the parser, is the name itself
    assert evil.row("judge ratio judge.ratio_mean")[1:] == ["0.6", "0.65", "+0.05", "[0.5, 0.7]", "[0.55, 0.75]",
                                                            "overlap"]
    assert [r[0] for r in q.rows[1:]] == ["errors n_errors", "judge ratio judge.ratio_mean", "chrF chrf_mean",
                                          "latency p50, s latency_s.p50", "latency max, s latency_s.max"]  # HEADLINE
    assert "It does not prove that nothing changed" in html  # the legend
    # untrusted text is escaped: no markup from a summary reaches the page
    assert EVIL not in html and "<b>upgrade</b>" not in html and "<img" not in html
    assert unescape(html).count(EVIL) >= 2 and "&lt;script&gt;" in html
    assert "<script" not in html  # the page has no script of its own either
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1))
    assert "default-src 'none'" in csp and "script-src 'none'" in csp
    assert not re.search(r'(src|href)="(https?:)?//', html)
    only_a = re.search(r'<ul id="only-a">(.*?)</ul>', html).group(1)
    only_b = re.search(r'<ul id="only-b">(.*?)</ul>', html).group(1)
    assert only_a == "<li>retired</li>" and only_b == "<li>new&lt;img src=x onerror=alert(1)&gt;</li>"


def test_compare_html_only_with_out(pages: tuple[Path, str]) -> None:
    page, _ = pages
    root = page.parent.parent
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert [p for p in before if p.name.startswith("compare")] == [Path("out/compare.html"), Path("out/compare.json")]
    res = CliRunner().invoke(app, ["compare", str(root / "a"), str(root / "b")], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "compare.html" not in res.output
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # without --out nothing is written


@pytest.mark.needs("chromium")
def test_compare_html_in_headless_chromium(pages: tuple[Path, str], tmp_path: Path) -> None:
    page, _ = pages
    with Chromium(tmp_path / "browser") as browser:
        loaded = browser.open(page)
        assert loaded.errors == []
        assert browser.evaluate("document.title") == f"vlmpipe compare: baseline vs {RUN_B_NAME}"
        assert browser.evaluate("document.getElementById('pwned')") is None
        assert browser.evaluate("document.querySelectorAll('blink, script, img').length") == 0
        headings = browser.evaluate("Array.from(document.querySelectorAll('h3.model')).map(h => h.textContent)")
        assert headings == ["qwen-7b", EVIL_MODEL]  # the script is on the page as text
        shown = browser.evaluate("document.body.innerText")
        assert "new<img src=x onerror=alert(1)>" in shown and "do not overlap" in shown
        assert loaded.errors == []
        shot = browser.screenshot(tmp_path / "compare.png")
    assert shot.stat().st_size > 20_000
