"""Deduplicated judge requests (issue 16): a run whose repeats give identical answers sends one judge request per
distinct body (plus the re-asks of malformed answers), reuses the answer for the other judgements, reports what it
reused and saved, and a run killed mid-way re-pays nothing already answered.

The scenario of the issue: 6 screenshots × 4 repeats × 3 models, judged in both orders (144 judgements); the stand-in
models answer every repeat identically, so there are only 6 × 3 × 2 = 36 distinct judge requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import ROOT, summary_json
from fakeserver import FakeOpenAIServer
from vlmpipe.app.pipeline import open_store, run, save_config
from vlmpipe.core.config import RunConfig, config_from_dict
from vlmpipe.stages.judge import judge_run

MODELS = ["m-one", "m-two", "m-three"]
SCREENS, REPEATS = 6, 4
JUDGEMENTS = SCREENS * REPEATS * len(MODELS) * 2  # 144
DISTINCT = SCREENS * len(MODELS) * 2  # 36
MALFORMED_MODEL = "m-three"  # the judge's first answer to each of this model's requests is unreadable


def candidate(body: dict[str, Any]) -> str:
    return f"Здравствуйте, ответ модели {body['model']}."


def judge_text(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    return next(p["text"] for p in user if p["type"] == "text")


def key_of(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


class Judge:
    """Scores the answer that names m-one 8, any other 5, the reference 7; the first answer to each request about
    ``MALFORMED_MODEL`` is not JSON (it is asked again). Counts the usable answers (verdicts) per request body."""

    def __init__(self, *, hang_after: int | None = None) -> None:
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()
        self.hang_after = hang_after
        self.release = threading.Event()
        self.hanging = threading.Event()
        self.killed = False

    def __call__(self, body: dict[str, Any]) -> str:
        key = key_of(body)
        with self.lock:
            self.asked[key] += 1
            first_ask = self.asked[key] == 1
            hang = self.hang_after is not None and sum(self.answered.values()) >= self.hang_after
        if hang:
            self.hanging.set()
            self.release.wait()
            return "{}"  # answered after the kill: nobody reads it
        text = judge_text(body)
        if MALFORMED_MODEL in text and first_ask:
            return "I cannot give numbers."
        else:
            a, b = (part.split("</answer_")[0] for part in text.split("<answer_")[1:3])
            score = {"a": 0, "b": 0}
            for side, answer in (("a", a), ("b", b)):
                score[side] = 8 if "m-one" in answer else 5 if "модели" in answer else 7
            reply = json.dumps({"explanation_a": "A", "explanation_b": "B", "score_a": score["a"],
                                "score_b": score["b"]})
        with self.lock:
            if not self.killed:
                self.answered[key] += 1
        return reply


def make_config(tmp_path: Path, cand_url: str, judge_url: str, **judge: Any) -> RunConfig:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(SCREENS):
        Image.new("RGB", (30 + i, 20), (30 * i, 90, 160)).save(data / f"s{i}.png")
        lines.append(json.dumps({"id": f"s{i}", "image": f"s{i}.png", "reference": f"Эталон {i}."},
                                ensure_ascii=False))
    (data / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config_from_dict({
        "name": "dedupe", "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [{"name": m, "base_url": cand_url, "max_retries": 0} for m in MODELS],
        "repeats": REPEATS, "concurrency": 4, "metrics": {"enabled": ["letters"]},
        "judge": {"enabled": True, "mode": "both",
                  "model": {"name": "judge", "model": "fake-judge", "base_url": judge_url, "stream": False,
                            "max_retries": 0, "temperature": 0.0},
                  "prices": {"prompt": 1.0, "completion": 2.0}, **judge},
    }, base_dir=tmp_path)


def test_one_judge_request_per_distinct_body_and_the_reuse_is_reported(tmp_path: Path) -> None:
    judge = Judge()
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=judge) as jdg:
        result = run(make_config(tmp_path, cand.url, jdg.url), show_progress=False)
        bodies = [key_of(b) for b in jdg.requests]
    # 36 distinct bodies; each sent once, and the 12 about m-three once more after a malformed first answer
    assert len(set(bodies)) == DISTINCT
    assert len(bodies) == DISTINCT + DISTINCT // 3
    assert Counter(Counter(bodies).values()) == {1: 24, 2: 12}
    s = summary_json(result)
    for model in MODELS:
        j = s["models"][model]["judge"]
        assert j["n"] == SCREENS * REPEATS and j["n_failed"] == 0
        assert j["requests_reused"] == 2 * SCREENS * (REPEATS - 1)  # 36 of the model's 48 judgements reused
        # the retries of malformed answers are sent, and not counted as reuse
        assert j["requests_sent"] == 2 * SCREENS * (2 if model == MALFORMED_MODEL else 1)
    assert s["models"]["m-one"]["judge"]["ratio_mean"] == pytest.approx(8 / 7)
    assert s["models"]["m-two"]["judge"]["ratio_mean"] == pytest.approx(5 / 7)
    status = s["judge_status"]
    assert status["requests_sent"] == len(bodies) and status["requests_reused"] == JUDGEMENTS - DISTINCT
    with open_store(result.run_dir) as store:
        rows = store.judgements()
        assert len(rows) == JUDGEMENTS and all(r["error"] is None for r in rows)
        paid = sum(r["cost_usd"] for r in rows if r["cost_usd"] is not None)
        # each distinct request is paid once and saved three times (the other repeats)
        assert status["cost_usd"] == pytest.approx(paid) and status["cost_saved_usd"] == pytest.approx(3 * paid)
        assert all(r["cost_usd"] is None and r["prompt_tokens"] is None for r in rows if r["reused"])
        assert len({r["request_hash"] for r in rows}) == DISTINCT
    assert any("reused the stored answer" in n for n in result.notes)


def test_temperature_above_zero_sends_every_judgement_unless_asked(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate) as cand:
        cfg = make_config(tmp_path, cand.url, "http://127.0.0.1:9/v1")
        cfg.judge.enabled = False
        run(cfg, show_progress=False)
    cfg.judge.enabled = True
    cfg.judge.model.temperature = 0.7  # type: ignore[union-attr]
    with FakeOpenAIServer(responder=Judge()) as jdg, open_store(cfg.run_dir) as store:
        cfg.judge.model.base_url = jdg.url  # type: ignore[union-attr]
        sampled = judge_run(cfg, store, limit=10, show_progress=False)
        assert (sampled.requested, sampled.reused, jdg.request_count) == (10, 0, 10)  # m-one's, all sent
        cfg.judge.dedupe = True  # asked for: identical requests are sent once, at any temperature
        asked = judge_run(cfg, store, show_progress=False)
        assert asked.reused > 0 and asked.requested <= DISTINCT
        assert asked.judged + sampled.judged == JUDGEMENTS


def test_a_run_killed_mid_judging_repays_nothing_already_answered(tmp_path: Path) -> None:
    judge = Judge(hang_after=15)  # the 16th answer hangs until the judging process has been killed
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=judge) as jdg:
        cfg = make_config(tmp_path, cand.url, jdg.url)
        cfg.concurrency = 1
        cfg.judge.enabled = False
        run(cfg, show_progress=False)
        cfg.judge.enabled = True
        save_config(cfg, cfg.run_dir)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-m", "vlmpipe.app.cli", "judge", str(cfg.run_dir), "--quiet"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not judge.hanging.is_set() and proc.poll() is None:
                threading.Event().wait(0.02)
            proc.kill()
            proc.wait(30)
        finally:
            with judge.lock:
                judge.killed = True
            judge.release.set()
        with open_store(cfg.run_dir) as store:
            stored = [r for r in store.judgements() if r["error"] is None]
            assert stored and len(stored) < JUDGEMENTS
            answered_before = +judge.answered
            judge.killed, judge.hang_after = False, None
            outcome = judge_run(cfg, store, show_progress=False)
            rows = store.judgements()
    assert len(rows) == JUDGEMENTS and all(r["error"] is None for r in rows)
    # no body that was answered before the kill was asked again; in all, every body was answered once
    assert all(judge.answered[k] == 1 for k in answered_before)
    assert len(judge.answered) == DISTINCT and set(judge.answered.values()) == {1}
    assert outcome.already_done == len(stored) and outcome.judged == JUDGEMENTS - len(stored)
