"""The ``device`` setting of the torch-based metrics (perplexity ``hf``, BLEURT, BERTScore): the choice of device
with a stand-in for torch's CUDA module, and the real metrics on this machine's torch (on the CPU; a GPU that torch
cannot see is an "unavailable: why"; where torch does see one, its scores match the CPU's)."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from components import optional_import
from metric_helpers import make_ctx
from tiny_models import tiny_bert_encoder, tiny_bleurt_from_bert, tiny_causal_lm
from vlmpipe.metrics.base import MetricUnavailable
from vlmpipe.metrics.bertscore import BertScoreModel
from vlmpipe.metrics.bleurt import BleurtModel
from vlmpipe.metrics.lm_logprobs import HFCausalScorer, ScorerUnavailable
from vlmpipe.metrics.perplexity import PerplexityMetric
from vlmpipe.metrics.torch_device import place, torch_device

pytestmark = pytest.mark.needs("torch")
torch = optional_import("torch")

TEXTS = ["не могу оплатить заказ картой", "когда возврат денег"]
REFS = ["не могу оплатить заказ картой", "деньги списали дважды"]


def fake_torch(gpus: int, cuda_build: str | None = "12.4") -> SimpleNamespace:
    cuda = SimpleNamespace(is_available=lambda: gpus > 0, device_count=lambda: gpus)
    return SimpleNamespace(device=torch.device, cuda=cuda, version=SimpleNamespace(cuda=cuda_build),
                           __version__="2.13.0")


def test_auto_is_the_gpu_when_torch_sees_one_else_the_cpu():
    assert torch_device(fake_torch(1), "auto") == torch.device("cuda")
    assert torch_device(fake_torch(0), "auto") == torch.device("cpu")
    assert torch_device(fake_torch(2), "cuda:1") == torch.device("cuda:1")
    assert torch_device(fake_torch(2), "cpu") == torch.device("cpu")


def test_a_gpu_torch_cannot_use_is_a_reason_not_a_silent_cpu_run():
    with pytest.raises(MetricUnavailable) as no_gpu:
        torch_device(fake_torch(0, cuda_build=None), "cuda", "bleurt")
    assert str(no_gpu.value) == ("bleurt: device 'cuda' was asked for, but torch 2.13.0 sees no CUDA GPU "
                                 "(a CPU-only build); set device: cpu or auto")
    with pytest.raises(MetricUnavailable, match=r"no usable GPU or driver"):
        torch_device(fake_torch(0), "cuda:0")
    with pytest.raises(MetricUnavailable, match=r"device 'cuda:1' was asked for, but torch sees 1 CUDA GPU\(s\)"):
        torch_device(fake_torch(1), "cuda:1")


def test_a_full_gpu_means_the_cpu_under_auto_and_a_reason_when_the_gpu_was_asked_for(caplog):
    class FullGpu(torch.nn.Linear):
        """A model that does not fit on the GPU: moving it there fails as torch does when memory is taken."""

        def to(self, *args, **kwargs):  # type: ignore[override]
            if torch.device(args[0]).type == "cuda":
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            return super().to(*args, **kwargs)

    model = FullGpu(2, 2)
    with caplog.at_level(logging.WARNING, logger="vlmpipe"):
        placed, device = place(model, fake_torch(1), "auto", "perplexity")
    assert placed is model and device == torch.device("cpu")
    assert "perplexity: the model does not fit on cuda" in caplog.text and "scoring on the CPU" in caplog.text
    with pytest.raises(MetricUnavailable, match=r"^bleurt: could not move the model to cuda:0: CUDA out of memory"):
        place(model, fake_torch(1), "cuda:0", "bleurt")


def test_the_setting_names_a_device_or_the_metric_says_it_is_invalid(tmp_path):
    why = PerplexityMetric().unavailable(make_ctx(tmp_path, settings={"perplexity": {"device": "gpu"}}))
    assert why is not None and why.startswith("perplexity: metrics.settings.perplexity is invalid") \
        and why.endswith("at device")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("device")
    tiny_bleurt_from_bert(root / "bleurt-tiny")
    return {"lm": tiny_causal_lm(root / "tiny-gpt2"), "bleurt": root / "bleurt-tiny",
            "encoder": tiny_bert_encoder(root / "tinybert")}


@pytest.mark.needs("bert_score")
def test_each_metric_runs_where_it_is_told(models, tmp_path):
    gpu = torch.cuda.is_available()
    cpu = (HFCausalScorer(models["lm"], device="cpu").token_logprobs(TEXTS),
           BleurtModel(models["bleurt"], device="cpu").score(REFS, TEXTS),
           BertScoreModel(models["encoder"], 2, device="cpu").f1(TEXTS, REFS))
    auto = (HFCausalScorer(models["lm"]).token_logprobs(TEXTS), BleurtModel(models["bleurt"]).score(REFS, TEXTS),
            BertScoreModel(models["encoder"], 2).f1(TEXTS, REFS))
    assert HFCausalScorer(models["lm"]).device.type == ("cuda" if gpu else "cpu")
    for got, want in zip(auto, cpu, strict=True):  # the same numbers, to float rounding, wherever they ran
        flat = [x for v in got for x in (v if isinstance(v, list) else [v])]
        assert flat == pytest.approx([x for v in want for x in (v if isinstance(v, list) else [v])], abs=1e-4)
    if gpu:
        assert HFCausalScorer(models["lm"], device="cuda").device.type == "cuda"
        return
    # this machine's torch sees no GPU: asking for one is the reason the metric is unavailable
    with pytest.raises(ScorerUnavailable, match=r"^device 'cuda' was asked for, but torch .* sees no"):
        HFCausalScorer(models["lm"], device="cuda")
    with pytest.raises(MetricUnavailable, match=r"^bleurt: device 'cuda:0' was asked for"):
        BleurtModel(models["bleurt"], device="cuda:0")
    settings = {"perplexity": {"backend": "hf", "model_path": str(models["lm"]), "device": "cuda"}}
    why = PerplexityMetric().unavailable(make_ctx(tmp_path, settings=settings))
    assert why is not None and why.startswith("perplexity: device 'cuda' was asked for")
