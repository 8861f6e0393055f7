"""Token log-probabilities of texts under a scorer language model, and the perplexity computed from them.

Three backends, one definition (see docs/model-metrics.md):

* :class:`LlamaCppScorer` — a GGUF file run in-process by llama-cpp-python (the offline default);
* :class:`EndpointScorer` — an OpenAI-compatible ``/v1/completions`` server returning prompt log-probabilities
  (``echo=true, logprobs=1, max_tokens=1``), e.g. vLLM or llama-cpp-python's server;
* :class:`HFCausalScorer` — a local Hugging Face causal LM folder through transformers (optional extra).

Perplexity of a text with tokens t1..tN (after the BOS token the scorer's tokenizer prepends, if any) is
``exp(-1/(N-1) * sum_{i=2..N} log p(t_i | BOS, t_1..t_{i-1}))``: the first text token is excluded (an
OpenAI-style echo gives it no log-probability), every later token counts. A text of fewer than two tokens has
no perplexity (``None``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from .base import MetricUnavailable

Progress = Callable[[int], None]


class ScorerUnavailable(MetricUnavailable):
    """The scorer cannot run here (missing package, file, or unreachable server); the message says why."""


class LogprobScorer(Protocol):
    identity: str

    def token_logprobs(self, texts: Sequence[str], progress: Progress | None = None) -> list[list[float] | None]:
        """Per text, the log-probabilities of its tokens 2..N (natural log), or ``None`` when it cannot be scored."""
        ...


def perplexity(logprobs: Sequence[float] | None) -> float | None:
    """``exp(-mean(logprobs))``; ``None`` when there is no token to average."""
    if not logprobs:
        return None
    return float(math.exp(-float(np.mean(logprobs))))


def _log_softmax_at(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Row-wise ``log_softmax(logits)[i, targets[i]]`` (max-shifted; the sum is accumulated in float64)."""
    x = np.asarray(logits, dtype=np.float32)
    mx = x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(x - mx).sum(axis=1, dtype=np.float64)) + mx[:, 0]
    return x[np.arange(len(targets)), targets].astype(np.float64) - lse


class LlamaCppScorer:
    """A GGUF model run in-process by llama-cpp-python; loaded once, reused for every text.

    Texts are packed several at a time into one llama.cpp batch (one sequence id each, so they never attend to each
    other: each has its own KV stream of ``n_ctx`` cells), about twice as fast on 2 cores as one text per call.
    A text longer than ``n_ctx`` tokens is cut to its first ``n_ctx`` tokens.
    """

    def __init__(self, model_path: str | Path, *, n_ctx: int = 1024, n_threads: int | None = None,
                 n_seq: int = 32) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp import _internals as internals
        except ImportError as err:
            raise ScorerUnavailable(
                f"llama-cpp-python is not installed ({err}); scripts/setup.sh builds it portably"
            ) from None
        path = Path(model_path)
        if not path.is_file():
            raise ScorerUnavailable(f"GGUF model not found: {path}")
        try:
            # the Llama object is used for the model and its tokenizer; scoring runs in a context of our own
            self.llm = Llama(model_path=str(path), n_ctx=64, n_batch=64, n_threads=n_threads or os.cpu_count(),
                             logits_all=False, verbose=False)
            params = type(self.llm.context_params).from_buffer_copy(self.llm.context_params)
            params.n_batch = params.n_ubatch = n_ctx
            params.n_ctx = n_ctx * n_seq  # a KV stream of n_ctx cells per sequence (not unified: no cross-talk)
            params.n_seq_max = n_seq
            params.kv_unified = False
            self.ctx = internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
            self.batch = internals.LlamaBatch(n_tokens=n_ctx, embd=0, n_seq_max=n_seq, verbose=False)
        except Exception as err:  # llama.cpp reports load failures as ValueError/RuntimeError
            raise ScorerUnavailable(f"llama-cpp-python could not load {path.name}: {err}") from None
        self.identity = f"llama_cpp:{path.name}"
        self.n_ctx = n_ctx
        self.n_seq = n_seq
        self.n_vocab = self.llm.n_vocab()
        self.bos = self.llm.token_bos()

    def _decode(self, group: list[list[int]]) -> list[list[float] | None]:
        self.batch.reset()
        for seq, tokens in enumerate(group):
            self.batch.add_sequence(tokens, seq, True)
        self.ctx.kv_cache_clear()
        self.ctx.decode(self.batch)
        total = sum(len(t) for t in group)
        logits = np.ctypeslib.as_array(self.ctx.get_logits(), shape=(total * self.n_vocab,)).reshape(total,
                                                                                                     self.n_vocab)
        out: list[list[float] | None] = []
        offset = 0
        for tokens in group:
            first_text = 1 if tokens[0] == self.bos else 0
            if len(tokens) - first_text < 2:
                out.append(None)
            else:  # row i predicts token i+1; drop the prediction of the first text token
                lp = _log_softmax_at(logits[offset : offset + len(tokens) - 1], np.asarray(tokens[1:]))
                out.append([float(v) for v in lp[first_text:]])
            offset += len(tokens)
        return out

    def token_logprobs(self, texts: Sequence[str], progress: Progress | None = None) -> list[list[float] | None]:
        out: list[list[float] | None] = [None] * len(texts)
        todo = [(i, self.llm.tokenize(t.encode("utf-8"), add_bos=True, special=False)[: self.n_ctx])
                for i, t in enumerate(texts)]
        todo = [(i, tokens) for i, tokens in todo if tokens]
        while todo:
            group, used = [], 0
            while todo and len(group) < self.n_seq and (not group or used + len(todo[0][1]) <= self.n_ctx):
                group.append(todo.pop(0))
                used += len(group[-1][1])
            for (i, _), result in zip(group, self._decode([tokens for _, tokens in group]), strict=True):
                out[i] = result
            if progress:
                progress(len(group))
        return out


