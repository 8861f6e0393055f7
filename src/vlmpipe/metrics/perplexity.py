"""``perplexity``: fluency of each generation under one configured scorer language model.

Settings (``metrics.settings.perplexity``)::

    backend: auto             # auto (default) | hf | llama_cpp | endpoint
    model_path: null          # a .gguf (default: Gemma 3 270M Q4_K_M, assembled once per machine) or, for hf,
                              # a local causal-LM folder
    base_url: null            # endpoint: OpenAI-compatible base URL ending in /v1
    model: null               # endpoint: the served model's id (also names the scorer)
    api_key_env: null         # endpoint: env var holding the key
    batch_size: 16            # hf: texts per forward pass when prefix trees are unsupported
    device: auto              # hf: auto (a CUDA GPU when torch sees one, else the CPU) | cpu | cuda | cuda:N
    concurrency: 2            # endpoint: requests in flight
    n_ctx: 1024               # llama_cpp: context (texts are cut to it)

``auto`` runs a GGUF (the default one unless ``model_path`` names another) with torch when torch, transformers,
gguf and accelerate are installed (``hf``: its weights dequantized to float32 once per machine, texts packed into
prefix trees; 2.5x faster than llama.cpp on 2 cores), else with llama-cpp-python (``llama_cpp``); a folder
``model_path`` means ``hf``. The two runtimes give slightly different numbers (llama.cpp quantizes activations too),
so they are different scorers.

The scorer's identity (``hf:<gguf name or folder>``, ``llama_cpp:<gguf name>``, ``endpoint:<model>``) is part of
the metric's version, so changing the scorer re-scores every row (numbers of different scorers never share a
column), and it is written to summary.json as ``perplexity_scorer``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, load_once, register
from vlmpipe.metrics.lm_logprobs import (
    EndpointScorer,
    HFCausalScorer,
    LlamaCppScorer,
    LogprobScorer,
    ScorerUnavailable,
    perplexity,
)
from vlmpipe.metrics.model_files import (
    ModelFileUnavailable,
    default_gguf,
    hf_folder_from_gguf,
    missing_torch_gguf_modules,
)
from vlmpipe.metrics.torch_device import DEVICE_PATTERN

log = logging.getLogger("vlmpipe")

DEFINITION = "v1:exp(-mean logprob of text tokens 2..N, BOS as context)"
DEFAULT_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
_CACHE_KEY = "perplexity.scorer"


class PerplexitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "hf", "llama_cpp", "endpoint"] = "auto"
    model_path: Path | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    batch_size: int = Field(default=16, gt=0)
    concurrency: int = Field(default=2, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    n_ctx: int = Field(default=1024, ge=64)
    n_threads: int | None = Field(default=None, gt=0)
    pack_tokens: int = Field(default=1024, ge=64)
    device: str = Field(default="auto", pattern=DEVICE_PATTERN)


def _settings(ctx: ScoreContext) -> PerplexitySettings:
    try:
        return PerplexitySettings.model_validate(ctx.settings("perplexity"))
    except ValidationError as err:
        raise ScorerUnavailable(f"metrics.settings.perplexity is invalid: {err.errors()[0]['msg']} "
                                f"at {'.'.join(map(str, err.errors()[0]['loc']))}") from None


def resolved_backend(s: PerplexitySettings) -> str:
    """``auto`` made concrete from what is installed (cheap: nothing is imported or loaded)."""
    if s.backend != "auto":
        return s.backend
    if s.model_path is not None and s.model_path.is_dir():
        return "hf"
    return "llama_cpp" if missing_torch_gguf_modules() else "hf"


def scorer_identity(s: PerplexitySettings) -> str:
    """The scorer's name from the settings alone (cheap; no model is loaded)."""
    backend = resolved_backend(s)
    if backend == "endpoint":
        return f"endpoint:{s.model}"
    name = s.model_path.name if s.model_path is not None else DEFAULT_GGUF_NAME
    return f"{backend}:{name}"


def _gguf(s: PerplexitySettings) -> Path:
    if s.model_path is not None:
        return s.model_path
    try:
        return default_gguf()
    except ModelFileUnavailable as err:
        raise ScorerUnavailable(str(err)) from None


_LOADED: dict[str, LogprobScorer] = {}


