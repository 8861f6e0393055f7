"""``bleurt``: learned similarity of each generation to its reference, from a local BLEURT checkpoint.

Settings (``metrics.settings.bleurt``): ``checkpoint`` (a folder, required), ``batch_size`` (16), ``max_length``
(512), ``device`` (``auto``: a CUDA GPU when torch sees one, else the CPU; or ``cpu``, ``cuda``, ``cuda:N``).
The checkpoint is a PyTorch port of BLEURT-20 or its distilled D12/D6/D3 in the format of the
``bleurt-pytorch`` port (``config.json`` with ``"model_type": "bleurt"``, weights named ``bleurt.*`` and
``classifier.*`` in ``model.safetensors`` or ``pytorch_model.bin``, a tokenizer as ``tokenizer.json``,
``vocab.txt`` or a SentencePiece ``*.model``). That port's own code does not import under transformers 5, so we
load its weights into transformers' RemBERT classes, which have the same layout (BLEURT-20 is a RemBERT: a
narrower input embedding projected to the hidden size); a port config without ``embedding_size`` gets an identity
projection. Scores of different checkpoints are not comparable: the checkpoint's folder name is part of the
metric's version and is written to summary.json as ``bleurt_checkpoint``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import MetricUnavailable, ModelMetric, Score, ScoreContext, load_once, register
from vlmpipe.metrics.torch_device import DEVICE_PATTERN, place

NO_CHECKPOINT = "bleurt: no checkpoint configured (metrics.settings.bleurt.checkpoint)"
_CACHE_KEY = "bleurt.model"


Unavailable = MetricUnavailable


class BleurtSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint: Path | None = None
    batch_size: int = Field(default=16, gt=0)
    max_length: int = Field(default=512, ge=8)
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as err:
        raise Unavailable(f"torch/transformers are not installed ({err}): pip install 'vlmpipe[models]'") from None
    return torch, transformers


def _load_tokenizer(path: Path, transformers: Any, max_length: int) -> Any:
    cfg_file = path / "tokenizer_config.json"
    tcfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    lower = bool(tcfg.get("do_lower_case", False))
    if (path / "tokenizer.json").is_file():
        tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
        for attr in ("pad_token", "cls_token", "sep_token", "unk_token"):
            if tcfg.get(attr) and getattr(tok, attr, None) is None:
                setattr(tok, attr, tcfg[attr])
    elif (path / "vocab.txt").is_file():
        tok = transformers.BertTokenizerFast(str(path / "vocab.txt"), do_lower_case=lower)  # positional: v4 and v5
    else:
        spm = sorted(path.glob("*.model"))
        if not spm:
            raise Unavailable(f"bleurt: no tokenizer in {path} (tokenizer.json, vocab.txt or a SentencePiece .model)")
        tok = transformers.DebertaV2Tokenizer(vocab_file=str(spm[0]), do_lower_case=lower)
    tok.model_max_length = max_length
    return tok


def _port_config_to_rembert(cfg: dict[str, Any], transformers: Any) -> Any:
    hidden = cfg.get("hidden_size", 768)
    return transformers.RemBertConfig(
        vocab_size=cfg.get("vocab_size", 30522),
        hidden_size=hidden,
        num_hidden_layers=cfg.get("num_hidden_layers", 12),
        num_attention_heads=cfg.get("num_attention_heads", 12),
        input_embedding_size=cfg.get("embedding_size") or hidden,
        output_embedding_size=cfg.get("embedding_size") or hidden,
        intermediate_size=cfg.get("intermediate_size", 3072),
        hidden_act=cfg.get("hidden_act", "gelu"),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=0.0,
        max_position_embeddings=cfg.get("max_position_embeddings", 512),
        type_vocab_size=cfg.get("type_vocab_size", 2),
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-12),
        pad_token_id=cfg.get("pad_token_id", 0),
        num_labels=1,
    )


def _read_weights(path: Path, torch: Any) -> dict[str, Any]:
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    if (path / "pytorch_model.bin").is_file():
        return torch.load(str(path / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    raise Unavailable(f"bleurt: no weights in {path} (model.safetensors or pytorch_model.bin)")


class BleurtModel:
    """A loaded BLEURT checkpoint: ``score(references, candidates)`` in batches."""

    def __init__(self, checkpoint: Path, *, batch_size: int = 16, max_length: int = 512,
                 device: str = "auto") -> None:
        torch, transformers = _import_torch()
        path = Path(checkpoint)
        if not (path / "config.json").is_file():
            raise Unavailable(f"bleurt: checkpoint folder {path} has no config.json")
        cfg = json.loads((path / "config.json").read_text())
        if cfg.get("model_type") != "bleurt":
            raise Unavailable(f"bleurt: {path}/config.json has model_type {cfg.get('model_type')!r}, expected 'bleurt'")
        model = transformers.RemBertForSequenceClassification(_port_config_to_rembert(cfg, transformers))
        weights = {}
        for key, value in _read_weights(path, torch).items():
            if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
                continue  # buffers, not weights
            key = key.replace("bleurt.encoder.embedding_projection.", "rembert.encoder.embedding_hidden_mapping_in.")
            weights[key.replace("bleurt.", "rembert.", 1) if key.startswith("bleurt.") else key] = value
        if not cfg.get("embedding_size"):
            hidden = model.config.hidden_size
            weights["rembert.encoder.embedding_hidden_mapping_in.weight"] = torch.eye(hidden)
            weights["rembert.encoder.embedding_hidden_mapping_in.bias"] = torch.zeros(hidden)
        missing, unexpected = model.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise Unavailable(f"bleurt: {path.name} does not match the port's layout "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        self.model, self.device = place(model.eval(), torch, device, "bleurt")
        self.tok = _load_tokenizer(path, transformers, min(max_length, model.config.max_position_embeddings))
        self.torch = torch
        self.batch_size = batch_size
        self.name = path.name

    def score(self, references: list[str], candidates: list[str], progress: Any = None) -> list[float]:
        out: list[float] = []
        for start in range(0, len(candidates), self.batch_size):
            refs = references[start : start + self.batch_size]
            cands = candidates[start : start + self.batch_size]
            enc = self.tok(refs, cands, padding=True, truncation=True, return_tensors="pt")
            with self.torch.no_grad():
                logits = self.model(**{k: v.to(self.device) for k, v in enc.items()
                                       if k in ("input_ids", "attention_mask", "token_type_ids")}).logits
            out.extend(float(v) for v in logits[:, 0])
            if progress:
                progress(len(cands))
        return out


def _settings(ctx: ScoreContext) -> BleurtSettings:
    try:
        return BleurtSettings.model_validate(ctx.settings("bleurt"))
    except ValidationError as err:
        raise Unavailable(f"bleurt: metrics.settings.bleurt is invalid: {err.errors()[0]['msg']}") from None


@register
class BleurtMetric(ModelMetric):
    name = "bleurt"
    columns = ("bleurt",)
    needs = frozenset({"reference", "model"})
    fields = (
        SummaryField("bleurt_mean", "BLEURT", column="bleurt", aggregation="mean", higher_is_better=True,
                     group="quality", description="learned similarity to the reference (BLEURT checkpoint)",
                     ranking=True, plot=True, headline=True, paired=True),
    )
    info_keys = ("bleurt_checkpoint",)

    def _model(self, ctx: ScoreContext) -> BleurtModel:
        def load() -> BleurtModel:
            s = _settings(ctx)
            if s.checkpoint is None:
                raise Unavailable(NO_CHECKPOINT)
            try:
                return BleurtModel(s.checkpoint, batch_size=s.batch_size, max_length=s.max_length, device=s.device)
            except Unavailable:
                raise
            except Exception as err:  # a corrupt checkpoint must not crash the run
                raise Unavailable(f"bleurt: could not load the checkpoint: {err}") from None

        return load_once(ctx, _CACHE_KEY, load)

    def _checkpoint_name(self, ctx: ScoreContext) -> str | None:
        try:
            s = _settings(ctx)
        except Unavailable:
            return None
        return s.checkpoint.name if s.checkpoint else None

    def version(self, ctx: ScoreContext) -> str:
        return f"1|{self._checkpoint_name(ctx)}"

    def summary_info(self, ctx: ScoreContext) -> dict[str, Any]:
        return {"bleurt_checkpoint": self._checkpoint_name(ctx)}

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        model = self._model(ctx)
        refs = [(ctx.items.get(r["item"]) or {}).get("reference") for r in rows]
        idx = [i for i, ref in enumerate(refs) if ref]
        values = model.score([refs[i] for i in idx], [rows[i]["text"] for i in idx], progress=ctx.progress)
        out: list[dict[str, Score]] = [{"bleurt": (None, {"why": "no reference"})} for _ in rows]
        for i, v in zip(idx, values, strict=True):
            out[i] = {"bleurt": (v, {"checkpoint": model.name})}
        return out
