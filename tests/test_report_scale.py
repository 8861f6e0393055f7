"""The report of a large run, on small real runs with small limits: the gallery pages and filters in headless
Chromium (packed cards unpacked by the page's script, under its CSP), full-size screenshots under report/images/
named by content, and workbook sheets split past a row limit with a note.

The planted run (tests/report_runs.py) is re-reported into a copy with 2 cards per gallery page, packed as a large
run's are: its 4 screenshots make 2 pages, the second one packed. What each filter must show is read from the store
(the flags the metrics stored), not from the page.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from browser import Chromium, chromium_path
from report_runs import ITEMS, MODELS, PLANTED, REPEATS, SMALL
from vlmpipe.app.pipeline import open_store, run_config
from vlmpipe.render import write_report
from vlmpipe.render.tables import BASE_COLUMNS

CHROMIUM = pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (scripts/setup.sh installs it)")
PAGE = 2

#: waits until the gallery has drawn what its controls asked for (it may unpack the packed cards first)
DRAWN = """new Promise(function (done) {
  (function poll() { var s = document.getElementById('gallery-status');
    if (s.textContent && s.textContent.indexOf('unpacking') < 0) { done(s.textContent); }
    else { setTimeout(poll, 20); } })(); })"""
#: the answers on screen: (card, model, repeat) of every .gen not hidden by the filter
VISIBLE = """Array.from(document.querySelectorAll('#gallery-cards .gen')).filter(function (g) {
  for (var e = g; e && e.id !== 'gallery-cards'; e = e.parentElement) { if (e.hidden) { return false; } }
  return true; }).map(function (g) { return [g.closest('section.card').dataset.item, g.dataset.model,
  +g.dataset.repeat]; })"""
CARDS = "Array.from(document.querySelectorAll('#gallery-cards > section.card')).map(c => c.dataset.item)"


def rereport(planted: Any, folder: Path, **options: Any) -> Path:
    """A copy of the planted run, reported again with ``options`` (``write_report``'s)."""
    run = folder / "planted"
    shutil.copytree(planted.run_dir, run, ignore=shutil.ignore_patterns("report"))
    with open_store(run) as store:
        write_report(run_config(run), store, run, **options)
    return run


@pytest.fixture(scope="module")
def paged(planted: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted run with 2 gallery cards per page and 10 rows per workbook sheet."""
    return rereport(planted, tmp_path_factory.mktemp("paged"), gallery_page=PAGE, pack_above=0, max_sheet_rows=10)


def stored(run: Path) -> dict[str, set[tuple[str, str, int]]]:
    """``{flag: {(item, model, repeat)}}`` of the planted run's answers, from the store's scores and errors."""
    flags: dict[str, set[tuple[str, str, int]]] = {"error": set(), "off-language": set(), "invented-numbers": set(),
                                                   "misspelled": set(), "all": set()}
    with open_store(run) as store:
        gens = [g for chunk in store.iter_generations() for g in chunk]
        scores = store.scores_of([g["key"] for g in gens])
    for g in gens:
        key = (g["item"], g["model"], g["repeat"])
        flags["all"].add(key)
        s = scores[g["key"]]
        if g["error"] is not None:
            flags["error"].add(key)
        if (s.get("off_language") or (0, None))[0]:
            flags["off-language"].add(key)
        if (s.get("hallucinated_numbers") or (0, None))[0]:
            flags["invented-numbers"].add(key)
        if (s.get("spelling_errors") or (0, None))[0]:
            flags["misspelled"].add(key)
    return flags


def choose(browser: Chromium, select: str, label_start: str) -> str:
    """Pick the option of ``select`` whose label starts with ``label_start``; returns the gallery's status."""
    found = browser.evaluate(
        f"(function () {{ var s = document.getElementById('{select}');"
        f" var o = Array.from(s.options).find(o => o.textContent.indexOf({label_start!r}) === 0);"
        " if (!o) { return false; } s.value = o.value; s.dispatchEvent(new Event('change')); return true; })()")
    assert found, f"no option {label_start!r} in {select}"
    return browser.evaluate(DRAWN)


@CHROMIUM
def test_gallery_pages_and_filters_in_chromium(paged: Path, tmp_path: Path) -> None:
    index = paged / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert html.count('<section class="card"') == PAGE  # the first page as it is; the others packed
    assert 'id="gallery-packed"' in html and PLANTED not in html
    expected = stored(paged)
    cards = list(ITEMS)
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(index)
        assert page.errors == []
        assert browser.evaluate(CARDS) == cards[:PAGE]
        assert browser.evaluate(DRAWN).endswith("page 1 of 2")
        # the next page: the packed cards, unpacked and shown; the planted script shown as text, never run
        browser.evaluate("document.getElementById('gallery-next').click()")
        assert browser.evaluate(DRAWN).startswith("screenshots 3–4 of 4")
        assert browser.evaluate(CARDS) == cards[PAGE:2 * PAGE]
        assert {tuple(v) for v in browser.evaluate(VISIBLE)} == {k for k in expected["all"] if k[0] in cards[PAGE:]}
        assert browser.evaluate("document.getElementById('gallery-next').disabled") is True
        # each flag: exactly the answers the store flags, on the screenshots that have one, pages of PAGE
        for flag, label in (("off-language", "off-language"), ("invented-numbers", "invented numbers"),
                            ("error", "failed"), ("misspelled", "misspelled words")):
            want = expected[flag]
            assert want, flag
            status = choose(browser, "gallery-flag", label)
            shots = [c for c in cards if any(k[0] == c for k in want)]
            assert f"of {len(shots)} with a matching answer ({len(want)} answers)" in status, (flag, status)
            seen: set[tuple[str, str, int]] = set()
            for p in range((len(shots) + PAGE - 1) // PAGE):
                if p:
                    browser.evaluate("document.getElementById('gallery-next').click()")
                    browser.evaluate(DRAWN)
                assert browser.evaluate(CARDS) == shots[p * PAGE:(p + 1) * PAGE], flag
                seen |= {tuple(v) for v in browser.evaluate(VISIBLE)}
            assert seen == want, flag
        # a model and a flag together; then the model alone, over both pages
        choose(browser, "gallery-flag", "off-language")
        choose(browser, "gallery-model", SMALL)
        assert {tuple(v) for v in browser.evaluate(VISIBLE)} == {k for k in expected["off-language"] if k[1] == SMALL}
        choose(browser, "gallery-flag", "all answers")
        seen = {tuple(v) for v in browser.evaluate(VISIBLE)}
        browser.evaluate("document.getElementById('gallery-next').click()")
        browser.evaluate(DRAWN)
        seen |= {tuple(v) for v in browser.evaluate(VISIBLE)}
        assert seen == {k for k in expected["all"] if k[1] == SMALL}
        # no filter: every answer of a page again, repeats folded
        choose(browser, "gallery-model", "all models")
        assert browser.evaluate(CARDS) == cards[:PAGE]
        assert len(browser.evaluate(VISIBLE)) == PAGE * len(MODELS) * REPEATS
        assert page.errors == []


@CHROMIUM
def test_packed_cards_show_model_text_as_text(planted: Any, tmp_path: Path) -> None:
    """One card per page: the planted script (the 2B model's answer to the second screenshot) is packed, unpacked
    by the page's script and shown as text; it never runs."""
    run = rereport(planted, tmp_path, gallery_page=1, pack_above=0)
    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;document.title" not in html  # not on the first page: packed
    with Chromium(tmp_path / "browser") as browser:
        page = browser.open(run / "report" / "index.html")
        browser.evaluate("document.getElementById('gallery-next').click()")
        assert browser.evaluate(DRAWN).startswith("screenshots 2–2 of 4")
        assert browser.evaluate(CARDS) == ["cancelled_order"]
        browser.evaluate("document.querySelectorAll('#gallery-cards details').forEach(d => d.open = true)")
        assert PLANTED in browser.evaluate("document.getElementById('gallery-cards').innerText")
        assert browser.evaluate("document.title") == "vlmpipe report: planted"
        assert browser.evaluate("document.getElementById('pwned')") is None
        assert browser.evaluate("document.querySelectorAll('blink').length") == 0
        src = browser.evaluate("document.querySelector('#gallery-cards .shot img').src")
        href = browser.evaluate("document.querySelector('#gallery-cards .shot a').getAttribute('href')")
        assert src.startswith("data:image/") and (run / "report" / href).is_file()
        assert page.errors == []


def test_full_size_screenshots_are_files_named_by_content(paged: Path) -> None:
    report = paged / "report"
    images = sorted((report / "images").iterdir())
    assert len(images) == len(ITEMS) - 1  # the lost screenshot has none
    for image in images:
        assert image.stem == hashlib.sha256(image.read_bytes()).hexdigest() and image.suffix == ".png"
    html = (report / "index.html").read_text(encoding="utf-8")
    assert html.count('href="images/') == PAGE  # the first page's cards link theirs; the packed ones too, packed


def test_workbook_sheets_split_past_the_row_limit(paged: Path) -> None:
    report = paged / "report"
    wb = openpyxl.load_workbook(report / "results.xlsx")
    n = len(MODELS) * len(ITEMS) * REPEATS  # 32 generations: 9 data rows per sheet of 10 rows
    parts = ["generations", "generations 2", "generations 3", "generations 4"]
    assert wb.sheetnames[:1] == ["summary"] and wb.sheetnames[-1] == "notes"
    assert [s for s in wb.sheetnames if s.startswith("generations")] == parts
    rows: list[tuple[Any, ...]] = []
    for name in parts:
        sheet = list(wb[name].iter_rows(values_only=True))
        assert list(sheet[0][:9]) == BASE_COLUMNS and len(sheet) <= 10 and wb[name].freeze_panes == "A2"
        rows += sheet[1:]
    assert len(rows) == n
    with (report / "generations.csv").open(encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert len(table) == n + 1 and [r[:3] for r in table[1:]] == [[str(v) for v in r[:3]] for r in rows]
    notes = [r[0] for r in wb["notes"].iter_rows(min_row=2, values_only=True)]
    assert any(n.startswith("generations: 32 rows") and "'generations 4' (5)" in n for n in notes), notes
    assert {s.split(" ")[0] for s in wb.sheetnames} == {"summary", "tech_stats", "auto_metrics", "judgements",
                                                        "generations", "notes"}


def test_worker_processes_write_the_report_one_process_writes(planted: Any, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A large run's tables and gallery come from two worker processes: the same files as made in one process."""
    options = {"gallery_page": PAGE, "pack_above": 0, "max_sheet_rows": 10}
    here = rereport(planted, tmp_path / "here", **options) / "report"
    with caplog.at_level(logging.INFO, logger="vlmpipe.render"):
        pooled = rereport(planted, tmp_path / "pooled", parallel_min_rows=0, **options) / "report"
    assert not [r.message for r in caplog.records if "made in this process" in r.message]  # the workers made them
    names = sorted(p.name for p in here.iterdir() if p.is_file() and p.suffix != ".png")
    assert names == sorted(p.name for p in pooled.iterdir() if p.is_file() and p.suffix != ".png")
    for name in names:
        if name == "results.xlsx":
            a, b = openpyxl.load_workbook(here / name), openpyxl.load_workbook(pooled / name)
            assert a.sheetnames == b.sheetnames
            for sheet in a.sheetnames:
                assert list(a[sheet].iter_rows(values_only=True)) == list(b[sheet].iter_rows(values_only=True))
        else:
            assert (here / name).read_bytes() == (pooled / name).read_bytes(), name
    assert sorted(p.name for p in (here / "images").iterdir()) == sorted(p.name for p in (pooled / "images").iterdir())
    assert not list(pooled.glob(".sheets-*"))  # the workers' sheet files are gone
