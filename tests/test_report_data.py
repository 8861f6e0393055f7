"""What the report marks on each answer, read from the planted run's scored generations; model families; the
highlighting pieces."""

from __future__ import annotations

from typing import Any

from report_runs import GOOD, SMALL
from vlmpipe.analysis.aggregate import generation_table
from vlmpipe.analysis.families import family, same_family
from vlmpipe.app.pipeline import open_store
from vlmpipe.render import data


def test_family_strips_variant_suffixes() -> None:
    assert family("Qwen2-VL-7B-Instruct-GPTQ-Int4") == "Qwen2-VL-7B-Instruct"
    assert family("Qwen/Qwen2-VL-7B-Instruct-AWQ") == "Qwen2-VL-7B-Instruct"
    assert family("Qwen2-VL-2B-Instruct") == "Qwen2-VL-2B-Instruct"
    assert family("llava-1.6-fp8") == "llava-1.6"
    assert not same_family("Qwen2-VL-2B-Instruct", "Qwen2-VL-7B-Instruct")


def test_marks_from_the_metrics_details(planted: Any) -> None:
    with open_store(planted.run_dir) as store:
        rows = {(r["model"], r["item"]): r for r in generation_table(store) if r["error"] is None}
    misspelled = data.marks(rows[(SMALL, "failed_payment")]["metrics"])  # «Не праходит ... 43 рубля»
    assert misspelled == {"language": "ru", "off_language": False, "misspelled": ["праходит"], "invented": ["43"],
                          "refusal": None, "unanswerable": None}
    english = data.marks(rows[(SMALL, "cancelled_order")]["metrics"])  # «Hello! My order was cancelled...»
    assert english["language"] == "en" and english["off_language"] is True
    clean = data.marks(rows[(GOOD, "blocked_card")]["metrics"])  # the reference word for word
    assert clean == {"language": "ru", "off_language": False, "misspelled": [], "invented": [], "refusal": None,
                     "unanswerable": None}
    assert data.marks({})["off_language"] is False  # an unscored answer has no marks


def test_segments_mark_whole_words_case_insensitively() -> None:
    text = "Праходит оплата 43 рубля, а не 430; праходит снова"
    pieces = data.segments(text, ["праходит"], ["43"])
    assert "".join(p for p, _ in pieces) == text
    assert [(p, k) for p, k in pieces if k] == [("Праходит", "spell"), ("43", "number"), ("праходит", "spell")]
    assert data.segments("", ["x"], []) == [("", "")]
