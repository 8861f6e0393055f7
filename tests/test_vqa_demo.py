"""The VQA demo (``vlmpipe demo`` runs it after the screen-annotation demo): the bundled screenshots with
hand-written questions, some unanswerable, answered by the OCR baseline and scored against the human answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmpipe.app.demo import demo_dir


@pytest.mark.model
def test_the_vqa_demo_writes_a_vqa_summary(demo_cli: tuple[int, str, Path]) -> None:
    exit_code, output, out = demo_cli
    assert exit_code == 0, output
    assert "run demo-vqa: 18 items" in output and str(out / "demo-vqa" / "report" / "index.html") in output
    s = json.loads((out / "demo-vqa" / "report" / "summary.json").read_text(encoding="utf-8"))
    assert s["run"]["task"] == "vqa" and s["run"]["screenshots"] == 8 and s["run"]["items"] == 18
    m = s["models"]["ocr-baseline"]
    assert m["n"] == 18 and m["n_errors"] == 0
    manifest = [json.loads(line) for line in (demo_dir() / "data" / "vqa.jsonl").read_text().splitlines()]
    unanswerable = sum(row.get("answerable") is False for row in manifest)
    assert unanswerable == 8  # one per screenshot
    # the OCR baseline reads the screen and never says that the screenshot does not show the answer
    assert m["fields"]["unanswerable_invented_rate"]["n"] == unanswerable and m["unanswerable_invented_rate"] == 1.0
    assert any(f["kind"] == "invents_answers" and f["evidence"]["model"] == "ocr-baseline" for f in s["findings"])
    device = s["slices"]["device"]
    assert device["phone"]["ocr-baseline"]["n"] + device["desktop"]["ocr-baseline"]["n"] == 18
    html = (out / "demo-vqa" / "report" / "index.html").read_text(encoding="utf-8")
    assert "18 questions about 8 screenshots × 1 repeat." in html  # not "1 repeats"
