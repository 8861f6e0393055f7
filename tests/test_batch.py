"""Batch engines (issue 16): ``vlmpipe batch export`` writes what a stage lacks as OpenAI batch requests (checked
against the ``openai`` SDK's own types), a stand-in engine answers the file, ``vlmpipe batch import`` stores the
answers — giving the same store as a live run, for generation, references and the judge —; results files with
unknown, repeated or already stored ids are refused whole; ``vlmpipe batch submit`` goes through the SDK against a
local stand-in of the files and batches endpoints, and a second call polls instead of submitting again."""

from __future__ import annotations

import json
import sqlite3
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from PIL import Image
from pydantic import TypeAdapter
from typer.testing import CliRunner

from batch_helpers import BatchAPI, answer_file, answer_line
from conftest import summary_json
from fakeserver import FakeOpenAIServer
from test_judge import BiasedJudge
from vlmpipe.app.cli import app
from vlmpipe.app.pipeline import run

ITEMS = ["card", "order", "refund"]
CANDIDATES = ["alpha", "beta"]
GEN_FIELDS = ("key", "model", "role", "item", "repeat", "text", "error", "error_kind", "prompt_tokens",
              "completion_tokens", "request_hash")
JUDGE_FIELDS = ("key", "generation_key", "model", "item", "repeat", "candidate_position", "signature",
                "reference_sha", "candidate_score", "reference_score", "explanation_candidate",
                "explanation_reference", "raw", "error", "error_kind", "attempts", "prompt_tokens",
                "completion_tokens", "cost_usd", "judge", "request_hash", "reused", "cost_saved_usd")


def candidate(body: dict[str, Any]) -> str:
    if body["model"] == "ref-model":
        return "Здравствуйте, REFERENCE от модели."
    return "Здравствуйте, GOOD ответ." if body["model"] == "alpha" else "Привет, BAD ответ."


def write_config(tmp_path: Path, name: str, cand_url: str, judge_url: str) -> Path:
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        for i, item in enumerate(ITEMS):
            Image.new("RGB", (30 + i, 20), (50 * i, 80, 120)).save(data / f"{item}.png")
        (data / "manifest.jsonl").write_text("".join(json.dumps({"id": i, "image": f"{i}.png"}) + "\n"
                                                     for i in ITEMS), encoding="utf-8")
    spec = {"base_url": cand_url, "max_retries": 0}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")},
        "models": [{"name": m, **spec} for m in CANDIDATES], "repeats": 2, "concurrency": 2,
        "metrics": {"enabled": ["letters"]},
        "references": {"source": "model", "model": {"name": "ref", "model": "ref-model", **spec}},
        "judge": {"enabled": True, "mode": "both", "prices": {"prompt": 1.0, "completion": 2.0},
                  "model": {"name": "judge", "model": "fake-judge", "base_url": judge_url, "stream": False,
                            "max_retries": 0, "temperature": 0.0}},
    }, allow_unicode=True), encoding="utf-8")
    return path


def rows(run_dir: Path, table: str, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        return sorted(conn.execute(f"SELECT {', '.join(fields)} FROM {table}").fetchall())


BODY = TypeAdapter(CompletionCreateParamsNonStreaming)
BODY_KEYS = set(typing.get_type_hints(CompletionCreateParamsNonStreaming))


def check_batch_file(path: Path) -> list[dict[str, Any]]:
    """Every line is an OpenAI batch request whose body the SDK's chat-completions types accept."""
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        assert set(line) == {"custom_id", "method", "url", "body"}
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert isinstance(line["custom_id"], str) and len(line["custom_id"]) <= 64
        assert set(line["body"]) <= BODY_KEYS, set(line["body"]) - BODY_KEYS
        BODY.validate_python(line["body"])
        assert line["body"]["stream"] is False and "stream_options" not in line["body"]
    assert len({x["custom_id"] for x in lines}) == len(lines)
    return lines


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, [*args], env={"COLUMNS": "200"})


