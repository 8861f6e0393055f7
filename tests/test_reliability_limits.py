"""Limits: a total run time cap stops generation cleanly, keeps and reports what finished, exits 1 with a clear
message, and a later run finishes only the rest.

The partial state does not depend on how fast this machine is: the stand-in server answers the first ``DONE``
requests at once and holds the next ones (one per request slot) until it stops, so when the cap passes exactly
``DONE`` generations are finished and ``CONCURRENCY`` are in flight."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import HELD, image_responder, make_images, model, write_config, write_manifest
from vlmpipe.app.cli import app

ITEMS, CONCURRENCY, DONE = 12, 2, 4


def hold_after(done: int) -> Callable[[int, dict[str, Any]], Behavior]:
    """Answer requests 0..done-1, hold the next CONCURRENCY (the run's slots) until the server stops, answer later
    ones (the next run's)."""

    def behaviour(index: int, _body: dict[str, Any]) -> Behavior:
        held = done <= index < done + CONCURRENCY
        return Behavior(**HELD) if held else Behavior()

    return behaviour


def test_max_time_stops_cleanly_and_the_next_run_finishes_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, ITEMS)
    with FakeOpenAIServer(responder=image_responder, behavior_fn=hold_after(DONE)) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)], concurrency=CONCURRENCY)
        first = CliRunner().invoke(app, ["run", str(cfg), "--quiet", "--max-time", "1.5"])
        sent_first = len(srv.requests)
        summary = json.loads((tmp_path / "runs" / "r" / "report" / "summary.json").read_text())
        second = CliRunner().invoke(app, ["run", str(cfg), "--quiet"])
        sent_total = len(srv.requests)
    assert first.exit_code == 1, first.output
    assert summary["models"]["m"]["n"] == DONE and summary["models"]["m"]["n_errors"] == 0
    message = " ".join(first.output.split())
    assert f"stopped: the run time limit of 1.5 s was reached; {DONE} of {ITEMS} generations are stored" in message
    assert summary["run"]["stopped"].startswith("stopped: the run time limit of 1.5 s")
    assert [f["text"] for f in summary["findings"] if f["kind"] == "stopped"] == [summary["run"]["stopped"]]
    assert (tmp_path / "runs" / "r" / "report" / "results.xlsx").is_file()
    # the second run sends only what was missing, the requests the cap cut off in flight included
    assert second.exit_code == 0, second.output
    final = json.loads((tmp_path / "runs" / "r" / "report" / "summary.json").read_text())
    assert final["models"]["m"]["n"] == ITEMS and final["run"]["stopped"] is None
    assert sent_first == DONE + CONCURRENCY and sent_total - sent_first == ITEMS - DONE


def test_max_run_time_in_the_config_is_validated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 1)
    cfg = write_config(tmp_path / "c.yaml", data, [model("m", "http://127.0.0.1:9/v1")], max_run_time_s=-1)
    result = CliRunner().invoke(app, ["run", str(cfg), "--quiet"])
    assert result.exit_code == 2 and "max_run_time_s: Input should be greater than 0" in result.stderr


def test_no_judge_spending_after_the_time_cap(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = make_images(data, ITEMS)
    write_manifest(data, [{"id": n.removesuffix(".png"), "image": n, "reference": "Здравствуйте."} for n in names])
    with FakeOpenAIServer(responder=image_responder, behavior_fn=hold_after(2)) as srv:  # generation never ends
        judge = {"enabled": True, "model": model("judge", srv.url, model="fake-judge", stream=False)}
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)], concurrency=CONCURRENCY, judge=judge,
                           dataset={"path": str(data), "manifest": str(data / "manifest.jsonl")})
        result = CliRunner().invoke(app, ["run", str(cfg), "--quiet", "--max-time", "1"])
        judge_requests = [b for b in srv.requests if b["model"] == "fake-judge"]
    assert result.exit_code == 1, result.output
    assert judge_requests == []
    assert "judge skipped: the run time limit was reached" in " ".join(result.output.split())
