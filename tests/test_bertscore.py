"""BERTScore with an explicit model and layer: loading, batching, recorded names, "unavailable: why" (tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_models import tiny_bert_encoder
from vlmpipe.core.config import config_from_dict
from vlmpipe.metrics.base import ScoreContext
from vlmpipe.metrics.bertscore import BertScoreMetric, BertScoreModel

pytestmark = pytest.mark.needs("torch", "bert_score")

REFS = ["не могу оплатить заказ картой", "деньги списали дважды", "когда возврат"]
CANDS = ["не могу оплатить заказ картой", "подписка промокод доставка", "возврат когда"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return tiny_bert_encoder(tmp_path_factory.mktemp("enc") / "tinybert")


def ctx_with(tmp_path: Path, settings: dict) -> ScoreContext:
    cfg = config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                            "metrics": {"settings": {"bertscore": settings}}})
    items = {f"i{n}": {"id": f"i{n}", "reference": ref} for n, ref in enumerate(REFS)}
    return ScoreContext(cfg=cfg, items=items)


def test_identical_text_scores_one_and_batching_does_not_change_scores(encoder):
    one = BertScoreModel(encoder, 2, batch_size=1).f1(CANDS, REFS)
    three = BertScoreModel(encoder, 2, batch_size=3).f1(CANDS, REFS)
    assert three == pytest.approx(one, abs=1e-5)
    assert one[0] == pytest.approx(1.0, abs=1e-5)  # same tokens, same embeddings: every cosine is 1
    assert one[1] < 0.999
    tok = BertScoreModel(encoder, 2).scorer._tokenizer
    assert tok.unk_token_id not in tok(CANDS[1])["input_ids"]  # the vocab file was read


def test_the_layer_is_used(encoder):
    l1 = BertScoreModel(encoder, 1).f1(CANDS[1:], REFS[1:])
    l3 = BertScoreModel(encoder, 3).f1(CANDS[1:], REFS[1:])
    assert l1 != pytest.approx(l3, abs=1e-4)


def test_metric_records_model_and_layer(encoder, tmp_path):
    ctx = ctx_with(tmp_path, {"model": str(encoder), "layer": 2})
    metric = BertScoreMetric()
    assert metric.unavailable(ctx) is None
    out = metric.score([{"item": f"i{n}", "text": c} for n, c in enumerate(CANDS)], ctx)
    assert out[0]["bertscore_f"][0] == pytest.approx(1.0, abs=1e-5)
    assert out[0]["bertscore_f"][1] == {"model": "tinybert@L2"}
    assert metric.summary_info(ctx) == {"bertscore_model": "tinybert@L2"}
    assert metric.version(ctx) != BertScoreMetric().version(ctx_with(tmp_path, {"model": str(encoder), "layer": 3}))


@pytest.mark.parametrize("settings", [{}, {"model": "x"}, {"layer": 9}])
def test_model_and_layer_are_both_required_no_language_default(settings, tmp_path):
    why = BertScoreMetric().unavailable(ctx_with(tmp_path, settings))
    assert why == ("bertscore: no model and layer configured (metrics.settings.bertscore.model and .layer; "
                   "no implicit default by language)")


def test_a_layer_outside_the_model_is_unavailable(encoder, tmp_path):
    why = BertScoreMetric().unavailable(ctx_with(tmp_path, {"model": str(encoder), "layer": 7}))
    assert why == "bertscore: layer 7 is outside 1..3 of tinybert"
