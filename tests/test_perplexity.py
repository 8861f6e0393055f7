"""Perplexity: the definition, the endpoint client (fake server), scorer identity, caching, unavailable reasons."""

from __future__ import annotations

import json
import math

import pytest

from fakeserver import FakeOpenAIServer
from metric_helpers import make_ctx, rows
from vlmpipe.metrics.lm_logprobs import EndpointScorer, perplexity
from vlmpipe.metrics.perplexity import PerplexityMetric


def test_perplexity_is_exp_of_minus_mean_logprob():
    assert perplexity([-1.0, -3.0]) == pytest.approx(math.e**2)
    assert perplexity([]) is None and perplexity(None) is None


def test_extract_keeps_tokens_after_the_first_and_drops_bos_and_the_generated_token():
    text = "Не могу оплатить"  # len 16
    llama_cpp_style = {"choices": [{"logprobs": {  # BOS left out, first text token None, one generated token
        "text_offset": [0, 2, 7, 16], "token_logprobs": [None, -1.0, -2.0, -9.0]}}]}
    vllm_style = {"choices": [{"logprobs": {  # BOS echoed with None, first text token has a value
        "text_offset": [0, 0, 2, 7, 16], "token_logprobs": [None, -5.0, -1.0, -2.0, -9.0]}}]}
    assert EndpointScorer.extract(text, llama_cpp_style) == [-1.0, -2.0]
    assert EndpointScorer.extract(text, vllm_style) == [-1.0, -2.0]


def test_endpoint_scorer_against_fake_server_logprobs():
    # fake tokens: "Не"(None) " могу"(-4/4) " оплатить"(-8/4) " заказ"(-5/4), then one generated token (dropped)
    with FakeOpenAIServer(models=("scorer-lm",)) as srv:
        scorer = EndpointScorer(srv.url, "scorer-lm")
        scorer.probe()
        got = scorer.token_logprobs(["Не могу оплатить заказ", "Привет"])
        body = srv.requests[-1]
    assert got[0] == [-1.0, -2.0, -1.25]
    assert perplexity(got[0]) == pytest.approx(math.exp((1.0 + 2.0 + 1.25) / 3))
    assert got[1] is None  # one token: nothing after the first
    assert body["echo"] is True and body["logprobs"] == 1 and body["max_tokens"] == 1  # never max_tokens=0


def test_endpoint_metric_scores_names_the_scorer_and_sends_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("PPL_KEY", "sekret")
    with FakeOpenAIServer(models=("scorer-lm",), api_key="sekret") as srv:
        ctx = make_ctx(tmp_path, settings={"perplexity": {"backend": "endpoint", "base_url": srv.url,
                                                          "model": "scorer-lm", "api_key_env": "PPL_KEY"}})
        metric = PerplexityMetric()
        assert metric.unavailable(ctx) is None
        out = metric.score(rows("Не могу оплатить заказ", "Да"), ctx)
    assert out[0]["perplexity"] == (pytest.approx(math.exp(4.25 / 3)), {"scorer": "endpoint:scorer-lm", "tokens": 3})
    assert out[1]["perplexity"] == (None, {"scorer": "endpoint:scorer-lm", "tokens": 0, "why": "fewer than two tokens"})
    assert metric.summary_info(ctx) == {"perplexity_scorer": "endpoint:scorer-lm"}


def test_changing_the_scorer_changes_the_version(tmp_path):
    a = make_ctx(tmp_path, settings={"perplexity": {"backend": "endpoint", "base_url": "http://x/v1", "model": "a"}})
    b = make_ctx(tmp_path, settings={"perplexity": {"backend": "endpoint", "base_url": "http://x/v1", "model": "b"}})
    default = make_ctx(tmp_path)
    versions = {PerplexityMetric().version(c) for c in (a, b, default)}
    assert len(versions) == 3
    llama = make_ctx(tmp_path, settings={"perplexity": {"backend": "llama_cpp"}})
    torch_ = make_ctx(tmp_path, settings={"perplexity": {"backend": "hf"}})
    assert PerplexityMetric().version(llama).endswith("|llama_cpp:gemma-3-270m-q4_k_m.gguf")
    assert PerplexityMetric().version(torch_).endswith("|hf:gemma-3-270m-q4_k_m.gguf")  # another runtime: another
    assert PerplexityMetric().version(llama) != PerplexityMetric().version(torch_)      # scorer, never mixed


