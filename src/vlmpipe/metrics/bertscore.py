"""``bertscore_f``: BERTScore F1 of each generation against its reference, with an explicit model and layer.

Settings (``metrics.settings.bertscore``): ``model`` (a local Hugging Face encoder folder, required), ``layer``
(which hidden layer's embeddings to match, required), ``batch_size`` (32), ``device`` (``auto``: a CUDA GPU when torch
sees one, else the CPU; or ``cpu``, ``cuda``, ``cuda:N``). Computed by the ``bert-score`` package
(no idf weighting, no baseline rescaling). We never let ``bert-score`` pick a model from ``lang``: with
``lang="ru"`` it silently uses multilingual BERT layer 9, and scores of different models or layers are not
comparable. The model's folder name and the layer are part of the metric's version and are written to summary.json
as ``bertscore_model`` (``<folder>@L<layer>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import MetricUnavailable, ModelMetric, Score, ScoreContext, load_once, register
from vlmpipe.metrics.torch_device import DEVICE_PATTERN, torch_device

_CACHE_KEY = "bertscore.scorer"


Unavailable = MetricUnavailable


class BertScoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Path | None = None
    layer: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, gt=0)
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)


def _settings(ctx: ScoreContext) -> BertScoreSettings:
    try:
        return BertScoreSettings.model_validate(ctx.settings("bertscore"))
    except ValidationError as err:
        raise Unavailable(f"bertscore: metrics.settings.bertscore is invalid: {err.errors()[0]['msg']}") from None


class BertScoreModel:
    """A loaded encoder cut at ``layer``; ``f1(candidates, references)`` in batches."""

    def __init__(self, model: Path, layer: int, *, batch_size: int = 32, device: str = "auto") -> None:
        try:
            import bert_score
            import torch
        except ImportError as err:
            raise Unavailable(f"bertscore: bert-score/torch are not installed ({err}): "
                              "pip install 'vlmpipe[models]'") from None
        path = Path(model)
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise Unavailable(f"bertscore: model folder {path} has no config.json")
        n_layers = json.loads(cfg_file.read_text()).get("num_hidden_layers")
        if n_layers is not None and not 1 <= layer <= n_layers:
            raise Unavailable(f"bertscore: layer {layer} is outside 1..{n_layers} of {path.name}")
        self.device = torch_device(torch, device, "bertscore")
        try:
            self.scorer = bert_score.BERTScorer(model_type=str(path), num_layers=layer, lang=None,
                                                batch_size=batch_size, device=str(self.device),
                                                rescale_with_baseline=False)
        except Exception as err:
            raise Unavailable(f"bertscore: could not load {path}: {err}") from None
        tok = self.scorer._tokenizer
        if not tok.model_max_length or tok.model_max_length > 100_000:  # unset in the tokenizer's config
            tok.model_max_length = int(getattr(self.scorer._model.config, "max_position_embeddings", 512))
        self.batch_size = batch_size
        self.name = f"{path.name}@L{layer}"

    def f1(self, candidates: list[str], references: list[str], progress: Any = None) -> list[float]:
        out: list[float] = []
        for start in range(0, len(candidates), self.batch_size):
            cands = candidates[start : start + self.batch_size]
            _p, _r, f = self.scorer.score(cands, references[start : start + self.batch_size],
                                          batch_size=self.batch_size)
            out.extend(float(v) for v in f)
            if progress:
                progress(len(cands))
        return out


@register
class BertScoreMetric(ModelMetric):
    name = "bertscore"
    columns = ("bertscore_f",)
    needs = frozenset({"reference", "model"})
    fields = (
        SummaryField("bertscore_f_mean", "BERTScore F1", column="bertscore_f", aggregation="mean",
                     higher_is_better=True, group="quality",
                     description="contextual-embedding F1 against the reference", ranking=True, plot=True,
                     headline=True, paired=True),
    )
    info_keys = ("bertscore_model",)

    def _model(self, ctx: ScoreContext) -> BertScoreModel:
        def load() -> BertScoreModel:
            s = _settings(ctx)
            if s.model is None or s.layer is None:
                raise Unavailable("bertscore: no model and layer configured (metrics.settings.bertscore.model "
                                  "and .layer; no implicit default by language)")
            return BertScoreModel(s.model, s.layer, batch_size=s.batch_size, device=s.device)

        return load_once(ctx, _CACHE_KEY, load)

    def _model_name(self, ctx: ScoreContext) -> str | None:
        try:
            s = _settings(ctx)
        except Unavailable:
            return None
        return f"{s.model.name}@L{s.layer}" if s.model and s.layer else None

    def version(self, ctx: ScoreContext) -> str:
        return f"1|{self._model_name(ctx)}"

    def summary_info(self, ctx: ScoreContext) -> dict[str, Any]:
        return {"bertscore_model": self._model_name(ctx)}

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        model = self._model(ctx)
        refs = [(ctx.items.get(r["item"]) or {}).get("reference") for r in rows]
        idx = [i for i, ref in enumerate(refs) if ref]
        values = model.f1([rows[i]["text"] for i in idx], [refs[i] for i in idx], progress=ctx.progress)
        out: list[dict[str, Score]] = [{"bertscore_f": (None, {"why": "no reference"})} for _ in rows]
        for i, v in zip(idx, values, strict=True):
            out[i] = {"bertscore_f": (v, {"model": model.name})}
        return out
