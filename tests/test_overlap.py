"""ROUGE on stemmed Unicode tokens and chrF++: a Russian pair computed by hand."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from metric_helpers import make_ctx, rows
from vlmpipe.core.wordtokens import StemmingTokenizer
from vlmpipe.metrics.overlap import Chrf, Rouge, chrf, rouge

REF = "Мой заказ отменили вчера"
GEN = "Заказ отменён вчера вечером"


def test_google_default_tokenizer_deletes_cyrillic() -> None:
    # The library's default tokenizer keeps [a-z0-9] only: identical Russian texts score 0.
    default = rouge_scorer.RougeScorer(["rouge1"]).score(REF, REF)["rouge1"].fmeasure
    assert default == 0.0
    assert rouge(REF, REF)["rouge1_f"] == pytest.approx(1.0)


def test_stemmed_tokens() -> None:
    assert StemmingTokenizer().tokenize(REF) == ["мо", "заказ", "отмен", "вчер"]
    assert StemmingTokenizer().tokenize(GEN) == ["заказ", "отмен", "вчер", "вечер"]  # ё folded to е
    assert StemmingTokenizer().tokenize("Payments FAILED, 20 588 ₽") == ["payment", "fail", "20", "588"]


def test_russian_rouge_pair_by_hand() -> None:
    # Stems: ref {мо, заказ, отмен, вчер}, gen {заказ, отмен, вчер, вечер}.
    # ROUGE-1: 3 common of 4 and 4 -> P = R = F = 3/4.
    # ROUGE-2: ref bigrams (мо заказ)(заказ отмен)(отмен вчер); gen (заказ отмен)(отмен вчер)(вчер вечер):
    #          2 common of 3 and 3 -> F = 2/3.  ROUGE-L: LCS «заказ отмен вчер» = 3 -> F = 3/4.
    r = rouge(GEN, REF)
    assert r == pytest.approx({"rouge1_f": 0.75, "rouge2_f": 2 / 3, "rougeL_f": 0.75})
    # Without stemming «отменили» ≠ «отменён» and «вчера» matches: 2 of 4 -> 1/2; no common bigram.
    assert rouge(GEN, REF, stemming=False) == pytest.approx({"rouge1_f": 0.5, "rouge2_f": 0.0, "rougeL_f": 0.5})


def test_rouge_metric_rows_and_missing_reference(tmp_path) -> None:
    ctx = make_ctx(tmp_path, {"a": {"reference": REF}, "b": {}})
    out = Rouge().score(rows(GEN) + rows(GEN, item="b"), ctx)
    assert out[0]["rouge1_f"][0] == pytest.approx(0.75)
    assert out[1]["rouge1_f"] == (None, "no reference")
    assert Rouge().unavailable(make_ctx(tmp_path, {"b": {}})) is not None


def test_chrf_plus_plus() -> None:
    assert chrf(REF, REF) == pytest.approx(100.0)
    assert chrf("абв", "где") == 0.0
    # Inflected forms share character n-grams: chrF rewards «отменён»/«отменили», unstemmed ROUGE does not.
    near = chrf("заказ отменён", "заказ отменили")
    far = chrf("заказ доставлен", "заказ отменили")
    assert 0 < far < near < 100


def test_chrf_metric(tmp_path) -> None:
    ctx = make_ctx(tmp_path, {"a": {"reference": REF}})
    assert Chrf().score(rows(REF), ctx)[0]["chrf"][0] == pytest.approx(100.0)
