"""The report's accessors: families, pairwise normalisation, per-answer marks and highlighting pieces."""

from __future__ import annotations

from vlmpipe.analysis import access
from vlmpipe.render import data


def test_family_strips_variant_suffixes() -> None:
    assert access.family("Qwen2-VL-7B-Instruct-GPTQ-Int4") == "Qwen2-VL-7B-Instruct"
    assert access.family("Qwen/Qwen2-VL-7B-Instruct-AWQ") == "Qwen2-VL-7B-Instruct"
    assert access.family("Qwen2-VL-2B-Instruct") == "Qwen2-VL-2B-Instruct"
    assert access.family("llava-1.6-fp8") == "llava-1.6"
    assert access.family("Qwen2-VL-2B-Instruct") != access.family("Qwen2-VL-7B-Instruct")


def test_pairwise_spellings_and_reversal() -> None:
    s = {"pairwise": [{"model_a": "x", "model_b": "y", "difference": 0.1, "diff_ci95": [0.02, 0.2],
                       "prob_a_better": 0.97}, {"a": "x"}, "junk"]}
    pairs = access.pairwise(s)
    assert len(pairs) == 1 and pairs[0]["ci95"] == (0.02, 0.2) and pairs[0]["p_a_better"] == 0.97
    back = access.find_pair(pairs, "y", "x")
    assert back["diff"] == -0.1 and back["ci95"] == (-0.2, -0.02) and abs(back["p_a_better"] - 0.03) < 1e-12
    assert access.find_pair(pairs, "x", "z") is None
    as_judge_writes = {"pairwise": {"judge.ratio": [{"a": "x", "b": "y", "metric": "judge.ratio_mean", "diff": 0.1,
                                                     "ci95": [0.02, 0.2], "p_a_better": 0.97, "n_items": 10}]}}
    (p,) = access.pairwise(as_judge_writes)
    assert p["metric"] == "judge.ratio_mean" and p["n"] == 10 and p["ci95"] == (0.02, 0.2)


def test_marks_from_metric_details() -> None:
    mk = data.marks({"language": (None, "en"), "spelling_errors": (2.0, {"words": ["праходит", "денги"]}),
                     "hallucinated_numbers": (1.0, ["43"])})
    assert mk == {"language": "en", "off_language": True, "misspelled": ["праходит", "денги"], "invented": ["43"]}
    assert data.marks({"language": (None, "ru"), "off_language": (0.0, None)})["off_language"] is False
    assert data.marks({})["off_language"] is False
    short = data.marks({"language": (None, "short")})  # too short to judge: neither a language nor off
    assert short["language"] is None and short["off_language"] is False
    grounding = data.marks({"hallucinated_numbers": (1.0, {"numbers": ["43"], "sources": ["reference"]})})
    assert grounding["invented"] == ["43"]


def test_segments_mark_whole_words_case_insensitively() -> None:
    text = "Праходит оплата 43 рубля, а не 430; праходит снова"
    pieces = data.segments(text, ["праходит"], ["43"])
    assert "".join(p for p, _ in pieces) == text
    assert [(p, k) for p, k in pieces if k] == [("Праходит", "spell"), ("43", "number"), ("праходит", "spell")]
    assert data.segments("", ["x"], []) == [("", "")]
