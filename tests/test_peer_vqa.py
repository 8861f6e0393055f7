"""Importing the study's VQA results (../shared/peer-vqa) reproduces its numbers per model (its README's table):
the judge ratio, its naive ±, time, length and chars/s, the failed generations, the device slices, and the 2B
variants' refusals. Skips with a reason when ../shared/peer-vqa is absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from html_tables import tables
from vlmpipe.app.pipeline import score
from vlmpipe.stages.importers.original_vqa import import_original_vqa

# The study's README: judged, ratio = mean(Candidate_Score / 10), 1.96·sd/√n, mean time s, length, chars/s
PUBLISHED = {
    "Qwen2-VL-7B-Instruct": (158, 0.6937, 0.0372, 1.40, 144.70, 101.73),
    "Qwen2-VL-7B-Instruct-GPTQ-Int8": (158, 0.6791, 0.0382, 1.10, 138.31, 120.42),
    "Qwen2-VL-7B-Instruct-GPTQ-Int4": (158, 0.6722, 0.0375, 1.00, 151.58, 145.47),
    "Qwen2-VL-7B-Instruct-AWQ": (158, 0.6627, 0.0420, 1.04, 163.71, 148.24),
    "Qwen2-VL-2B-Instruct": (156, 0.5122, 0.0450, 3.43, 229.07, 78.91),
    "Qwen2-VL-2B-Instruct-GPTQ-Int8": (154, 0.4896, 0.0425, 3.19, 205.26, 70.69),
    "Qwen2-VL-2B-Instruct-AWQ": (153, 0.4876, 0.0469, 2.68, 203.43, 102.53),
    "Qwen2-VL-2B-Instruct-GPTQ-Int4": (150, 0.4400, 0.0449, 3.02, 170.71, 67.69),
}


@pytest.fixture(scope="module")
def vqa_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study's VQA results imported and scored: the run directory."""
    from conftest import PEER_VQA

    if not (PEER_VQA / "results" / "summary_test_stats.xlsx").is_file():
        pytest.skip(f"peer VQA data not found at {PEER_VQA} (it lives beside the checkout in ../shared/peer-vqa)")
    run_dir = import_original_vqa(PEER_VQA / "results", PEER_VQA / "images", tmp_path_factory.mktemp("vqa") / "run")
    cfg_path = run_dir / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["metrics"]["enabled"] = ["refusal", "language"]  # what this test checks; the rest is tested elsewhere
    cfg_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    result = score(run_dir, show_progress=False)
    assert result.exit_code == 1  # the 19 failed generations: completed with failed items
    return run_dir


@pytest.fixture(scope="module")
def vqa_summary(vqa_run: Path) -> dict:
    return json.loads((vqa_run / "report" / "summary.json").read_text(encoding="utf-8"))


def test_the_studys_vqa_numbers_are_reproduced(vqa_summary: dict) -> None:
    s = vqa_summary
    assert s["run"]["task"] == "vqa" and s["run"]["items"] == 158 and s["run"]["screenshots"] == 79
    assert s["judge_status"]["state"] == "recorded" and s["judge_status"]["kind"] == "graded"
    assert set(s["models"]) == set(PUBLISHED)
    for name, (judged, ratio, half, time_s, length, cps) in PUBLISHED.items():
        m = s["models"][name]
        j = m["judge"]
        assert j["n"] == judged and j["n_failed"] == 0, name
        assert j["ratio_mean"] == pytest.approx(ratio, abs=0.001), name
        lo, hi = j["ratio_ci95_naive"]
        assert (hi - lo) / 2 == pytest.approx(half, abs=0.002), name
        assert m["latency_s"]["mean"] == pytest.approx(time_s, abs=0.01), name
        assert m["length_chars_mean"] == pytest.approx(length, abs=0.01), name
        assert m["chars_per_s_mean"] == pytest.approx(cps, abs=0.01), name
        assert m["n"] == 158 and m["n_errors"] == 158 - judged, name  # an empty answer is a failed generation
        # intervals resample the 79 screenshots, not the 158 questions
        assert j["n_items"] == 79 and m["fields"]["judge.ratio_mean"]["n_items"] == 79
    assert sum(m["n_errors"] for m in s["models"].values()) == 19


def test_device_slices_add_up_to_each_model(vqa_summary: dict) -> None:
    device = vqa_summary["slices"]["device"]
    assert set(device) == {"pc", "phone"}
    for name, m in vqa_summary["models"].items():
        pc, phone = device["pc"][name], device["phone"][name]
        assert pc["n"] == 110 and phone["n"] == 48  # 55 desktop and 24 phone screenshots, two questions each
        assert pc["n"] + phone["n"] == m["n"]
        assert pc["judge"]["n"] + phone["judge"]["n"] == m["judge"]["n"]


def test_the_2b_variants_refusals_are_counted(vqa_summary: dict) -> None:
    # hand-counted in the study's answers: «Извините, но я не могу…», "Sorry, but I can't assist with that."...
    refusals = {"Qwen2-VL-2B-Instruct": 2, "Qwen2-VL-2B-Instruct-GPTQ-Int8": 4, "Qwen2-VL-2B-Instruct-GPTQ-Int4": 4,
                "Qwen2-VL-2B-Instruct-AWQ": 3}
    for name, m in vqa_summary["models"].items():
        answered = m["n"] - m["n_errors"]
        assert m["refusal_rate"] == pytest.approx(refusals.get(name, 0) / answered), name
    flagged = {f["evidence"]["model"] for f in vqa_summary["findings"] if f["kind"] == "refuses"}
    assert flagged == set(refusals)


def test_the_report_shows_each_question_its_grades_refusals_and_the_device_slices(vqa_run: Path,
                                                                                   vqa_summary: dict) -> None:
    html = (vqa_run / "report" / "index.html").read_text(encoding="utf-8")
    # one card per screenshot, one block per question: 233158.png carries the first two questions of QA_pc.xls
    card = html[html.index('data-item="pc/233158.png"'):]
    card = card[:card.index("</section>")]
    assert re.findall(r'data-entry="([^"]+)"', card) == ["233158.png#1", "233158.png#2"]
    assert "Куда нажать, чтобы оформить новую карту?" in card and "human answer" in card
    assert card.count("judge: grade") == 16  # each of the 8 models' answers to its 2 questions, graded
    # every refusal the metric counted is marked in the gallery
    refusals = sum(round(m["refusal_rate"] * (m["n"] - m["n_errors"])) for m in vqa_summary["models"].values())
    assert refusals == 13 and html.count('class="badge off refusal"') == refusals
    assert html.count("Sorry, but I can&#39;t assist with that.") >= 3
    # the slice table: one row per device and model, the judge ratio with its interval first
    (table,) = [t for t in tables(html) if t.attrs.get("id") == "slice-device-table"]
    header, *rows = table.rows
    assert header[:4] == ["device", "model", "judge ratio [95%]", "n"]
    phone_7b = next(r for r in rows if r[:2] == ["phone", "Qwen2-VL-7B-Instruct"])
    ratio = vqa_summary["slices"]["device"]["phone"]["Qwen2-VL-7B-Instruct"]["judge"]["ratio_mean"]
    assert phone_7b[2].startswith(f"{ratio:.3f} [") and phone_7b[3] == "48"
    assert len(rows) == 2 * 8
