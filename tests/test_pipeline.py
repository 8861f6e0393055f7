"""End to end: the demo, and a run against a local OpenAI-compatible server."""

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

import vlmpipe
from conftest import summary_json
from fakeserver import FakeOpenAIServer
from vlmpipe.core.config import config_from_dict
from vlmpipe.metrics.perplexity import PerplexitySettings, scorer_identity


def test_demo_runs_offline_and_writes_the_contract(demo_cli: tuple[int, str, Path]) -> None:
    exit_code, output, out = demo_cli
    assert exit_code == 0, output
    report = out / "demo" / "report"
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert summary["schema"] == 1
    assert summary["run"]["name"] == "demo" and summary["run"]["items"] >= 8 and summary["run"]["repeats"] == 1
    m = summary["models"]["ocr-baseline"]
    assert m["role"] == "candidate" and m["n"] == summary["run"]["items"] and m["n_errors"] == 0
    assert set(m["latency_s"]) == {"mean", "p50", "p95", "max"} and m["latency_s"]["p50"] > 0
    assert m["length_chars_mean"] > 50 and m["chars_per_s_mean"] > 0
    assert m["ttft_s"] is None and "ttft_s" in m["unavailable"]
    # perplexity under the offline default scorer, named; or null with the reason it could not run (its value where
    # the set-up installed the scorer: test_demo_reports_perplexity_under_the_default_scorer)
    runtime = scorer_identity(PerplexitySettings()).split(":")[0]  # hf (torch) if installed, else llama_cpp
    assert m["perplexity_scorer"] == f"{runtime}:gemma-3-270m-q4_k_m.gguf"
    if m["perplexity_mean"] is None:
        assert m["unavailable"]["perplexity_mean"].startswith("perplexity: ")
    with (report / "generations.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:9] == ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s",
                                 "length_chars", "chars_per_s"]
    assert len(rows) == m["n"]
    assert any("02632305-0222" in r["text"] for r in rows)  # the OCR read the cancelled order's number
    assert "run demo: 8 items × 1 repeat," in output  # one repeat, not "1 repeats"
    # no judge configured: the demo says which environment variables give it one
    assert "judge: the LLM judge is not configured." in output and "export VLMPIPE_JUDGE_BASE_URL and " \
        "VLMPIPE_JUDGE_MODEL" in " ".join(output.split())
    assert (report / "results.xlsx").stat().st_size > 1000
    assert (out / "demo" / "config.yaml").is_file()


@pytest.mark.needs("torch", "gguf")
def test_demo_reports_perplexity_under_the_default_scorer(demo_cli: tuple[int, str, Path]) -> None:
    """What `make demo` prints and reports with the scorer its set-up installs: Gemma 3 270M in torch."""
    exit_code, output, out = demo_cli
    assert exit_code == 0, output
    summary = json.loads((out / "demo" / "report" / "summary.json").read_text(encoding="utf-8"))
    m = summary["models"]["ocr-baseline"]
    assert m["perplexity_scorer"] == "hf:gemma-3-270m-q4_k_m.gguf"
    assert m["perplexity_mean"] == pytest.approx(34.41, abs=0.05), m["unavailable"].get("perplexity_mean")
    assert m["chrf_mean"] == pytest.approx(39.9, abs=0.05)  # the ranking's chrF


def test_run_against_a_server_with_a_broken_item(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    Image.new("RGB", (20, 20), "white").save(shots / "good.png")
    (shots / "broken.png").write_bytes(b"not really a png")
    answers = {"good": "Здравствуйте! Не проходит оплата заказа."}
    with FakeOpenAIServer(responder=lambda body: answers["good"]) as srv:
        cfg = config_from_dict({
            "name": "r", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(shots)},
            "models": [{"name": "fake", "base_url": srv.url, "model": "fake-vlm"}], "repeats": 2,
        })
        result = vlmpipe.run(cfg, show_progress=False)
        assert srv.request_count == 2  # only the good image is sent, twice
    assert result.exit_code == 1  # completed, with a failed item
    m = summary_json(result)["models"]["fake"]
    assert (m["n"], m["n_errors"], m["errors_by_kind"]) == (4, 2, {"image": 2})
    assert summary_json(result)["run"]["items_failed"] == 1
    assert m["length_chars_mean"] == len(answers["good"])
    assert m["ttft_s"] is not None
    # a second run re-requests only the failed rows (still failing) and nothing finished
    with FakeOpenAIServer(responder=lambda body: "x") as srv2:
        cfg.models[0].base_url = srv2.url  # same key: base_url is not part of what produced the text
        again = vlmpipe.run(cfg, show_progress=False)
        assert srv2.request_count == 0
    assert summary_json(again)["models"]["fake"]["length_chars_mean"] == len(answers["good"])
