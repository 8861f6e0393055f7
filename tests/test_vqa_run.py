"""A VQA run end to end against the stand-in model and judge: several questions per screenshot, killed in the
middle and resumed, with no duplicate row, the graded judge (single answers, ratio = score / 10, the human answers
graded too in mode ``both``), and intervals that resample screenshots, not questions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, summary_json
from fakeserver import FakeOpenAIServer
from reliability_helpers import make_images, model, write_manifest
from vlmpipe.app.pipeline import run
from vlmpipe.core.store import Store

QUESTION_RE = re.compile(r"<question>\n(.*?)\n</question>", re.DOTALL)
REFERENCE_RE = re.compile(r"<reference>\n(.*?)\n</reference>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>\n(.*?)\n</answer>", re.DOTALL)
# three screenshots; the first two carry two questions, the third three; one cannot be answered from its screenshot
QUESTIONS = {"shot_0.png": ["Где кнопка оплаты?", "Какая сумма заказа?"],
             "shot_1.png": ["Что значит ошибка 05?", "Когда придёт курьер?"],
             "shot_2.png": ["Как отменить заказ?", "Куда вернутся деньги?", "Какой номер заказа?"]}
ITEMS = sum(len(q) for q in QUESTIONS.values())  # 7
REPEATS = 2
PLANNED = ITEMS * REPEATS  # 14
KILL_AFTER = 5  # generations answered before the run is killed


def text_of(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    return user if isinstance(user, str) else next(p["text"] for p in user if p["type"] == "text")


def answer(question: str) -> str:
    """The stand-in model answers the question it was asked (the user message is the question)."""
    return f"Ответ на вопрос «{question}»."


def human(question: str) -> str:
    return f"Человек отвечает на «{question}»."


def judge(body: dict[str, Any]) -> str:
    """A graded judge: 9 for the human answer itself (mode both), 6 for any candidate's."""
    text = text_of(body)
    graded, reference = ANSWER_RE.search(text).group(1), REFERENCE_RE.search(text).group(1)  # type: ignore[union-attr]
    return json.dumps({"explanation": "сверено с ответом человека", "score": 9 if graded == reference else 6})


def test_a_vqa_run_killed_in_the_middle_resumes_without_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 3)
    rows = [{"image": image, "question": q, "reference": human(q), "tags": {"device": "phone" if i else "pc"},
             **({"answerable": False} if q == "Когда придёт курьер?" else {})}
            for i, (image, qs) in enumerate(QUESTIONS.items()) for q in qs]
    write_manifest(data, rows)
    release = threading.Event()
    answered = 0

    def candidate(body: dict[str, Any]) -> str:
        nonlocal answered
        answered += 1
        if answered > KILL_AFTER:
            release.wait()  # the next request hangs until the run has been killed
        return answer(text_of(body))

    with FakeOpenAIServer(responder=candidate) as gen, FakeOpenAIServer(responder=judge) as jdg:
        cfg_path = tmp_path / "vqa.yaml"
        cfg_path.write_text(yaml.safe_dump({
            "name": "vqa", "task": "vqa", "output_dir": str(tmp_path / "runs"),
            "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
            "models": [model("qwen", gen.url)], "repeats": REPEATS, "concurrency": 1,
            "metrics": {"enabled": ["refusal"]},
            "judge": {"enabled": True, "mode": "both", "model": model("judge", jdg.url, temperature=0.0)},
        }, allow_unicode=True), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-m", "vlmpipe.app.cli", "run", str(cfg_path), "--quiet"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while gen.request_count <= KILL_AFTER and proc.poll() is None:  # the 6th request is in flight
                threading.Event().wait(0.02)
            proc.kill()
            proc.wait(30)
        finally:
            release.set()
        db = tmp_path / "runs" / "vqa" / "run.sqlite"
        with Store(db) as store:
            assert len(store.generations(planned=False)) == KILL_AFTER  # what finished is stored, nothing else
            assert store.judgements() == []  # killed before the judge
        sent_before = gen.request_count
        result = run(cfg_path, show_progress=False)
        # the resumed run sends only what was missing; the judge grades every answer once and every human answer once
        assert gen.request_count - sent_before == PLANNED - KILL_AFTER
        # (the judge is at temperature 0: the repeats' identical answers are graded once, and reuse that grade)
        assert jdg.request_count == ITEMS + ITEMS

    assert result.exit_code == 0
    with Store(db) as store:
        gens = store.generations(planned=False)
        assert len(gens) == PLANNED
        assert Counter((g["model"], g["item"], g["repeat"]) for g in gens).most_common(1)[0][1] == 1
        items = {i["id"]: i for i in store.items()}
        assert sorted(items) == ["shot_0.png#1", "shot_0.png#2", "shot_1.png#1", "shot_1.png#2", "shot_2.png#1",
                                 "shot_2.png#2", "shot_2.png#3"]
        # each question is its own item, and its answer answers it
        assert all(g["text"] == answer(items[g["item"]]["question"]) for g in gens)
        assert Counter(j["candidate_position"] for j in store.judgements()) == {"G": PLANNED, "H": ITEMS}
    s = summary_json(result)
    m = s["models"]["qwen"]
    assert s["run"]["task"] == "vqa" and s["run"]["items"] == ITEMS and s["run"]["screenshots"] == 3
    assert m["judge"]["ratio_mean"] == pytest.approx(0.6) and m["judge"]["n"] == PLANNED  # each graded 6 of 10
    assert m["judge"]["n_items"] == 3 and m["fields"]["judge.ratio_mean"]["n_items"] == 3  # screenshots, not questions
    assert s["judge_status"]["human_answer_score_mean"] == 9.0 and s["judge_status"]["n_human_graded"] == ITEMS
    # the unanswerable question was answered anyway, in both repeats
    assert m["unanswerable_invented_rate"] == 1.0 and m["fields"]["unanswerable_invented_rate"]["n"] == 2
    assert s["slices"]["device"]["pc"]["qwen"]["n"] == 2 * REPEATS
    assert s["slices"]["device"]["phone"]["qwen"]["n"] == 5 * REPEATS
