"""The workbook and its CSVs: sheets, headers and row counts against the store; formula-safe cells."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import openpyxl
import pytest

from report_fixtures import ITEMS, MODELS, PLANTED, REPEATS, make_synthetic_run, patch_summary
from vlmpipe.app.pipeline import report
from vlmpipe.render.tables import BASE_COLUMNS


@pytest.fixture
def synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, run_dir = make_synthetic_run(tmp_path)
    patch_summary(monkeypatch)
    report(run_dir)
    return run_dir / "report"


def _store_counts(run_dir: Path) -> tuple[int, int]:
    con = sqlite3.connect(run_dir / "run.sqlite")
    gens = con.execute("SELECT COUNT(*) FROM generations g JOIN plan p ON p.key = g.key").fetchone()[0]
    judged = con.execute("SELECT COUNT(*) FROM judgements WHERE signature = 'sig1'").fetchone()[0]
    con.close()
    return gens, judged


def test_workbook_sheets_headers_and_row_counts(synthetic: Path) -> None:
    gens, judged = _store_counts(synthetic.parent)
    assert gens == len(MODELS) * len(ITEMS) * REPEATS == 32
    assert judged == 2 * gens  # both orders; the row of an older judge signature is not counted
    wb = openpyxl.load_workbook(synthetic / "results.xlsx")
    assert wb.sheetnames == ["summary", "tech_stats", "auto_metrics", "judgements", "generations"]
    header = {name: [c.value for c in wb[name][1]] for name in wb.sheetnames}
    assert header["tech_stats"][:9] == ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s",
                                        "length_chars", "chars_per_s"]
    for col in ("spelling_errors", "spelling_errors_detail", "language", "off_language", "perplexity"):
        assert col in header["tech_stats"], col
    assert header["auto_metrics"][:5] == ["model", "item", "repeat", "text", "reference"]
    for col in ("chrf", "rouge1_f", "hallucinated_numbers", "hallucinated_numbers_detail", "consistency"):
        assert col in header["auto_metrics"], col
    assert "perplexity" not in header["auto_metrics"]
    assert header["judgements"][:11] == ["model", "item", "repeat", "candidate_position", "candidate", "reference",
                                         "reference_score", "candidate_score", "explanation_candidate",
                                         "explanation_reference", "error"]
    assert "signature" not in header["judgements"] and "raw" in header["judgements"]
    assert header["generations"][:9] == BASE_COLUMNS
    assert {"judge.ratio_ci95.lo", "judge.ratio_ci95.hi", "latency_s.p95"} <= set(header["summary"])
    rows = {name: wb[name].max_row - 1 for name in wb.sheetnames}
    assert rows == {"summary": len(MODELS), "tech_stats": gens, "auto_metrics": gens, "judgements": judged,
                    "generations": gens}
    for name in wb.sheetnames:
        assert wb[name].freeze_panes == "A2"
    ws = wb["summary"]
    col = header["summary"].index("judge.ratio_ci95.lo") + 1
    assert ws.cell(2, col).value == pytest.approx(0.834)
    assert ws.cell(2, col).number_format == "0.000"


def test_workbook_details_and_formula_safety(synthetic: Path) -> None:
    wb = openpyxl.load_workbook(synthetic / "results.xlsx")
    ws = wb["tech_stats"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]
    qwen = next(r for r in rows if r["model"] == MODELS[0])
    assert qwen["spelling_errors"] == 1 and qwen["spelling_errors_detail"] == "праходит"
    assert qwen["language"] == "ru"
    ocr = next(r for r in rows if r["model"] == "ocr-baseline")
    assert ocr["text"].startswith("=HYPERLINK")
    cell = next(c for c in ws["D"] if isinstance(c.value, str) and c.value.startswith("="))
    assert cell.data_type == "s"
    planted = [r for r in rows if r["text"] and PLANTED in r["text"]]
    assert len(planted) == 1 and planted[0]["model"] == "Модель-2B"
    judged = wb["judgements"]
    jh = [c.value for c in judged[1]]
    first = dict(zip(jh, (c.value for c in judged[2]), strict=True))
    assert (first["model"], first["item"], first["repeat"]) == (MODELS[0], ITEMS[0][0], 0)
    assert first["candidate_score"] == 8 and first["reference_score"] == 9
    assert first["candidate"].startswith("Здравствуйте") and first["reference"].startswith("Эталон")


def test_csvs_match_sheets_and_generations_contract(synthetic: Path) -> None:
    with (synthetic / "generations.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:9] == BASE_COLUMNS and len(rows) - 1 == 32
    wb = openpyxl.load_workbook(synthetic / "results.xlsx", read_only=True)
    for name in ("summary", "tech_stats", "auto_metrics"):
        with (synthetic / f"{name}.csv").open(encoding="utf-8") as f:
            table = list(csv.reader(f))
        sheet = list(wb[name].iter_rows(values_only=True))
        assert table[0] == list(sheet[0]), name
        assert len(table) == len(sheet), name
    with (synthetic / "judgements.csv").open(encoding="utf-8") as f:  # written by the judge stage's exporter
        assert len(list(csv.reader(f))) == wb["judgements"].max_row


def test_without_judge_the_sheet_says_so(tmp_path: Path) -> None:
    cfg, run_dir = make_synthetic_run(tmp_path, with_judge=False)
    from vlmpipe.core.store import Store
    from vlmpipe.render.writer import write_report

    with Store(run_dir / "run.sqlite") as store:
        write_report(cfg, store, run_dir)
    wb = openpyxl.load_workbook(run_dir / "report" / "results.xlsx")
    ws = wb["judgements"]
    assert ws.max_row == 2 and ws["A2"].value.startswith("judge not run: the LLM judge is not configured")
    assert not (run_dir / "report" / "judgements.csv").exists()


def test_judgements_outside_the_plan_are_left_out(tmp_path: Path) -> None:
    from report_fixtures import key
    from vlmpipe.analysis.judge import plan_judgements
    from vlmpipe.core.store import Store

    _, run_dir = make_synthetic_run(tmp_path)
    with Store(run_dir / "run.sqlite") as store:
        assert len(plan_judgements(store)) == 64
        store.conn.execute("DELETE FROM plan WHERE key = ?", (key(MODELS[0], ITEMS[0][0], 0),))
        rows = plan_judgements(store)
    assert len(rows) == 62
    assert [r["candidate_position"] for r in rows[:2]] == ["A", "B"]
    row = next(r for r in rows if r["generation_key"] == key(MODELS[1], ITEMS[1][0], 1))
    assert (row["model"], row["item"], row["repeat"]) == (MODELS[1], ITEMS[1][0], 1)
    assert row["candidate"].startswith("Здравствуйте")
