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

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from vlmpipe.metrics.base import MetricUnavailable
from vlmpipe.metrics.token_tree import Pack, ancestor_mask, pack
from vlmpipe.metrics.torch_device import place

Progress = Callable[[int], None]
log = logging.getLogger("vlmpipe")


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
                f"llama-cpp-python is not installed ({err}); `make llama` builds it portably"
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
    """A Hugging Face causal LM (``AutoModelForCausalLM``, float32), loaded once, reused for every text; on ``device``
    (:mod:`.torch_device`: ``auto`` is a CUDA GPU when torch sees one, else the CPU).

    Texts are packed into prefix trees (:mod:`.token_tree`): each distinct prefix runs through the model once, every
    node attending to its ancestors only (a 4-D attention mask and each node's depth as its position id), and the
    output layer is applied only where a log-probability is needed. On the peer's answers that halves the work.
    At load time a probe checks that the tree path reproduces the plain forward pass of this architecture; where it
    does not (a model that ignores custom masks or position ids, or scales its logits in ways the split head misses),
    texts are scored in padded batches of ``batch_size`` instead.
    """

    PROBE = ("Не могу оплатить заказ картой.", "Не могу оплатить заказ: пишет ошибку.")

    def __init__(self, model_path: str | Path, *, batch_size: int = 16, max_length: int = 1024,
                 pack_tokens: int = 1024, identity: str | None = None, device: str = "auto") -> None:
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
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # vlmpipe shows its own progress; a load bar would break quiet runs
            self.tok = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        except Exception as err:
            raise ScorerUnavailable(f"transformers could not load {path}: {err}") from None
        try:
            self.model, self.device = place(self.model, torch, device, "perplexity")
        except MetricUnavailable as err:  # the perplexity metric names itself in front of a scorer's reason
            raise ScorerUnavailable(str(err).removeprefix("perplexity: ")) from None
        self.torch = torch
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.pack_tokens = max(pack_tokens, max_length)
        self.identity = identity or f"hf:{path.name}"
        self.bos = self.tok.bos_token_id
        self.softcap = getattr(self.model.config, "final_logit_softcapping", None)
        # one 4-D mask serves every layer, so sliding-window layers would see too far back in a text longer than
        # the window: such texts take the padded-batch path
        self.window = getattr(self.model.config, "sliding_window", None)
        self.tree = self._tree_reproduces_plain()

    # -- shared pieces -------------------------------------------------------------------------------------------
    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.tok(t, add_special_tokens=True, truncation=True, max_length=self.max_length)["input_ids"]
                for t in texts]

    def _first_text(self, ids: Sequence[int]) -> int:
        """Index of the first text token (1 after a BOS token, else 0); its own log-probability is not counted."""
        return 1 if ids and self.bos is not None and ids[0] == self.bos else 0

    def _head(self, hidden):
        logits = self.model.get_output_embeddings()(hidden).float()
        if self.softcap:
            logits = self.torch.tanh(logits / self.softcap) * self.softcap
        return logits

    # -- plain path: padded batches, full logits --------------------------------------------------------------------
    def _plain(self, enc: list[list[int]]) -> list[list[float] | None]:
        torch = self.torch
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        width = max(len(e) for e in enc)
        ids = torch.full((len(enc), width), pad, dtype=torch.long)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        # predictions of tokens first_text+1 .. N-1 come from positions first_text .. N-2
        return [logp[i, self._first_text(e) : len(e) - 1].tolist() or None for i, e in enumerate(enc)]

    # -- tree path: shared prefixes once, output layer only where needed -----------------------------------------
    def _tree_pack(self, pk: Pack, rows_per_chunk: int = 256) -> dict[int, list[float] | None]:
        torch = self.torch
        n, dev = len(pk), self.device
        allowed = ancestor_mask(pk.parents).to(dev)
        mask = torch.zeros((1, 1, n, n), dtype=torch.float32, device=dev).masked_fill(
            ~allowed, torch.finfo(torch.float32).min)
        wanted: dict[int, list[tuple[int, int]]] = {}  # text -> (node whose state predicts, target token)
        for text, nodes in pk.texts:
            first = self._first_text([pk.ids[nodes[0]]])
            wanted[text] = [(nodes[k - 1], pk.ids[nodes[k]]) for k in range(first + 1, len(nodes))]
        rows = sorted({node for pairs in wanted.values() for node, _ in pairs})
        row_of = {node: i for i, node in enumerate(rows)}
        pairs = sorted({p for ps in wanted.values() for p in ps})
        pair_of = {p: i for i, p in enumerate(pairs)}
        p_row = torch.tensor([row_of[node] for node, _ in pairs], dtype=torch.long, device=dev)
        p_tgt = torch.tensor([t for _, t in pairs], dtype=torch.long, device=dev)
        lse = torch.empty(len(rows), device=dev)
        target = torch.empty(len(pairs), device=dev)
        with torch.inference_mode():
            hidden = self.model.base_model(input_ids=torch.tensor([pk.ids], device=dev), attention_mask=mask,
                                           position_ids=torch.tensor([pk.positions], device=dev)
                                           ).last_hidden_state[0]
            chosen = hidden[torch.tensor(rows, dtype=torch.long, device=dev)] if rows else hidden[:0]
            for start in range(0, len(rows), rows_per_chunk):
                logits = self._head(chosen[start : start + rows_per_chunk])
                lse[start : start + len(logits)] = torch.logsumexp(logits, dim=-1)
                sel = ((p_row >= start) & (p_row < start + len(logits))).nonzero().squeeze(-1)
                target[sel] = logits[p_row[sel] - start, p_tgt[sel]]
        logp = (target - lse[p_row]).tolist()
        return {text: [logp[pair_of[p]] for p in ps] or None for text, ps in wanted.items()}

    def _tree_reproduces_plain(self) -> bool:
        try:
            enc = [e[: self.window] if self.window else e for e in self._encode(self.PROBE)]
            plain = self._plain(enc)
            tree = self._tree_pack(pack(enc, self.pack_tokens)[0])
            ok = all(a is not None and tree[i] is not None and len(a) == len(tree[i])
                     and max(abs(x - y) for x, y in zip(a, tree[i], strict=True)) < 1e-3
                     for i, a in enumerate(plain))
        except Exception as err:  # an architecture that rejects 4-D masks or position ids
            log.info("perplexity: %s scores in padded batches (prefix trees unsupported: %s)", self.identity, err)
            return False
        if not ok:
            log.info("perplexity: %s scores in padded batches (prefix trees do not reproduce its logits)",
                     self.identity)
        return ok

    def token_logprobs(self, texts: Sequence[str], progress: Progress | None = None) -> list[list[float] | None]:
        enc = self._encode(texts)
        out: list[list[float] | None] = [None] * len(texts)
        plain = list(range(len(enc)))
        if self.tree:
            fits = [bool(e) and (not self.window or len(e) <= self.window) for e in enc]
            for pk in pack([e if ok else [] for e, ok in zip(enc, fits, strict=True)], self.pack_tokens):
                for text, values in self._tree_pack(pk).items():
                    out[text] = values
                if progress:
                    progress(len(pk.texts))
            plain = [i for i, ok in enumerate(fits) if not ok]
        order = sorted(plain, key=lambda i: len(enc[i]))  # similar lengths together: less padding
        for start in range(0, len(order), self.batch_size):
            chunk = [i for i in order[start : start + self.batch_size] if enc[i]]
            if chunk:
                for i, values in zip(chunk, self._plain([enc[i] for i in chunk]), strict=True):
                    out[i] = values
            if progress:
                progress(len(order[start : start + self.batch_size]))
        return out
