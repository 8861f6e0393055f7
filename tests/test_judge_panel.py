"""A judge panel (issue 16): two stand-in judges with known, different biases grade every judgement; the summary has
each judge's own ratio, the panel's mean, and the agreement between them, checked against hand-computed values.

Two candidates, three screenshots, one repeat, both orders. Each candidate answer states its true quality q:

    screenshot            0  1  2
    terse  (m-terse)      6  7  8
    verbose (m-verbose)   5  6  4

Judge "strict" scores an answer q; judge "lenient" likes long answers: terse q − 1, verbose q + 2. Both score the
reference 8 and neither has a position bias, so each judgement's scores are these (ratio = score / 8):

    strict  : terse 6 7 8, verbose 5 6 4   → ratios 7/8 (terse) and 5/8 (verbose): terse ahead
    lenient : terse 5 6 7, verbose 7 8 6   → ratios 6/8 and 7/8: verbose ahead
    panel   : terse 5.5 6.5 7.5, verbose 6 7 5 → 6.5/8 and 6/8: terse ahead, and the judges disagree on it

Spearman of the six per-judgement scores (strict 6 7 8 5 6 4 vs lenient 5 6 7 7 8 6): ranks (3.5 5 6 2 3.5 1) and
(1 2.5 4.5 4.5 6 2.5), centred products sum to 2, squares to 17 and 16.5: ρ = 2 / √(17 · 16.5).
Krippendorff's alpha (interval): six units of two values, differences 1 1 1 2 2 2: observed Σ 2·d² = 30; the twelve
values sum to 75, their squares to 485: expected 2 (12 · 485 − 75²) = 390; α = 1 − 11 · 30 / 390 = 2 / 13.
(Ratios are scores / 8: the scale cancels from both.)
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import summary_json
from fakeserver import FakeOpenAIServer
from vlmpipe.app.pipeline import open_store, run
from vlmpipe.core.config import ConfigError, config_from_dict

QUALITY = {"m-terse": [6, 7, 8], "m-verbose": [5, 6, 4]}
STYLE = {"m-terse": "кратко", "m-verbose": "подробно"}
ANSWER_RE = re.compile(r"<answer_([ab])>\n(.*?)\n</answer_\1>", re.DOTALL)


def candidate(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    screen = int(next(p["text"] for p in user if p["type"] == "text").split()[-1])
    return f"Ответ {STYLE[body['model']]}: качество {QUALITY[body['model']][screen]}."


def judge(lenient: bool):
    def respond(body: dict[str, Any]) -> str:
        text = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
        scores = {}
        for side, answer in ANSWER_RE.findall(text):
            m = re.search(r"качество (\d+)", answer)
            if m is None:
                scores[side] = 8  # the reference
            else:
                q = int(m.group(1))
                scores[side] = (q + 2 if "подробно" in answer else q - 1) if lenient else q
        return json.dumps({"explanation_a": "", "explanation_b": "", "score_a": scores["a"], "score_b": scores["b"]})
    return respond


def make_config(tmp_path: Path, cand_url: str, judges: list[dict[str, Any]], *, panel: bool = True) -> Any:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(3):
        Image.new("RGB", (20 + i, 20), (60 * i, 10, 10)).save(data / f"s{i}.png")
        lines.append(json.dumps({"id": f"s{i}", "image": f"s{i}.png", "user_message": f"экран {i}",
                                 "reference": f"Эталонный запрос {i}."}, ensure_ascii=False))
    (data / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    judge_cfg: dict[str, Any] = {"enabled": True, "mode": "both", "seed": 3}
    judge_cfg.update({"panel": judges} if panel else {"model": judges[0]})
    return config_from_dict({
        "name": "panel", "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [{"name": m, "base_url": cand_url, "max_retries": 0} for m in QUALITY],
        "repeats": 1, "concurrency": 2, "metrics": {"enabled": ["letters"]}, "judge": judge_cfg,
    }, base_dir=tmp_path)


def judge_spec(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "model": f"judge-{name}", "base_url": url, "stream": False, "max_retries": 0,
            "temperature": 0.0}


def test_two_judges_with_different_biases(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=judge(False)) as strict, \
            FakeOpenAIServer(responder=judge(True)) as lenient:
        cfg = make_config(tmp_path, cand.url, [judge_spec("strict", strict.url), judge_spec("lenient", lenient.url)])
        result = run(cfg, show_progress=False)
        assert strict.request_count == lenient.request_count == 2 * 3 * 2  # every judgement, by each judge
    s = summary_json(result)
    terse, verbose = s["models"]["m-terse"]["judge"], s["models"]["m-verbose"]["judge"]
    # each judge's own ratio, interval and position consistency stay visible
    assert terse["panel"]["strict"]["ratio_mean"] == pytest.approx(7 / 8)
    assert terse["panel"]["lenient"]["ratio_mean"] == pytest.approx(6 / 8)
    assert verbose["panel"]["strict"]["ratio_mean"] == pytest.approx(5 / 8)
    assert verbose["panel"]["lenient"]["ratio_mean"] == pytest.approx(7 / 8)
    assert terse["panel"]["strict"]["ratio_ci95"] is not None and terse["panel"]["strict"]["position_consistency"] == 1
    assert "panel" not in terse["panel"]["strict"]
    # the headline: the judges' scores averaged per judgement, then the ratio
    assert terse["ratio_mean"] == pytest.approx(6.5 / 8) and verbose["ratio_mean"] == pytest.approx(6 / 8)
    assert terse["candidate_score_mean"] == pytest.approx(6.5) and terse["reference_score_mean"] == pytest.approx(8)
    assert terse["n"] == 3 and terse["requests_sent"] == 2 * 3 * 2 and terse["requests_reused"] == 0
    assert terse["position_consistency"] == 1.0
    assert s["models"]["m-terse"]["fields"]["judge.ratio_mean"]["value"] == pytest.approx(6.5 / 8)
    status = s["judge_status"]
    assert status["judges"] == ["strict", "lenient"] and status["judge_model"] == "strict, lenient"
    agreement = status["agreement"]
    assert agreement["n"] == 6 and agreement["n_items"] == 3
    (pair,) = agreement["pairs"]
    assert (pair["a"], pair["b"], pair["n"]) == ("strict", "lenient", 6)
    assert pair["spearman"] == pytest.approx(2 / math.sqrt(17 * 16.5))  # 0.119
    assert agreement["krippendorff_alpha"] == pytest.approx(2 / 13)  # 0.154
    lo, hi = agreement["krippendorff_alpha_ci95"]
    assert lo <= hi and "cluster bootstrap over screenshots" in agreement["krippendorff_alpha_method"]
    assert pair["ranking_kendall_tau"] == -1.0 and agreement["same_ranking"] is False
    assert agreement["ranking"] == {"strict": ["m-terse", "m-verbose"], "lenient": ["m-verbose", "m-terse"]}
    (finding,) = [f for f in s["findings"] if f["kind"] == "judges_disagree"]
    assert finding["evidence"]["models"] == ["m-terse", "m-verbose"]
    assert finding["evidence"]["judges_reversing"] == ["lenient"]
    # every judge's answers are stored, each under its judge
    with open_store(result.run_dir) as store:
        by_judge = {}
        for r in store.judgements():
            by_judge[r["judge"]] = by_judge.get(r["judge"], 0) + 1
    assert by_judge == {"strict": 12, "lenient": 12}
    csv_text = (result.report_dir / "judgements.csv").read_text(encoding="utf-8")
    assert csv_text.splitlines()[0].endswith(",judge") and csv_text.count("\n") == 1 + 24
    # the gallery shows each judge's verdicts under its answer: both orders by both judges, 4 per generation
    html = (result.report_dir / "index.html").read_text(encoding="utf-8")
    assert html.count("<summary>strict · judge") == html.count("<summary>lenient · judge") == 12


def test_a_panel_of_one_is_the_single_judge(tmp_path: Path) -> None:
    summaries = []
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=judge(False)) as strict:
        for panel in (False, True):
            cfg = make_config(tmp_path / str(panel), cand.url, [judge_spec("strict", strict.url)], panel=panel)
            s = summary_json(run(cfg, show_progress=False))
            summaries.append(s)
    single, one = summaries

    def judged(s: dict[str, Any]) -> dict[str, Any]:  # what the judge made (latencies differ between two runs)
        return {"status": s["judge_status"], "pairwise": s["pairwise"]["judge.ratio"],
                "models": {m: (v["judge"], v["fields"]["judge.ratio_mean"]) for m, v in s["models"].items()}}

    assert judged(single) == judged(one)
    assert "panel" not in single["models"]["m-terse"]["judge"]
    assert "agreement" not in single["judge_status"] and "judges" not in single["judge_status"]
    assert not [f for f in single["findings"] if f["kind"] == "judges_disagree"]


def test_panel_settings_that_cannot_work(tmp_path: Path) -> None:
    spec = judge_spec("strict", "http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match=r"judge\.model and judge\.panel are both set"):
        config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                          "judge": {"model": spec, "panel": [spec]}})
    with pytest.raises(ConfigError, match="judge name 'strict' is used twice"):
        config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                          "judge": {"panel": [spec, spec]}})
    with pytest.raises(ConfigError, match=r"judge\.panel\.1\.temperature"):
        config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                          "judge": {"panel": [spec, {**spec, "name": "other", "temperature": "hot"}]}})
    from vlmpipe.stages.judge.run import judge_setup

    same = config_from_dict({"dataset": {"path": str(tmp_path)}, "models": [{"name": "m"}],
                             "judge": {"enabled": True, "panel": [spec, {**spec, "name": "copy"}]}})
    with pytest.raises(ConfigError, match="'copy' and 'strict' are the same judge"):
        judge_setup(same)


def test_a_panel_grades_vqa_answers_too(tmp_path: Path) -> None:
    """The graded judge (task vqa): judge "six" gives every answer 6, judge "eight" 8; the panel's ratio is the mean
    of their ratios (0.6 and 0.8). Four judgements, each (0.6, 0.8): Spearman is undefined (no variation), and
    alpha = 1 − (n − 1)·D_o / D_e with n = 8 values: D_o = 4 · 2 · 0.2² = 0.32, D_e = 2 (8 · 4 − 5.6²) = 1.28,
    α = 1 − 7 · 0.32 / 1.28 = −0.75 (the judges disagree systematically)."""
    from reliability_helpers import make_images, model, write_manifest

    data = tmp_path / "data"
    make_images(data, 2)
    write_manifest(data, [{"image": f"shot_{i}.png", "question": f"Вопрос {i}?", "reference": f"Ответ {i}."}
                          for i in range(2)])

    def grade(score: int):
        return lambda _body: json.dumps({"explanation": "", "score": score})

    with FakeOpenAIServer() as gen, FakeOpenAIServer(responder=grade(6)) as six, \
            FakeOpenAIServer(responder=grade(8)) as eight:
        cfg = config_from_dict({
            "name": "vqa-panel", "task": "vqa", "output_dir": str(tmp_path / "runs"),
            "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
            "models": [model("qwen", gen.url)], "repeats": 2, "metrics": {"enabled": []},
            "judge": {"enabled": True, "panel": [model("six", six.url, model="j6", temperature=0.0),
                                                 model("eight", eight.url, model="j8", temperature=0.0)]},
        }, base_dir=tmp_path)
        s = summary_json(run(cfg, show_progress=False))
        # the stand-in model answers both repeats alike: each judge grades each question once, and reuses it
        assert six.request_count == eight.request_count == 2
    j = s["models"]["qwen"]["judge"]
    assert j["panel"]["six"]["ratio_mean"] == pytest.approx(0.6) and j["panel"]["eight"]["ratio_mean"] == 0.8
    assert j["ratio_mean"] == pytest.approx(0.7) and j["n"] == 4
    assert j["requests_sent"] == 4 and j["requests_reused"] == 4
    agreement = s["judge_status"]["agreement"]
    assert agreement["n"] == 4 and agreement["pairs"][0]["spearman"] is None
    assert agreement["krippendorff_alpha"] == pytest.approx(-0.75)