def build_scorer(s: PerplexitySettings) -> LogprobScorer:
    """The configured scorer; raises :class:`ScorerUnavailable` with the reason.

    A local model (``hf``, ``llama_cpp``) is loaded once per process and kept for later runs in the same process
    (a notebook, the test suite): loading Gemma takes ~10 s. An endpoint scorer is built (and probed) each time.
    """
    backend = resolved_backend(s)
    if backend == "endpoint":
        return _build(s, backend)
    # keyed by the resolved runtime, so ``auto`` and the backend it resolves to share one loaded model
    loaded_as = s.model_dump_json(exclude={"backend", "base_url", "model", "api_key_env", "concurrency", "timeout_s"})
    key = f"{backend}|{loaded_as}"
    if key not in _LOADED:
        _LOADED[key] = _build(s, backend)
    return _LOADED[key]


def _build(s: PerplexitySettings, backend: str) -> LogprobScorer:
    if backend == "endpoint":
        if not s.base_url or not s.model:
            raise ScorerUnavailable("backend endpoint needs metrics.settings.perplexity.base_url and .model")
        scorer = EndpointScorer(s.base_url, s.model, api_key_env=s.api_key_env, timeout_s=s.timeout_s,
                                concurrency=s.concurrency)
        scorer.probe()
        return scorer
    if backend == "hf":
        if s.model_path is not None and s.model_path.is_dir():
            return HFCausalScorer(s.model_path, batch_size=s.batch_size, pack_tokens=s.pack_tokens, device=s.device)
        gguf = _gguf(s)
        if not gguf.is_file():
            raise ScorerUnavailable(f"model_path is neither a causal-LM folder nor a .gguf file: {gguf}")
        try:
            folder = hf_folder_from_gguf(gguf)
        except ModelFileUnavailable as err:
            raise ScorerUnavailable(f"{err} (or set metrics.settings.perplexity.backend: llama_cpp)") from None
        return HFCausalScorer(folder, batch_size=s.batch_size, pack_tokens=s.pack_tokens,
                              identity=scorer_identity(s), device=s.device)
    return LlamaCppScorer(_gguf(s), n_ctx=s.n_ctx, n_threads=s.n_threads)


@register
class PerplexityMetric(Metric):
    name = "perplexity"
    columns = ("perplexity",)
    needs = frozenset({"model"})
    fields = (
        SummaryField("perplexity_mean", "perplexity", column="perplexity", aggregation="mean", fmt="{:.1f}",
                     higher_is_better=False, group="fluency",
                     description="perplexity of the answer under the offline language model (lower: more fluent)",
                     ranking=True, technical=True, plot=True, headline=True),
    )
    info_keys = ("perplexity_scorer",)

    def _scorer(self, ctx: ScoreContext) -> LogprobScorer:
        return load_once(ctx, _CACHE_KEY, lambda: build_scorer(_settings(ctx)))

    def unavailable(self, ctx: ScoreContext) -> str | None:
        try:
            self._scorer(ctx)
        except ScorerUnavailable as err:
            return f"perplexity: {err}"
        return None

    def version(self, ctx: ScoreContext) -> str:
        try:
            identity = scorer_identity(_settings(ctx))
        except ScorerUnavailable:
            identity = "invalid-settings"
        return f"{DEFINITION}|{identity}"

    def summary_info(self, ctx: ScoreContext) -> dict[str, Any]:
        try:
            return {"perplexity_scorer": scorer_identity(_settings(ctx))}
        except ScorerUnavailable:
            return {"perplexity_scorer": None}

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        scorer = self._scorer(ctx)
        unique = list(dict.fromkeys(r["text"] for r in rows))  # repeats often give identical texts: score once
        try:
            by_text = dict(zip(unique, scorer.token_logprobs(unique, progress=ctx.progress), strict=True))
            all_lp = [by_text[r["text"]] for r in rows]
        except Exception as err:  # a server that fails mid-run: leave rows unscored so a re-score retries them
            log.warning("perplexity: scorer %s failed: %s (rows left unscored)", scorer.identity, err)
            return [{} for _ in rows]
        out: list[dict[str, Score]] = []
        for lp in all_lp:
            value = perplexity(lp)
            detail = {"scorer": scorer.identity, "tokens": len(lp) if lp else 0}
            if value is None:
                detail["why"] = "fewer than two tokens"
            out.append({"perplexity": (value, detail)})
        return out
