"""The offline default perplexity scorer (Gemma 3 270M, by whichever runtime ``auto`` picks here) on the peer's
recorded answers, and the torch runtime against llama.cpp on the same weights.

Skipped with the reason when the default scorer cannot be built here (scripts/setup.sh installs it; a failure leaves
the reason in summary.json as well).
"""

from __future__ import annotations

import importlib.util

import pytest

from vlmpipe.metrics.lm_logprobs import ScorerUnavailable, perplexity
from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer


def _scorer(**settings):
    try:
        return build_scorer(PerplexitySettings(**settings))
    except ScorerUnavailable as err:
        pytest.skip(f"perplexity scorer unavailable here: {err}")


@pytest.fixture(scope="module")
def default_scorer():
    return _scorer()


@pytest.fixture
def peer_first_repeats(peer_dir):
    pd = pytest.importorskip("pandas")
    df = pd.read_excel(peer_dir / "summary_test_stats.xlsx")
    return df[df.groupby(["model_name", "Image"]).cumcount() == 0].copy()  # 80 answers, 77 distinct


def _score(scorer, texts: list[str]) -> list[float | None]:
    unique = list(dict.fromkeys(texts))  # identical answers are scored once
    by_text = dict(zip(unique, (perplexity(lp) for lp in scorer.token_logprobs(unique)), strict=True))
    return [by_text[t] for t in texts]


def test_peer_answers_7b_variants_are_more_fluent_than_2b(peer_first_repeats, default_scorer):
    """The peer's first repeat per (model, screenshot). All 400 rows: benchmarks/perplexity_speed.py."""
    df = peer_first_repeats
    df["ours"] = _score(default_scorer, [str(t) for t in df["candidate"]])
    means = df.groupby("model_name")["ours"].mean()
    seven = means[means.index.str.contains("7B")]
    two = means[means.index.str.contains("2B")]
    assert len(seven) == 4 and len(two) == 4
    assert seven.max() < two.min(), means.sort_values().to_dict()
    rho = df["ours"].rank().corr(df["Perplexity"].rank())  # Spearman = Pearson of ranks
    model_rho = means.rank().corr(df.groupby("model_name")["Perplexity"].mean().rank())
    print(f"\nper-model mean perplexity ({default_scorer.identity}): {means.round(2).to_dict()}")
    print(f"Spearman vs the peer's perplexity: rows {rho:.3f}, model means {model_rho:.3f}")
    assert rho > 0.5


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama-cpp-python is not installed (scripts/setup.sh builds it portably)")
def test_torch_and_llama_cpp_runtimes_of_the_same_gguf_agree(peer_first_repeats, default_scorer):
    """Same weights, two runtimes: llama.cpp also quantizes activations (to 8 bits) in its matrix products, so
    single answers differ by a few percent; the ranking of answers and the model means must agree."""
    torch_ = default_scorer if default_scorer.identity.startswith("hf:") else _scorer(backend="hf")
    llama = _scorer(backend="llama_cpp")
    df = peer_first_repeats.iloc[::5].copy()  # 16 answers, every model
    texts = [str(t) for t in df["candidate"]]
    df["torch"], df["llama"] = _score(torch_, texts), _score(llama, texts)
    rel = ((df["torch"] - df["llama"]).abs() / df["llama"])
    rho = df["torch"].rank().corr(df["llama"].rank())
    print(f"\ntorch vs llama.cpp: median |diff| {rel.median():.3%}, max {rel.max():.3%}, Spearman {rho:.3f}")
    assert rel.median() < 0.03 and rel.max() < 0.15
    assert rho > 0.95
    mean_rel = abs(df["torch"].mean() - df["llama"].mean()) / df["llama"].mean()
    assert mean_rel < 0.03
