"""The Hugging Face causal-LM perplexity backend on a tiny random GPT-2 the test writes (loading and batching only)."""

from __future__ import annotations

import math

import pytest

from components import optional_import
from tiny_models import WORDS, tiny_causal_lm
from vlmpipe.metrics.lm_logprobs import HFCausalScorer, perplexity

pytestmark = pytest.mark.needs("torch")
torch = optional_import("torch")

TEXTS = ["не могу оплатить заказ картой", "когда возврат", "смс код не приходит", "деньги"]


def test_hf_scorer_counts_tokens_after_the_first_and_batches_like_single_texts(tmp_path):
    folder = tiny_causal_lm(tmp_path / "tiny-gpt2")
    batched = HFCausalScorer(folder, batch_size=4).token_logprobs(TEXTS)
    single = HFCausalScorer(folder, batch_size=1).token_logprobs(TEXTS)
    assert [len(x) if x else 0 for x in batched] == [4, 1, 3, 0]  # words − 1; one word: no perplexity
    for b, s in zip(batched, single, strict=True):
        assert (b is None and s is None) or b == pytest.approx(s, abs=1e-4)
    # by hand for "когда возврат": log p(возврат | <bos> когда) from one forward pass
    scorer = HFCausalScorer(folder)
    ids = scorer.tok("когда возврат")["input_ids"]
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits[0]
    want = torch.log_softmax(logits[1], -1)[ids[2]].item()
    assert batched[1] == pytest.approx([want], abs=1e-5)
    assert perplexity(batched[1]) == pytest.approx(math.exp(-want), rel=1e-5)
    assert scorer.identity == "hf:tiny-gpt2"


SHARED = ["не могу оплатить заказ картой", "не могу оплатить заказ", "не могу войти", "когда возврат денег",
          "когда возврат", "не могу оплатить заказ картой"]


def test_prefix_trees_give_the_padded_batch_numbers(tmp_path):
    scorer = HFCausalScorer(tiny_causal_lm(tmp_path / "tiny-gpt2"))
    assert scorer.tree  # GPT-2 takes a 4-D mask and position ids: the probe passed
    tree = scorer.token_logprobs(SHARED)
    plain = scorer._plain(scorer._encode(SHARED))
    for t, p in zip(tree, plain, strict=True):
        assert t == pytest.approx(p, abs=1e-5)
    assert [len(t) for t in tree] == [4, 3, 2, 2, 1, 4]  # words − 1


def test_a_head_the_tree_path_gets_wrong_falls_back_to_padded_batches(tmp_path, monkeypatch):
    folder = tiny_causal_lm(tmp_path / "tiny-gpt2")
    right = HFCausalScorer(folder).token_logprobs(SHARED)
    # as if the architecture scaled its logits after the output layer in a way the split head does not know
    monkeypatch.setattr(HFCausalScorer, "_head", lambda self, hidden: 2 * self.model.get_output_embeddings()(hidden))
    scorer = HFCausalScorer(folder)
    assert not scorer.tree
    for got, want in zip(scorer.token_logprobs(SHARED), right, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_texts_longer_than_a_sliding_window_are_scored_in_padded_batches(tmp_path):
    """Gemma 3's sliding-window layers see only the last ``sliding_window`` positions; one tree mask cannot say that,
    so longer texts go the plain way. A tiny random Gemma 3 with a window of 3 tokens."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    folder = tiny_causal_lm(tmp_path / "tiny-gemma3")  # its tokenizer; the model is replaced below
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(WORDS) + 3, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=8, sliding_window=3,
                           max_position_embeddings=64, bos_token_id=2, eos_token_id=2, pad_token_id=0)
    Gemma3ForCausalLM(cfg).save_pretrained(folder)
    scorer = HFCausalScorer(folder)
    assert scorer.tree and scorer.window == 3
    texts = ["когда возврат", "не могу оплатить заказ картой", "когда возврат денег"]  # 3, 6 and 4 tokens
    got = scorer.token_logprobs(texts)
    want = scorer._plain(scorer._encode(texts))  # the model's own forward pass, windows applied
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-5)
    scorer.window = None  # what ignoring the window would give: the long texts differ
    wrong = scorer.token_logprobs(texts)
    assert wrong[0] == pytest.approx(want[0], abs=1e-5)
    assert max(abs(a - b) for a, b in zip(wrong[1], want[1], strict=True)) > 1e-4


def test_a_local_scorer_is_loaded_once_per_process(tmp_path):
    from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer

    folder = tiny_causal_lm(tmp_path / "tiny-gpt2")
    first = build_scorer(PerplexitySettings(model_path=folder))  # a folder: auto means hf
    assert build_scorer(PerplexitySettings(model_path=folder)) is first
    assert build_scorer(PerplexitySettings(model_path=folder, backend="hf")) is first  # what auto resolved to
    assert build_scorer(PerplexitySettings(model_path=folder, pack_tokens=2048)) is not first  # other settings
    assert first.identity == "hf:tiny-gpt2"