class EndpointScorer:
    """Prompt log-probabilities from an OpenAI-compatible ``/v1/completions`` endpoint.

    Sends ``echo=true, logprobs=1, max_tokens=1`` (``max_tokens=0`` makes some servers generate to the end of the
    context). From the echoed tokens it keeps those that start inside the text after its first character
    (``0 < text_offset < len(text)``) and have a log-probability: that drops a BOS token, the first text token, and
    the one generated token, whichever way the server reports them.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str | None = None, timeout_s: float = 60.0,
                 concurrency: int = 2, client: httpx.Client | None = None) -> None:
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ScorerUnavailable(f"environment variable {api_key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.url = base_url.rstrip("/") + "/completions"
        self.model = model
        self.identity = f"endpoint:{model}"
        self.concurrency = max(1, concurrency)
        self.client = client or httpx.Client(timeout=timeout_s, headers=headers)

    def request(self, text: str) -> dict[str, Any]:
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1,
                "temperature": 0.0}
        resp = self.client.post(self.url, json=body)
        resp.raise_for_status()
        return resp.json()

    @staticmethod
    def extract(text: str, response: dict[str, Any]) -> list[float] | None:
        lp = (response.get("choices") or [{}])[0].get("logprobs") or {}
        offsets = lp.get("text_offset") or []
        values = lp.get("token_logprobs") or []
        if len(offsets) != len(values):
            raise ValueError("logprobs.text_offset and logprobs.token_logprobs differ in length")
        kept = [float(v) for off, v in zip(offsets, values, strict=True) if v is not None and 0 < off < len(text)]
        return kept or None

    def probe(self) -> None:
        """One tiny request, so an unreachable server or one without prompt logprobs is reported up front."""
        try:
            data = self.request("Проверка связи с сервером.")
        except (httpx.HTTPError, ValueError) as err:
            raise ScorerUnavailable(f"perplexity endpoint {self.url} failed: {err}") from None
        if self.extract("Проверка связи с сервером.", data) is None:
            raise ScorerUnavailable(f"perplexity endpoint {self.url} returned no prompt logprobs (echo+logprobs)")

    def token_logprobs(self, texts: Sequence[str], progress: Progress | None = None) -> list[list[float] | None]:
        def one(text: str) -> list[float] | None:
            result = self.extract(text, self.request(text))
            if progress:
                progress(1)
            return result

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, texts))


class HFCausalScorer:
    """A local Hugging Face causal LM folder (``AutoModelForCausalLM``), batched with right padding."""

    def __init__(self, model_path: str | Path, *, batch_size: int = 16, max_length: int = 1024) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise ScorerUnavailable(f"torch/transformers are not installed ({err}): pip install 'vlmpipe[models]'") \
                from None
        path = Path(model_path)
        if not path.is_dir():
            raise ScorerUnavailable(f"Hugging Face model folder not found: {path}")
        try:
            self.tok = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
        except Exception as err:
            raise ScorerUnavailable(f"transformers could not load {path}: {err}") from None
        self.torch = torch
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.identity = f"hf:{path.name}"

    def _batch(self, texts: Sequence[str]) -> list[list[float] | None]:
        torch = self.torch
        enc = [self.tok(t, add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
               for t in texts]
        bos = self.tok.bos_token_id
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), pad, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        out: list[list[float] | None] = []
        for i, e in enumerate(enc):
            first_text = 1 if e and bos is not None and e[0] == bos else 0
            vals = logp[i, first_text : len(e) - 1].tolist()  # predictions of tokens first_text+1 .. N-1
            out.append(vals or None)
        return out

    def token_logprobs(self, texts: Sequence[str], progress: Progress | None = None) -> list[list[float] | None]:
        out: list[list[float] | None] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            out.extend(self._batch(chunk))
            if progress:
                progress(len(chunk))
        return out