def test_auto_runs_the_default_gguf_with_torch_when_it_can(tmp_path, monkeypatch):
    from vlmpipe.metrics import perplexity as module

    ctx = make_ctx(tmp_path)
    monkeypatch.setattr(module, "missing_torch_gguf_modules", lambda: [])
    assert PerplexityMetric().summary_info(ctx) == {"perplexity_scorer": "hf:gemma-3-270m-q4_k_m.gguf"}
    monkeypatch.setattr(module, "missing_torch_gguf_modules", lambda: ["gguf"])
    assert PerplexityMetric().summary_info(ctx) == {"perplexity_scorer": "llama_cpp:gemma-3-270m-q4_k_m.gguf"}
    folder = make_ctx(tmp_path, settings={"perplexity": {"model_path": str(tmp_path)}})  # a folder: transformers
    assert PerplexityMetric().summary_info(folder) == {"perplexity_scorer": f"hf:{tmp_path.name}"}


@pytest.mark.parametrize(("settings", "why"), [
    ({"backend": "endpoint"}, "perplexity: backend endpoint needs metrics.settings.perplexity.base_url and .model"),
    ({"backend": "endpoint", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
     "perplexity: perplexity endpoint http://127.0.0.1:9/v1/completions failed"),
    ({"backend": "llama_cpp", "model_path": "/nonexistent/x.gguf"}, None),
    ({"backend": "hf", "model_path": "/nonexistent/folder"},
     "perplexity: model_path is neither a causal-LM folder nor a .gguf file: /nonexistent/folder"),
    ({"backend": "nope"}, "perplexity: metrics.settings.perplexity is invalid"),
])
def test_unavailable_reasons(tmp_path, settings, why):
    got = PerplexityMetric().unavailable(make_ctx(tmp_path, settings={"perplexity": settings}))
    assert got is not None
    if why is None:  # depends on whether llama-cpp-python is installed here; either way a reason, not a crash
        assert got.startswith("perplexity: ") and ("not found" in got or "not installed" in got)
    else:
        assert got.startswith(why)


def test_endpoint_key_variable_missing_is_a_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    ctx = make_ctx(tmp_path, settings={"perplexity": {"backend": "endpoint", "base_url": "http://127.0.0.1:9/v1",
                                                      "model": "m", "api_key_env": "NO_SUCH_KEY_VAR"}})
    assert PerplexityMetric().unavailable(ctx) == (
        "perplexity: environment variable NO_SUCH_KEY_VAR (api_key_env) is not set")


def _seed(store, models: dict[str, list[str]]) -> None:
    store.put_items([{"id": "a", "image": "a.png"}])
    plan = []
    for model, texts in models.items():
        for i, text in enumerate(texts):
            key = f"{model}-{i}"
            plan.append((key, model, "candidate", "a", i))
            store.put_generation({"key": key, "model": model, "role": "candidate", "item": "a", "repeat": i,
                                  "text": text, "latency_s": 1.0})
    store.put_models([(m, "candidate", {}) for m in models])
    store.set_plan(plan)


def test_adding_a_model_scores_only_its_texts_and_the_summary_names_the_scorer(tmp_path):
    from vlmpipe.analysis.aggregate import build_summary
    from vlmpipe.core.store import Store
    from vlmpipe.stages.score import score_run

    with FakeOpenAIServer(models=("scorer-lm",)) as srv, Store(tmp_path / "run.sqlite") as store:
        cfg = make_ctx(tmp_path, enabled=["perplexity"], settings={"perplexity": {
            "backend": "endpoint", "base_url": srv.url, "model": "scorer-lm"}}).cfg
        _seed(store, {"A": ["Не могу оплатить заказ", "Карта заблокирована банком"]})
        score_run(cfg, store, show_progress=False)
        first = srv.request_count  # one probe + two texts
        _seed(store, {"A": ["Не могу оплатить заказ", "Карта заблокирована банком"], "B": ["Где мой возврат денег"]})
        score_run(cfg, store, show_progress=False)
        prompts = [b["prompt"] for b in srv.requests[first:]]
        second = srv.request_count
        score_run(cfg, store, show_progress=False)  # nothing new: the scorer is not even loaded (no probe)
        summary = json.loads(build_summary(cfg, store).to_json())
    assert first == 3
    assert prompts[1:] == ["Где мой возврат денег"]  # after the probe, only B's text
    assert srv.request_count == second
    assert summary["models"]["B"]["perplexity_scorer"] == "endpoint:scorer-lm"
    assert summary["models"]["B"]["perplexity_mean"] == pytest.approx(math.exp((3 + 7 + 5) / 12))
    assert summary["models"]["A"]["perplexity_mean"] is not None
