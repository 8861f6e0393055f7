"""The workbook and its CSVs on real runs: the summary sheet flattened from the typed summary, the per-generation
sheets split by the catalogue, row counts against what the run planted, formula-safe cells."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from report_runs import (
    AWQ,
    FORMULA,
    GOOD,
    ITEMS,
    MODELS,
    PLANTED,
    REPEATS,
    SMALL,
    USED,
    baseline_rows,
    import_run,
    planted_run,
)
from vlmpipe.analysis.judge import plan_judgements
from vlmpipe.app.pipeline import open_store
from vlmpipe.render.tables import BASE_COLUMNS

#: planned generations: every model × every screenshot (the lost one fails) × repeats
GENERATIONS = len(MODELS) * len(ITEMS) * REPEATS
#: judged in both orders: every successful generation — the good and formula models 3 × 2, the AWQ variant 3 of
#: 6 (two 500s and a 429), the 2B model 5 of 6 (a timeout)
JUDGEMENTS = 2 * (6 + 3 + 5 + 6)


@pytest.fixture(scope="module")
def workbook(planted: Any) -> Any:
    return openpyxl.load_workbook(planted.report_dir / "results.xlsx")


def _records(ws: Any) -> list[dict[str, Any]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in r), strict=True)) for r in ws.iter_rows(min_row=2)]


def test_workbook_sheets_headers_and_row_counts(workbook: Any) -> None:
    assert GENERATIONS == 32 and JUDGEMENTS == 40
    wb = workbook
    assert wb.sheetnames == ["summary", "tech_stats", "auto_metrics", "judgements", "generations"]
    header = {name: [c.value for c in wb[name][1]] for name in wb.sheetnames}
    assert header["tech_stats"][:9] == ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s",
                                        "length_chars", "chars_per_s"]
    # the columns of every metric with a technical field (letters, spelling, language, injection, perplexity)...
    technical = {"non_ru_en_letters", "en_letters_pct", "unique_en_words", "spelling_errors",
                 "spelling_errors_detail", "language", "off_language", "injection_suspected", "perplexity"}
    # ...and of the others (overlap, grounding)
    automatic = {"rouge1_f", "rouge2_f", "rougeL_f", "chrf", "fact_recall", "fact_recall_detail",
                 "hallucinated_numbers", "hallucinated_numbers_detail"}
    assert technical <= set(header["tech_stats"]) and not automatic & set(header["tech_stats"])
    assert header["auto_metrics"][:5] == ["model", "item", "repeat", "text", "reference"]
    assert automatic <= set(header["auto_metrics"]) and not technical & set(header["auto_metrics"])
    assert header["judgements"][:11] == ["model", "item", "repeat", "candidate_position", "candidate", "reference",
                                         "reference_score", "candidate_score", "explanation_candidate",
                                         "explanation_reference", "error"]
    assert "signature" not in header["judgements"] and "raw" in header["judgements"]
    assert header["generations"][:9] == BASE_COLUMNS
    rows = {name: wb[name].max_row - 1 for name in wb.sheetnames}
    assert rows == {"summary": len(MODELS), "tech_stats": GENERATIONS, "auto_metrics": GENERATIONS,
                    "judgements": JUDGEMENTS, "generations": GENERATIONS}
    for name in wb.sheetnames:
        assert wb[name].freeze_panes == "A2"


def test_summary_sheet_is_the_typed_summary_flattened(workbook: Any) -> None:
    ws = workbook["summary"]
    header = [c.value for c in ws[1]]
    assert header[:2] == ["model", "role"]
    # every catalogue field the run has, with both intervals split into .lo/.hi; the judge block's own keys stay
    for key in ("judge.ratio_mean", "chrf_mean", "perplexity_mean", "consistency_mean"):
        assert {key, f"{key}.ci95.lo", f"{key}.ci95.hi", f"{key}.ci95_naive.lo", f"{key}.ci95_naive.hi"} <= set(header)
    assert {"spelling_errors_sum", "latency_s.p95", "judge.ratio_ci95.lo", "judge.tie_rate",
            "perplexity_scorer"} <= set(header)
    assert "bleurt_mean" not in header  # no model has it
    by_model = {r["model"]: r for r in _records(ws)}
    assert list(by_model) == MODELS
    good, awq, small = by_model[GOOD], by_model[AWQ], by_model[SMALL]
    assert good["chrf_mean"] == pytest.approx(100.0) and good["chrf_mean.ci95.lo"] == pytest.approx(100.0)
    assert good["judge.ratio_mean"] == 1.0 and awq["judge.ratio_mean"] == 0.75 and small["judge.ratio_mean"] == 0.5
    assert (awq["judge.ratio_mean.ci95.lo"], awq["judge.ratio_mean.ci95.hi"]) == (0.75, 0.75)
    assert by_model[FORMULA]["judge.ratio_mean"] is None and by_model[FORMULA]["judge.n_failed"] == 6
    assert (awq["n"], awq["n_errors"], small["n_errors"]) == (8, 5, 3)
    assert small["hallucinated_number_rate"] == pytest.approx(2 / 5)  # «43 рубля» in 2 of its 5 answers
    assert small["perplexity_scorer"] == "endpoint:scorer-lm"
    col = header.index("judge.ratio_mean.ci95.lo") + 1
    assert ws.cell(2, col).number_format == "0.000"


def test_workbook_details_and_formula_safety(workbook: Any) -> None:
    ws = workbook["tech_stats"]
    rows = _records(ws)
    misspelled = [r for r in rows if r["model"] == SMALL and r["item"] == "failed_payment"]
    assert [(r["spelling_errors"], r["spelling_errors_detail"]) for r in misspelled] == [(1, "праходит")] * REPEATS
    assert {r["language"] for r in rows if r["model"] == GOOD and r["error"] is None} == {"ru"}
    formulas = [c for c in ws["D"] if isinstance(c.value, str) and c.value.startswith("=HYPERLINK")]
    assert len(formulas) == len(USED)  # the formula bot's first answer to each screenshot
    assert all(c.data_type == "s" for c in formulas)
    planted = [r for r in rows if r["text"] and PLANTED in r["text"]]
    assert len(planted) == REPEATS and {r["model"] for r in planted} == {SMALL}
    auto = _records(workbook["auto_metrics"])
    invented = [r for r in auto if r["hallucinated_numbers_detail"]]
    assert {(r["model"], r["item"], r["hallucinated_numbers_detail"]) for r in invented} == {
        (SMALL, "failed_payment", "43")}
    judged = _records(workbook["judgements"])
    first = judged[0]
    assert first["candidate"] and first["reference"].startswith("Здравствуйте")
    scores = {(r["model"], r["candidate_score"], r["reference_score"]) for r in judged if r["error"] is None}
    assert scores == {(GOOD, 8, 8), (AWQ, 6, 8), (SMALL, 4, 8)}
    assert {r["model"] for r in judged if r["error"]} == {FORMULA}


def test_csvs_match_sheets_and_generations_contract(planted: Any, workbook: Any) -> None:
    report = planted.report_dir
    with (report / "generations.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:9] == BASE_COLUMNS and len(rows) - 1 == GENERATIONS
    for name in ("summary", "tech_stats", "auto_metrics"):
        with (report / f"{name}.csv").open(encoding="utf-8") as f:
            table = list(csv.reader(f))
        sheet = list(workbook[name].iter_rows(values_only=True))
        assert table[0] == list(sheet[0]), name
        assert len(table) == len(sheet), name
    with (report / "judgements.csv").open(encoding="utf-8") as f:  # written by the judge stage's exporter
        assert len(list(csv.reader(f))) - 1 == JUDGEMENTS


def test_without_judge_the_sheet_says_so(tmp_path: Path) -> None:
    run_dir = import_run(tmp_path, "imported", baseline_rows())
    ws = openpyxl.load_workbook(run_dir / "report" / "results.xlsx")["judgements"]
    assert ws.max_row == 2 and ws["A2"].value.startswith("judge not run: the LLM judge is not configured")
    assert not (run_dir / "report" / "judgements.csv").exists()


def test_judgements_outside_the_plan_are_left_out(tmp_path: Path) -> None:
    """Run the good model with 2 repeats, then the same config with 1: the second repeat's judgements stay in the
    store but are no longer the plan's, so the report leaves them out."""
    first = planted_run(tmp_path, models=[GOOD], name="replanned")
    with open_store(first.run_dir) as store:
        assert len(plan_judgements(store)) == 2 * len(USED) * REPEATS
    again = planted_run(tmp_path, models=[GOOD], name="replanned", repeats=1)
    with open_store(again.run_dir) as store:
        rows = plan_judgements(store)
        stored = store.conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
    assert stored == 2 * len(USED) * REPEATS and len(rows) == 2 * len(USED)
    assert {r["repeat"] for r in rows} == {0} and {r["candidate_position"] for r in rows} == {"A", "B"}
    assert openpyxl.load_workbook(again.report_dir / "results.xlsx")["judgements"].max_row - 1 == len(rows)
