"""summary.json's JSON Schema (docs/summary.schema.json) is generated from the typed summary and kept in sync; the
summaries of real runs validate against it and keep every key of schema 1 (DESIGN.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT, invalid_summaries
from vlmpipe.analysis.summary import json_schema

#: The per-model keys DESIGN.md lists for schema 1 (present in every summary; null when not computed).
DESIGN_MODEL_KEYS = {
    "role", "n", "n_errors", "latency_s", "length_chars_mean", "chars_per_s_mean", "ttft_s", "spelling_errors_sum",
    "non_ru_en_letters_sum", "en_letters_pct", "off_language_rate", "rouge1_f_mean", "rouge2_f_mean",
    "rougeL_f_mean", "chrf_mean", "bleurt_mean", "bertscore_f_mean", "perplexity_mean", "fact_recall_mean",
    "hallucinated_number_rate", "consistency_mean", "distinct_answer_rate", "gpu_memory_gb_peak", "judge",
    "unavailable",
}


def test_the_schema_file_is_generated_from_the_typed_summary() -> None:
    written = json.loads((ROOT / "docs" / "summary.schema.json").read_text(encoding="utf-8"))
    assert written == json_schema(), "docs/summary.schema.json is out of date: run python scripts/summary_schema.py"


@pytest.mark.model
def test_the_demo_summary_validates_and_keeps_every_schema_1_key(demo_cli: tuple[int, str, Path]) -> None:
    _code, _out, runs = demo_cli
    summary_path = runs / "demo" / "report" / "summary.json"
    assert invalid_summaries(runs) == []
    s = json.loads(summary_path.read_text(encoding="utf-8"))
    assert s["schema"] == 1 and set(s["run"]) >= {"name", "items", "repeats"}
    (m,) = s["models"].values()
    assert set(m) >= DESIGN_MODEL_KEYS, DESIGN_MODEL_KEYS - set(m)
    assert set(m["latency_s"]) == {"mean", "p50", "p95", "max"}
    # one repeat per screenshot: no stability figure, and the summary says why
    assert m["consistency_mean"] is None and "2 successful repeats" in m["unavailable"]["consistency_mean"]
    # the chrF figure with its intervals, over the 8 screenshots
    chrf = m["fields"]["chrf_mean"]
    assert chrf["value"] == m["chrf_mean"] and chrf["n"] == 8 and chrf["n_items"] == 8
    assert chrf["ci95"][0] < chrf["value"] < chrf["ci95"][1]


def test_an_invalid_summary_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "run" / "report" / "summary.json"
    bad.parent.mkdir(parents=True)
    (tmp_path / "run" / "run.sqlite").write_bytes(b"")  # as if a run had written it
    bad.write_text(json.dumps({"schema": 1, "run": {"name": "r"}, "models": {"m": {"n": "many"}}}))
    problems = invalid_summaries(tmp_path)
    assert any("run: 'items' is a required property" in p for p in problems), problems
    assert any("models/m/n: 'many' is not of type 'integer'" in p for p in problems), problems
    (tmp_path / "run" / "run.sqlite").unlink()  # not a real run: keep it out of the end-of-session check