def test_export_answer_import_gives_the_store_of_a_live_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=BiasedJudge()) as jdg:
        live = run(write_config(tmp_path, "live", cand.url, jdg.url), show_progress=False)
        live_judge_requests = jdg.request_count
        config = write_config(tmp_path, "batch", cand.url, jdg.url)
        sent_before = cand.request_count, jdg.request_count
        # the candidates: a batch holds one model's requests
        res = cli("batch", "export", str(config), "--stage", "generate", "--out", str(tmp_path / "g.jsonl"))
        assert res.exit_code == 2 and "export each with --model NAME" in " ".join(res.output.split())
        run_dir = runs / "batch"
        for model in CANDIDATES:
            out = tmp_path / f"g-{model}.jsonl"
            res = cli("batch", "export", str(run_dir), "--stage", "generate", "--model", model, "--out", str(out))
            assert res.exit_code == 0, res.output
            lines = check_batch_file(out)
            assert len(lines) == len(ITEMS) * 2 and {x["body"]["model"] for x in lines} == {model}
            assert all(x["custom_id"].startswith("g-") for x in lines)
            answer_file(out, tmp_path / f"g-{model}-results.jsonl", cand.url)
            res = cli("batch", "import", str(run_dir), str(tmp_path / f"g-{model}-results.jsonl"), "-q")
            assert res.exit_code == 0, res.output
        # nothing was sent by vlmpipe itself: only the stand-in engine's requests reached the servers
        assert cand.request_count - sent_before[0] == len(CANDIDATES) * len(ITEMS) * 2
        # the reference model, then the judge
        for stage, url in (("references", cand.url), ("judge", jdg.url)):
            out = tmp_path / f"{stage}.jsonl"
            res = cli("batch", "export", str(run_dir), "--stage", stage, "--out", str(out))
            assert res.exit_code == 0, res.output
            lines = check_batch_file(out)
            answer_file(out, tmp_path / f"{stage}-results.jsonl", url)
            res = cli("batch", "import", str(run_dir), str(tmp_path / f"{stage}-results.jsonl"), "-q")
            assert res.exit_code == 0, res.output
        # the judge's file has one request per distinct body (dedupe at temperature 0), as the live run sent
        assert len(lines) == jdg.request_count - sent_before[1] == live_judge_requests
        res = cli("batch", "export", str(run_dir), "--stage", "judge", "--out", str(tmp_path / "again.jsonl"))
        assert res.exit_code == 0 and (tmp_path / "again.jsonl").read_text() == ""  # nothing is missing
    live_dir = live.run_dir
    assert rows(run_dir, "generations", GEN_FIELDS) == rows(live_dir, "generations", GEN_FIELDS)
    assert rows(run_dir, "judgements", JUDGE_FIELDS) == rows(live_dir, "judgements", JUDGE_FIELDS)
    assert rows(run_dir, "items", ("id", "reference")) == rows(live_dir, "items", ("id", "reference"))
    # batch timings are not latencies: none is stored, and the speed statistics say why
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        assert set(conn.execute("SELECT source, latency_s FROM generations").fetchall()) == {("batch", None)}
        assert {r[0] for r in conn.execute("SELECT latency_s FROM judgements")} == {None}
    s, s_live = (json.loads((d / "report" / "summary.json").read_text()) for d in (run_dir, live_dir))
    for model in CANDIDATES:
        assert s["models"][model]["judge"] == s_live["models"][model]["judge"]
        assert s["models"][model]["latency_s"] is None and s["models"][model]["chars_per_s_mean"] is None
        assert "came from a batch engine's results file" in s["models"][model]["unavailable"]["latency_s"]
    assert s["judge_status"]["cost_usd"] == pytest.approx(s_live["judge_status"]["cost_usd"])


def _generated(tmp_path: Path, cand_url: str) -> Path:
    with FakeOpenAIServer(responder=BiasedJudge()) as jdg:
        config = write_config(tmp_path, "r", cand_url, jdg.url)
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["judge"]["enabled"] = False
        config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        run(config, show_progress=False)
    run_dir = tmp_path / "runs" / "r"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    saved["judge"]["enabled"] = True
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, allow_unicode=True), encoding="utf-8")
    return run_dir


def test_results_files_that_cannot_be_used_are_refused_whole(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=BiasedJudge()) as jdg:
        run_dir = _generated(tmp_path, cand.url)
        out = tmp_path / "j.jsonl"
        assert cli("batch", "export", str(run_dir), "--stage", "judge", "--out", str(out)).exit_code == 0
        results = tmp_path / "results.jsonl"
        n = answer_file(out, results, jdg.url)
        good = results.read_text(encoding="utf-8").splitlines()

        def refused(lines: list[str], why: str) -> None:
            bad = tmp_path / "bad.jsonl"
            bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
            before = rows(run_dir, "judgements", ("key",))
            res = cli("batch", "import", str(run_dir), str(bad))
            assert res.exit_code == 2, res.output
            assert why in " ".join(res.output.split()), res.output
            assert "Nothing was stored" in " ".join(res.output.split()) or "line" in res.output
            assert rows(run_dir, "judgements", ("key",)) == before

        unknown = json.loads(good[0]) | {"custom_id": "j-0123456789abcdef0123456789abcdef"}
        refused([*good, json.dumps(unknown)], "1 custom_id(s) are not requests of this run's judge stage: j-0123")
        refused([*good, good[1]], "1 custom_id(s) appear more than once")
        refused([good[0], "{not json"], "line 2 is not JSON")
        refused([json.dumps({"custom_id": "x-1", "response": None, "error": None})], "are not vlmpipe requests")
        # an error line and an HTTP error become error rows (exit 1), and the next export asks for them again
        lines = [json.loads(x) for x in good]
        lines[0] = {"id": "b0", "custom_id": lines[0]["custom_id"], "response": None,
                    "error": {"code": "batch_expired", "message": "This request could not be executed"}}
        lines[1] = answer_line(1, lines[1]["custom_id"], 500, {"error": {"message": "overloaded"}})
        results.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        res = cli("batch", "import", str(run_dir), str(results))
        assert res.exit_code == 1, res.output
        with sqlite3.connect(run_dir / "run.sqlite") as conn:
            kinds = {r[0] for r in conn.execute("SELECT error_kind FROM judgements WHERE error IS NOT NULL")}
        assert kinds == {"batch_error", "http_500"}
        # the same file again: its answered ids are stored now
        refused(good, "are already stored")
        retry = tmp_path / "retry.jsonl"
        assert cli("batch", "export", str(run_dir), "--stage", "judge", "--out", str(retry)).exit_code == 0
        assert sorted(json.loads(x)["custom_id"] for x in retry.read_text().splitlines()) == sorted(
            x["custom_id"] for x in lines[:2])
        answer_file(retry, results, jdg.url)
        assert cli("batch", "import", str(run_dir), str(results)).exit_code == 0
    assert n == len(good)
    s = json.loads((run_dir / "report" / "summary.json").read_text())
    assert all(s["models"][m]["judge"]["n_failed"] == 0 for m in CANDIDATES)


