"""The judge stage end to end against local fake servers (tests/fakeserver.py).

The fake judge has a planted first-position bias: it gives every answer its true score, plus 2 to whichever
answer is shown as "A". True scores: the reference 8, the "good" model's answers 7, the "bad" model's 3.
So in the order candidate-first the good model scores 9 vs 8 (it "wins"), in the other order 7 vs 10.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import summary_json
from fakeserver import Behavior, FakeOpenAIServer
from vlmpipe.analysis.judge import model_judgements
from vlmpipe.app.cli import app
from vlmpipe.app.pipeline import open_store, run, save_config
from vlmpipe.core.config import RunConfig, config_from_dict
from vlmpipe.core.store import Store
from vlmpipe.stages.judge import judge_run
from vlmpipe.stages.judge.run import positions
from vlmpipe.stages.references import apply_references

ITEMS = ["card", "order", "refund", "login"]
GOOD, BAD = "secret-model-alpha", "secret-model-beta"
TRUE = {"REFERENCE": 8, "GOOD": 7, "BAD": 3}
BIAS = 2
MALFORMED_ITEM = "login-MALFORMED"  # a candidate text marker the judge never answers properly
ANSWER_RE = re.compile(r"<answer_([ab])>\n(.*?)\n</answer_\1>", re.DOTALL)


def candidate_responder(body: dict[str, Any]) -> str:
    model = body["model"]
    if model == GOOD:
        return "Здравствуйте, GOOD ответ про заказ."
    if model == BAD:
        return "Привет, BAD ответ."
    return "Здравствуйте, REFERENCE от модели."


class BiasedJudge:
    """``responder`` of the fake judge server, with per-prompt attempt counts for malformed answers."""

    def __init__(self, *, malformed_every: int = 0) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}
        self.malformed_every = malformed_every

    def __call__(self, body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        text = next(p["text"] for p in user if p["type"] == "text")
        answers = dict(ANSWER_RE.findall(text))
        with self.lock:
            n = self.seen[text] = self.seen.get(text, 0) + 1
        if "MALFORMED" in text:
            return "I find both answers reasonable, but I cannot give numbers."
        if self.malformed_every and n == 1 and len(self.seen) % self.malformed_every == 0:
            # the first attempt at every k-th prompt: summed criteria, as gpt-4o-mini did in the peer's data
            return '```json\n{"explanation_a": "sum", "explanation_b": "sum", "score_a": 34, "score_b": 35}\n```'

        def score(answer: str) -> int:
            return next(v for k, v in TRUE.items() if k in answer)

        verdict = {"explanation_a": "A", "explanation_b": "B",
                   "score_a": min(10, score(answers["a"]) + BIAS), "score_b": score(answers["b"])}
        return "Here is my verdict: " + json.dumps(verdict)


def make_dataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, item in enumerate(ITEMS):
        Image.new("RGB", (32 + i, 24), (40 * i, 100, 200)).save(root / f"{item}.png")
        lines.append(json.dumps({"id": item, "image": f"{item}.png",
                                 "reference": f"Здравствуйте, REFERENCE для {item}."}, ensure_ascii=False))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def make_config(tmp_path: Path, cand_url: str, judge_url: str, *, mode: str = "both", repeats: int = 3,
                **judge: Any) -> RunConfig:
    data = make_dataset(tmp_path / "data")
    return config_from_dict({
        "name": f"judge-{mode}",
        "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [{"name": GOOD, "base_url": cand_url, "max_retries": 0},
                   {"name": BAD, "base_url": cand_url, "max_retries": 0}],
        "repeats": repeats,
        "concurrency": 4,
        "judge": {"enabled": True, "mode": mode, "seed": 11,
                  "model": {"name": "judge", "model": "fake-judge", "base_url": judge_url, "stream": False,
                            "max_retries": 0, "temperature": 0.0},
                  "prices": {"prompt": 1.0, "completion": 2.0}, **judge},
    }, base_dir=tmp_path)


@pytest.fixture
def candidates():
    with FakeOpenAIServer(responder=candidate_responder) as srv:
        yield srv


def test_both_mode_cancels_the_planted_bias_and_measures_it(tmp_path: Path, candidates) -> None:
    with FakeOpenAIServer(responder=BiasedJudge()) as judge_srv:
        result = run(make_config(tmp_path, candidates.url, judge_srv.url), show_progress=False)
        requests = judge_srv.requests
    good = summary_json(result)["models"][GOOD]["judge"]
    bad = summary_json(result)["models"][BAD]["judge"]
    # both orders, averaged: 9 and 7 -> 8 for the good model, 8 and 10 -> 9 for the reference
    assert good["candidate_score_mean"] == pytest.approx(8.0)
    assert good["reference_score_mean"] == pytest.approx(9.0)
    assert good["ratio_mean"] == pytest.approx(8 / 9)
    assert good["ratio_ci95"] == pytest.approx([8 / 9, 8 / 9])  # no order noise at all
    assert good["ratio_ci95_naive"] == pytest.approx([8 / 9, 8 / 9])
    # the truth (7 < 8) is a loss every time; the bias alone never turns it into a win
    assert (good["win_rate"], good["tie_rate"], good["loss_rate"]) == (0.0, 0.0, 1.0)
    assert good["candidate_score_mean"] - good["reference_score_mean"] == pytest.approx(TRUE["GOOD"] - 8)
    assert good["first_position_bonus"] == pytest.approx(BIAS)
    # preferred answer flips with the order for the good model (9>8, then 7<10), never for the bad one
    assert good["position_consistency"] == 0.0
    assert bad["position_consistency"] == 1.0
    assert good["first_position_preference"] == 1.0  # whichever answer is first wins (or ties never)
    assert good["n"] == 12 and good["n_failed"] == 0 and good["n_items"] == 4
    assert good["prompt_tokens"] > 0 and good["completion_tokens"] > 0
    assert bad["ratio_mean"] == pytest.approx(4 / 9)
    # 2 models x 4 items x 3 repeats x 2 orders = 48 judgements, but the repeats' answers are identical: the judge
    # (temperature 0) is asked once per distinct request, and the other two repeats reuse its answer
    assert len(requests) == 2 * 4 * 2
    assert len({json.dumps(b, sort_keys=True) for b in requests}) == len(requests)
    pair = summary_json(result)["pairwise"]["judge.ratio"][0]
    assert (pair["a"], pair["b"]) == (GOOD, BAD)
    assert pair["diff"] == pytest.approx(8 / 9 - 4 / 9) and pair["p_a_better"] == 1.0
    status = summary_json(result)["judge_status"]
    assert status["state"] == "done" and status["cost_usd"] > 0
    # the judge sees the image with its detail, is asked for JSON, and never sees a model name
    body = requests[0]
    assert body["response_format"]["type"] == "json_schema"
    image = next(p for p in body["messages"][-1]["content"] if p["type"] == "image_url")
    assert image["image_url"]["detail"] == "auto" and image["image_url"]["url"].startswith("data:image/")
    for b in requests:
        dumped = json.dumps(b, ensure_ascii=False)
        assert GOOD not in dumped and BAD not in dumped and "alpha" not in dumped and "beta" not in dumped
    report = result.report_dir
    assert (report / "judgements.csv").read_text(encoding="utf-8").count("\n") == 1 + 48
    assert "REFERENCE для card" in (report / "references.csv").read_text(encoding="utf-8")


def test_random_mode_leaves_order_noise(tmp_path: Path, candidates) -> None:
    with FakeOpenAIServer(responder=BiasedJudge()) as judge_srv:
        result = run(make_config(tmp_path, candidates.url, judge_srv.url, mode="random", dedupe=False),
                     show_progress=False)
        n_requests = len(judge_srv.requests)
    good = summary_json(result)["models"][GOOD]["judge"]
    assert n_requests == 2 * 4 * 3  # one order per generation
    with open_store(result.run_dir) as store:
        rows = [r for r in store.judgements() if r["model"] == GOOD]
    by_pos = {p: [r["candidate_score"] / r["reference_score"] for r in rows if r["candidate_position"] == p]
              for p in ("A", "B")}
    assert by_pos["A"] and by_pos["B"]  # the seeded draw used both orders, and recorded them
    assert set(by_pos["A"]) == {9 / 8} and set(by_pos["B"]) == {7 / 10}
    # the planted bias turns some true losses into wins: the ratio depends on the draw, with spread
    share_a = len(by_pos["A"]) / 12
    assert good["win_rate"] == pytest.approx(share_a) and good["loss_rate"] == pytest.approx(1 - share_a)
    assert good["ratio_mean"] == pytest.approx(share_a * 9 / 8 + (1 - share_a) * 7 / 10)
    lo, hi = good["ratio_ci95_naive"]
    assert hi - lo > 0.1
    assert good["position_consistency"] is None  # needs both orders
    # the draw is seeded per judgement: the same config draws the same orders
    assert all([r["candidate_position"]] == positions("random", 11, r["generation_key"]) for r in rows)


def test_malformed_answers_are_retried_then_recorded_as_failures(tmp_path: Path, candidates) -> None:
    cfg = make_config(tmp_path, candidates.url, "http://127.0.0.1:9/v1", repeats=1, max_attempts=3)
    run(cfg.model_copy(update={"judge": cfg.judge.model_copy(update={"enabled": False})}), show_progress=False)
    with open_store(cfg.run_dir) as store:  # one candidate answer the judge will never score
        login_bad = next(g for g in store.generations() if g["item"] == "login" and g["model"] == BAD)
        store.put_generation({**login_bad, "text": f"{login_bad['text']} {MALFORMED_ITEM}"})
        judge = BiasedJudge(malformed_every=3)
        with FakeOpenAIServer(responder=judge) as judge_srv:
            cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
            cfg.judge.enabled = True
            outcome = judge_run(cfg, store, show_progress=False)
            n_requests = len(judge_srv.requests)
        rows = store.judgements()
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 2  # the MALFORMED answer, in both orders
    assert all(r["error_kind"] == "malformed" and r["attempts"] == 3 for r in failed)
    assert all("cannot give numbers" in r["raw"] for r in failed)
    assert all(r["candidate_score"] is None for r in failed)  # never a silent 0
    retried = [r for r in rows if r["error"] is None and r["attempts"] == 2]
    assert retried, "out-of-range first answers were retried and then accepted"
    assert all(r["candidate_score"] <= 10 for r in rows if r["error"] is None)
    assert n_requests == sum(r["attempts"] for r in rows)
    assert outcome.failed == 2 and outcome.judged == 14
    # a second run does not pay again for final failures
    with open_store(cfg.run_dir) as store, FakeOpenAIServer(responder=judge) as judge_srv:
        cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
        again = judge_run(cfg, store, show_progress=False)
        assert len(judge_srv.requests) == 0 and again.already_done == 16


def _generated_run(tmp_path: Path, cand_url: str, **judge: Any) -> RunConfig:
    # these tests count requests per judgement: deduplication is off (tests/test_judge_dedupe.py tests it)
    cfg = make_config(tmp_path, cand_url, "http://127.0.0.1:9/v1", repeats=2, **{"dedupe": False, **judge})
    run(cfg.model_copy(update={"judge": cfg.judge.model_copy(update={"enabled": False})}), show_progress=False)
    return cfg


def test_limit_then_resume_pays_each_judgement_once(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)
    judge = BiasedJudge()
    with FakeOpenAIServer(responder=judge) as judge_srv, open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
        first = judge_run(cfg, store, limit=5, show_progress=False)
        assert (first.requested, first.stopped, len(judge_srv.requests)) == (5, "limit", 5)
        second = judge_run(cfg, store, show_progress=False)
        assert second.already_done == 5 and second.requested == 32 - 5
        third = judge_run(cfg, store, show_progress=False)
        assert third.requested == 0
        assert len(judge_srv.requests) == 32  # 2 models x 4 items x 2 repeats x 2 orders, each asked once
        prompts = [json.dumps(b["messages"], ensure_ascii=False) for b in judge_srv.requests]
        # the fake candidates answer each repeat identically: 16 distinct prompts, each once per repeat
        assert sorted({prompts.count(p) for p in prompts}) == [2] and len(set(prompts)) == 16
        assert len(store.judgements()) == 32


def test_interrupted_by_server_failure_resumes_only_the_unfinished(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)
    cfg.concurrency = 1
    with open_store(cfg.run_dir) as store:
        # the judge server dies after 10 answers (every later request gets 503, no retries)
        with FakeOpenAIServer(responder=BiasedJudge(),
                              behavior_fn=lambda i, _b: Behavior() if i < 10 else Behavior("status", status=503)
                              ) as dying:
            cfg.judge.model.base_url = dying.url  # type: ignore[union-attr]
            first = judge_run(cfg, store, show_progress=False)
        assert first.judged == 10 and first.failed == 22
        # why they failed is said (console note, logs/run.log), not only stored in judgements.csv
        (why,) = [n for n in first.notes if "failed" in n]
        assert why.startswith("judge: 22 judgement(s) failed (http_503: 22); first: ") and "HTTP 503" in why
        with FakeOpenAIServer(responder=BiasedJudge()) as healthy:
            cfg.judge.model.base_url = healthy.url  # type: ignore[union-attr]
            second = judge_run(cfg, store, show_progress=False)
            assert len(healthy.requests) == 22 and second.judged == 22
        assert all(r["error"] is None for r in store.judgements())


def test_an_unreachable_judge_server_is_given_up_after_a_few_requests(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)  # 32 judgements to make; the judge's port is closed
    with open_store(cfg.run_dir) as store:
        outcome = judge_run(cfg, store, show_progress=False)
        stored = store.judgements()
    # 5 connection failures in a row give the server up; at most the 3 other workers' requests were in flight
    assert 5 <= outcome.requested == outcome.failed == len(stored) <= 5 + 3
    assert outcome.judged == 0 and outcome.remaining == 32 - outcome.requested
    assert {r["error_kind"] for r in stored} == {"connection"}
    assert outcome.given_up == ("the judge server judge at http://127.0.0.1:9/v1 failed 5 requests in a row and "
                                "none succeeded")
    assert f"judge: {outcome.given_up}: {outcome.remaining} judgement(s) not sent; run `vlmpipe judge RUN` again " \
           "once it answers" in outcome.notes


def test_max_cost_stops_before_exceeding(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)
    cfg.concurrency = 1
    with FakeOpenAIServer(responder=BiasedJudge()) as judge_srv, open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
        one = judge_run(cfg, store, limit=1, show_progress=False)
        per = one.cost_usd
        assert per > 0
        # prices 1 and 2 USD per 1M tokens: the cost is exactly the tokens the server reported
        row = store.judgements()[0]
        assert per == pytest.approx((row["prompt_tokens"] * 1 + row["completion_tokens"] * 2) / 1e6)
        budget = per * 4.5
        out = judge_run(cfg, store, max_cost=budget, show_progress=False)
        assert out.stopped == "max_cost"
        assert out.cost_usd <= budget
        assert budget - out.cost_usd < 1.5 * per  # it stopped only when one more would have exceeded it
        assert len(judge_srv.requests) == round(out.cost_usd / per)


def test_judge_settings_that_cannot_work_stop_the_run_before_generating(tmp_path: Path, candidates) -> None:
    cfg = make_config(tmp_path, candidates.url, "http://127.0.0.1:9/v1", max_cost=1.0, prices={})
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg.public_dict()), encoding="utf-8")  # JSON is YAML
    res = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert res.exit_code == 2 and len(candidates.requests) == 0  # it used to fail after every generation
    assert (f"{path}: a judge cost limit is set but judge.prices is not" in " ".join(res.stderr.split()))
    assert not cfg.run_dir.exists()
    # `vlmpipe judge RUN --max-cost` on a run without prices names the file to edit
    cfg = _generated_run(tmp_path / "second", candidates.url, prices={})
    res = CliRunner().invoke(app, ["judge", str(cfg.run_dir), "--max-cost", "1", "-q"])
    assert res.exit_code == 2
    assert (f"{cfg.run_dir / 'config.yaml'}: a judge cost limit is set but judge.prices is not"
            in " ".join(res.stderr.split()))


def test_cli_judge_command_and_not_configured_message(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["judge_status"]["state"] == "not_configured"
    assert summary["models"][GOOD]["judge"] is None
    # how to configure a judge in the run's config; the demo's environment variables are for the demo only
    assert summary["models"][GOOD]["unavailable"]["judge"].startswith("the LLM judge is not configured. Enable it "
                                                                      "with `judge: {enabled: true, model: {...}}`")
    assert "VLMPIPE_JUDGE_BASE_URL" not in json.dumps(summary) and "vlmpipe demo" not in json.dumps(summary)
    # a run whose config has no judge cannot start the stage (exit 2) and says how to configure it
    save_config(cfg.model_copy(update={"judge": cfg.judge.model_copy(update={"model": None, "enabled": False})}),
                cfg.run_dir)
    res = CliRunner().invoke(app, ["judge", str(cfg.run_dir), "-q"])
    assert res.exit_code == 2 and "not configured" in res.output
    # write the config the run would have with a judge, then judge from the command line
    with FakeOpenAIServer(responder=BiasedJudge()) as judge_srv:
        cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
        save_config(cfg, cfg.run_dir)
        res = CliRunner().invoke(app, ["judge", str(cfg.run_dir), "--limit", "6", "-q"])
        assert res.exit_code == 0, res.output
        assert "--limit" in res.output and "26 judgement(s) left" in res.output
        res = CliRunner().invoke(app, ["judge", str(cfg.run_dir), "-q"])
        assert res.exit_code == 0, res.output
        assert len(judge_srv.requests) == 32
    summary = json.loads((cfg.run_dir / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["models"][GOOD]["judge"]["ratio_mean"] == pytest.approx(8 / 9)


def test_reference_model_answers_become_the_references(tmp_path: Path) -> None:
    store = Store(tmp_path / "run.sqlite")
    store.put_items([{"id": "a", "image": "a.png", "reference": "dataset A"},
                     {"id": "b", "image": "b.png", "reference": "dataset B"}])
    rows = [("k1", "a", 0, None, "HTTP 500"), ("k2", "a", 1, "model A, second sample", None),
            ("k3", "b", 0, None, "timeout")]
    for key, item, rep, text, err in rows:
        store.put_generation({"key": key, "model": "gpt-ref", "role": "reference", "item": item, "repeat": rep,
                              "text": text, "error": err})
    store.set_plan((k, "gpt-ref", "reference", i, r) for k, i, r, _t, _e in rows)
    cfg = config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                            "references": {"source": "model", "samples": 2, "model": {"name": "gpt-ref"}}},
                           base_dir=tmp_path)
    chosen = apply_references(cfg, store)
    refs = {i["id"]: i["reference"] for i in store.items()}
    assert refs == {"a": "model A, second sample", "b": "dataset B"}  # b's samples all failed
    assert chosen == {"a": {"source": "model", "model": "gpt-ref", "sample": 1}, "b": {"source": "dataset"}}
    store.close()


def test_demo_enables_the_judge_from_the_environment() -> None:
    from vlmpipe.app.demo.judge_env import apply_judge_env, judge_spec_from_env

    assert judge_spec_from_env({}) is None
    spec = judge_spec_from_env({"OPENAI_API_KEY": "sk-x"})
    assert spec is not None and spec.model_id == "gpt-4o-mini" and spec.base_url.startswith("https://api.openai")
    assert spec.api_key_env == "OPENAI_API_KEY" and "sk-x" not in spec.model_dump_json()
    local = judge_spec_from_env({"VLMPIPE_JUDGE_BASE_URL": "http://127.0.0.1:1/v1", "VLMPIPE_JUDGE_MODEL": "qwen"})
    assert local is not None and local.model_id == "qwen" and local.api_key_env is None
    from vlmpipe.app.demo import demo_config

    cfg = apply_judge_env(demo_config(), {"VLMPIPE_JUDGE_BASE_URL": "http://127.0.0.1:1/v1",
                                          "VLMPIPE_JUDGE_MODEL": "qwen", "VLMPIPE_REFERENCE_MODEL": "big"})
    assert cfg.judge.enabled and cfg.references.source == "model" and cfg.references.model.model_id == "big"


def test_ratio_spread_is_zero_in_both_mode_only(tmp_path: Path, candidates) -> None:
    """Summarised: the per-generation ratios of the good model have no spread in both mode, some in random."""
    spreads = {}
    for mode in ("both", "random"):
        with FakeOpenAIServer(responder=BiasedJudge()) as judge_srv:
            res = run(make_config(tmp_path / mode, candidates.url, judge_srv.url, mode=mode), show_progress=False)
        with open_store(res.run_dir) as store:
            per = model_judgements(store, store.judge_meta())[GOOD]
        spreads[mode] = float(np.std([j["candidate"] / j["reference"] for _, j in per]))
    assert spreads["both"] == pytest.approx(0.0, abs=1e-12) and spreads["random"] > 0.1


def test_server_without_json_schema_support_is_asked_without_it(tmp_path: Path, candidates) -> None:
    cfg = _generated_run(tmp_path, candidates.url)
    cfg.concurrency = 1

    def no_schema(_i: int, body: dict[str, Any]) -> Behavior:
        if "response_format" in body:
            return Behavior("status", status=400, text="response_format is not supported")
        return Behavior()

    with FakeOpenAIServer(responder=BiasedJudge(), behavior_fn=no_schema) as srv, open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = srv.url  # type: ignore[union-attr]
        out = judge_run(cfg, store, limit=3, show_progress=False)
        assert out.judged == 3 and out.failed == 0
        assert ["response_format" in b for b in srv.requests] == [True, False, False, False]
    # extra_body: {response_format: null} never sends it
    cfg.judge.model.extra_body = {"response_format": None}  # type: ignore[union-attr]
    with FakeOpenAIServer(responder=BiasedJudge()) as srv, open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = srv.url  # type: ignore[union-attr]
        judge_run(cfg, store, limit=2, show_progress=False)
        assert srv.requests and not any("response_format" in b for b in srv.requests)


def test_judge_requests_in_flight_follow_the_servers_429s(tmp_path: Path, candidates, monkeypatch) -> None:
    """As for generation: a burst of 429s from the judge server halves the judge's requests in flight (8 → ≤ 4),
    and every judgement still succeeds after its retries."""
    from reliability_helpers import InFlightCounter
    from vlmpipe.stages.judge import run as judge_run_mod

    cfg = _generated_run(tmp_path, candidates.url)
    # the first 8 are answered once 8 are in flight: the client's 8 show at the server whatever the machine's speed
    counter = InFlightCounter(monkeypatch, burst=range(12, 16), hold=lambda i: i < 8, level=8)
    monkeypatch.setattr(judge_run_mod, "GROW_AFTER", 100)  # no regrowth within this short run
    cfg.concurrency = 8
    with FakeOpenAIServer(responder=BiasedJudge(), behavior_fn=counter.behaviour) as judge_srv, \
            open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = judge_srv.url  # type: ignore[union-attr]
        cfg.judge.model.max_retries = 3  # type: ignore[union-attr]
        outcome = judge_run(cfg, store, show_progress=False)
    assert outcome.judged == 32 and outcome.failed == 0  # every 429 was retried into a verdict
    starts = counter.sorted_starts()
    assert max(n for i, n in starts if i < 12) == 8, starts
    assert max(n for i, n in starts if i >= 20) <= 4, starts  # after the burst (and the retries in flight)
