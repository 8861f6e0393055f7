"""The offline default perplexity scorer (Gemma 3 270M in torch, what ``auto`` runs where torch is installed) on the
peer's recorded answers. (The torch runtime against llama.cpp on the same weights: test_perplexity_llama.py.)

Fails with what is missing when the default scorer cannot be built here (`make test`'s set-up installs it; see
tests/components.py for the opt-out); the scorer is loaded once per session (conftest: ``default_scorer``).
"""

from __future__ import annotations

import pandas as pd
import pytest

from vlmpipe.metrics.lm_logprobs import perplexity


@pytest.fixture
def peer_first_repeats(peer_dir):
    df = pd.read_excel(peer_dir / "summary_test_stats.xlsx", engine="openpyxl")
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
