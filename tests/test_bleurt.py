"""BLEURT from a port-format checkpoint: loading, batching, and the "unavailable: why" path (tiny random models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import optional_import
from tiny_models import tiny_bleurt_from_bert, tiny_bleurt_projected
from vlmpipe.core.config import config_from_dict
from vlmpipe.metrics.base import ScoreContext
from vlmpipe.metrics.bleurt import NO_CHECKPOINT, BleurtMetric, BleurtModel

pytestmark = pytest.mark.needs("torch")
torch = optional_import("torch")

REFS = ["не могу оплатить заказ картой", "деньги списали дважды", "когда возврат", "смс код не приходит"]
CANDS = ["карта заблокирована не могу оплатить", "списали дважды деньги вернуть", "возврат", "код не приходит смс"]


def ctx_with(tmp_path: Path, settings: dict) -> ScoreContext:
    cfg = config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                            "metrics": {"settings": {"bleurt": settings}}})
    items = {f"i{n}": {"id": f"i{n}", "reference": ref} for n, ref in enumerate(REFS)}
    items["noref"] = {"id": "noref", "reference": None}
    return ScoreContext(cfg=cfg, items=items)


def test_port_checkpoint_scores_like_the_bert_it_was_written_from(tmp_path):
    bert = tiny_bleurt_from_bert(tmp_path / "bleurt-tiny")
    model = BleurtModel(tmp_path / "bleurt-tiny", batch_size=3)
    got = model.score(REFS, CANDS)
    enc = model.tok(REFS, CANDS, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = bert(**enc).logits[:, 0].tolist()
    assert enc["token_type_ids"].sum() > 0  # the candidate is segment B, as BLEURT expects
    assert model.tok.unk_token_id not in enc["input_ids"].flatten().tolist()  # the vocab file was read
    assert got == pytest.approx(want, abs=1e-5)


def test_batches_and_padding_do_not_change_scores(tmp_path):
    tiny_bleurt_projected(tmp_path / "bleurt-proj")
    one = BleurtModel(tmp_path / "bleurt-proj", batch_size=1).score(REFS, CANDS)
    four = BleurtModel(tmp_path / "bleurt-proj", batch_size=4).score(REFS, CANDS)
    assert four == pytest.approx(one, abs=1e-5)
    assert len(set(one)) == 4  # four different pairs, four different numbers


def test_metric_scores_rows_records_checkpoint_and_skips_rows_without_reference(tmp_path):
    tiny_bleurt_from_bert(tmp_path / "bleurt-tiny")
    ctx = ctx_with(tmp_path, {"checkpoint": str(tmp_path / "bleurt-tiny"), "batch_size": 2})
    metric = BleurtMetric()
    assert metric.unavailable(ctx) is None
    rows = [{"item": f"i{n}", "text": c} for n, c in enumerate(CANDS)] + [{"item": "noref", "text": "текст"}]
    seen = []
    ctx.progress = seen.append
    out = metric.score(rows, ctx)
    assert [o["bleurt"][1] for o in out[:4]] == [{"checkpoint": "bleurt-tiny"}] * 4
    assert out[4]["bleurt"] == (None, {"why": "no reference"})
    assert sum(seen) == 4 and len(seen) == 2  # two batches of two
    assert metric.summary_info(ctx) == {"bleurt_checkpoint": "bleurt-tiny"}
    assert "bleurt-tiny" in metric.version(ctx)


def test_without_checkpoint_the_metric_is_unavailable_with_the_reason(tmp_path):
    assert BleurtMetric().unavailable(ctx_with(tmp_path, {})) == NO_CHECKPOINT


def test_a_checkpoint_of_another_layout_is_unavailable_not_a_crash(tmp_path):
    tiny_bleurt_from_bert(tmp_path / "bad")
    cfg = json.loads((tmp_path / "bad" / "config.json").read_text())
    cfg["num_hidden_layers"] = 5  # weights hold 3 layers
    (tmp_path / "bad" / "config.json").write_text(json.dumps(cfg))
    why = BleurtMetric().unavailable(ctx_with(tmp_path, {"checkpoint": str(tmp_path / "bad")}))
    assert why is not None and why.startswith("bleurt:") and "does not match" in why
    missing = BleurtMetric().unavailable(ctx_with(tmp_path, {"checkpoint": str(tmp_path / "nowhere")}))
    assert missing is not None and "no config.json" in missing
