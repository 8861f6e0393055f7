"""Secrets: a sentinel API key given through the environment reaches no file of the run and no console output,
even when servers reject it or echo it back in error bodies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import file_digest, image_digest, image_responder, make_images, model, write_config
from vlmpipe.core.redact import redact

ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "sk-SENTINEL-8c1f0e2d9b7a4c3e"


def test_sentinel_key_is_in_no_file_and_no_console_output(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = make_images(data, 3)
    echo: FakeOpenAIServer
    role = {file_digest(data / n): i for i, n in enumerate(names)}  # what the server does with each screenshot

    def echo_headers(index: int, body: dict[str, Any]) -> Behavior:
        auth = echo.headers[index].get("authorization", "")
        if role[image_digest(body)] == 0:  # a proxy echoing the headers in a 500; the 300-char cut falls in the key
            return Behavior("status", status=500, text="x" * 254 + f" headers: {{'Authorization': '{auth}'}}")
        if role[image_digest(body)] == 1:  # and one that repeats the bare key
            return Behavior("status", status=400, text=f"invalid key {auth.removeprefix('Bearer ')} for this org")
        return Behavior()

    with FakeOpenAIServer(responder=image_responder, api_key="a-different-key") as wrong, \
            FakeOpenAIServer(responder=image_responder, behavior_fn=echo_headers) as echo:
        models = [model("rejected", wrong.url, api_key_env="VLMPIPE_TEST_KEY"),
                  model("echoed", echo.url, api_key_env="VLMPIPE_TEST_KEY")]
        cfg = write_config(tmp_path / "c.yaml", data, models)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), VLMPIPE_TEST_KEY=SENTINEL)
        proc = subprocess.run([sys.executable, "-m", "vlmpipe.app.cli", "run", str(cfg)], env=env, capture_output=True,
                              text=True, timeout=120)
        sent = [h.get("authorization") for h in wrong.headers + echo.headers]
    assert proc.returncode == 1, proc.stderr
    assert sent and all(h == f"Bearer {SENTINEL}" for h in sent)  # the key was really used
    run_dir = tmp_path / "runs" / "r"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"run.sqlite", "config.yaml", "run.log", "summary.json", "generations.csv", "results.xlsx"} <= {
        p.name for p in files}
    for path in files:
        assert SENTINEL[:10].encode() not in path.read_bytes(), path  # not even the part before a cut
    assert SENTINEL[:10] not in proc.stdout + proc.stderr
    assert "VLMPIPE_TEST_KEY" in (run_dir / "config.yaml").read_text()  # the variable's name, not its value
    log = (run_dir / "logs" / "run.log").read_text(encoding="utf-8")
    assert "model rejected: 3 of 3 generations failed (http_401: 3)" in log
    assert "model echoed: 2 of 3 generations failed" in log and "***" in log  # the echoed key, masked
    errors = (run_dir / "report" / "generations.csv").read_text(encoding="utf-8")
    assert "HTTP 401: Incorrect API key provided." in errors
    assert "'Authorization': 'Bearer ***'" in errors and "invalid key *** for this org" in errors


def test_redact_masks_authorization_headers_bearer_tokens_and_api_key_fields() -> None:
    assert redact("Authorization: Bearer abc.def-123") == "Authorization: Bearer ***"
    assert redact('{"authorization": "Basic dXNlcjpwYXNz"}') == '{"authorization": "Basic ***"}'
    assert redact("sent bearer tok_0123456789 upstream") == "sent bearer *** upstream"
    assert redact("x-api-key=abcd1234; next") == "x-api-key=***; next"
    assert redact(f"key {SENTINEL}.", [SENTINEL]) == "key ***."
    assert redact("nothing secret here: Bearer") == "nothing secret here: Bearer"