def test_a_malformed_batch_answer_is_asked_again_until_max_attempts(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=BiasedJudge()) as jdg:
        run_dir = _generated(tmp_path, cand.url)
        out, results = tmp_path / "j.jsonl", tmp_path / "r.jsonl"
        malformed = {"choices": [{"message": {"role": "assistant", "content": "no numbers"}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 3}}
        target = ""

        def unreadable(line: dict[str, Any]) -> dict[str, Any] | None:
            return answer_line(0, line["custom_id"], 200, malformed) if line["custom_id"] == target else None

        for attempt in (1, 2, 3):
            assert cli("batch", "export", str(run_dir), "--stage", "judge", "--out", str(out)).exit_code == 0
            lines = out.read_text().splitlines()
            if attempt > 1:  # only the malformed one is still missing
                assert [json.loads(x)["custom_id"] for x in lines] == [target]
            target = json.loads(lines[0])["custom_id"]
            answer_file(out, results, jdg.url, unreadable)
            res = cli("batch", "import", str(run_dir), str(results), "-q")
            assert res.exit_code == 1
        with sqlite3.connect(run_dir / "run.sqlite") as conn:
            attempts, kind, tokens = conn.execute(
                "SELECT attempts, error_kind, prompt_tokens FROM judgements WHERE request_hash = ? AND reused = 0",
                (target.removeprefix("j-"),)).fetchone()
        # three answers (max_attempts 3), their usage summed: now a final failure, not exported again
        assert (attempts, kind, tokens) == (3, "malformed", 30)
        assert cli("batch", "export", str(run_dir), "--stage", "judge", "--out", str(out)).exit_code == 0
        assert out.read_text() == ""


def test_submit_through_the_sdk_polls_instead_of_submitting_again(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=candidate) as cand, FakeOpenAIServer(responder=BiasedJudge()) as jdg:
        run_dir = _generated(tmp_path, cand.url)

        def answer(body: dict[str, Any]) -> dict[str, Any]:
            return httpx.post(f"{jdg.url}/chat/completions", json=body, timeout=30).json()

        with BatchAPI(answer, polls_to_complete=3) as api:
            saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
            saved["judge"]["model"]["base_url"] = api.url
            (run_dir / "config.yaml").write_text(yaml.safe_dump(saved, allow_unicode=True), encoding="utf-8")
            res = cli("batch", "submit", str(run_dir), "--stage", "judge", "--no-wait", "-q")
            assert res.exit_code == 0, res.output
            assert "submitted batch_1" in res.output and "run `vlmpipe batch submit` again" in res.output
            assert api.count("POST", "/v1/files") == 1 and api.count("POST", "/v1/batches") == 1
            res = cli("batch", "submit", str(run_dir), "--stage", "judge", "--poll-interval", "0", "-q")
            assert res.exit_code == 0, res.output
            # the second call polled the stored batch: nothing was uploaded or created again
            assert api.count("POST", "/v1/files") == 1 and api.count("POST", "/v1/batches") == 1
            assert api.count("GET", "/v1/batches/batch_1") == 3
            assert "batch_1 completed" in res.output
            res = cli("batch", "submit", str(run_dir), "--stage", "judge", "-q")
            assert res.exit_code == 0 and "nothing is missing" in res.output
            assert api.count("POST", "/v1/batches") == 1
        n_requests = json.loads(api.files["file-1"].decode().splitlines()[0])  # the uploaded file is a batch file
        assert n_requests["url"] == "/v1/chat/completions"
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        assert conn.execute("SELECT id, status, imported_at IS NOT NULL FROM batches").fetchall() == [
            ("batch_1", "completed", 1)]
    s = summary_json(type("R", (), {"report_dir": run_dir / "report"})())
    assert s["models"]["alpha"]["judge"]["ratio_mean"] == pytest.approx(8 / 9)
    assert s["models"]["alpha"]["judge"]["n"] == len(ITEMS) * 2
