"""Server faults: every request ends as a result or a recorded error with its kind, the run finishes, the error
rate per model is in summary.json, a dead server fails only its model, and concurrency follows 429s."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import InFlightCounter, image_digest, image_responder, make_images, model, write_config
from vlmpipe.app.pipeline import run
from vlmpipe.core.limiter import AdaptiveLimiter
from vlmpipe.stages import generate as generate_mod

# (behaviour on every attempt, or on the first attempt only) -> what the stored row must say
FAULTS: list[tuple[str, Behavior, bool, str | None]] = [
    ("ok", Behavior(), False, None),
    ("500", Behavior("status", status=500), False, "http_500"),
    ("429-then-ok", Behavior("status", status=429, retry_after=0.05), True, None),
    ("429-always", Behavior("status", status=429), False, "http_429"),
    ("close", Behavior("close"), False, "connection"),
    ("stall", Behavior("stall", stall_s=20), False, "timeout"),
    ("truncated-abrupt", Behavior("truncated"), False, "connection"),
    ("truncated-clean", Behavior("truncated", truncate_clean=True), False, "truncated"),
    ("malformed", Behavior("malformed"), False, "bad_response"),
    ("empty", Behavior("empty"), False, "empty"),
    ("refusal", Behavior("refusal"), False, "refusal"),
]


def _digest_of_file(path: Path) -> str:
    body = {"messages": [{"content": f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"}]}
    return image_digest(body)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_fault_ends_as_a_result_or_an_error_with_its_kind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = make_images(data, len(FAULTS))
    by_digest = {_digest_of_file(data / n): fault for n, fault in zip(names, FAULTS, strict=True)}
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def behaviour(index: int, body: dict[str, Any]) -> Behavior:
        _name, beh, first_only, _kind = by_digest[image_digest(body)]
        with lock:
            seen[_name] += 1
            attempt = seen[_name]
        return beh if (attempt == 1 or not first_only) else Behavior()

    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    with FakeOpenAIServer(responder=image_responder, behavior_fn=behaviour) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("flaky", srv.url, timeout_s=1.0), model("down", dead)],
                           concurrency=4)
        result = run(cfg, show_progress=False)
    assert result.exit_code == 1
    rows = list(csv_rows(result.report_dir / "generations.csv"))
    flaky = {r["item"]: r for r in rows if r["model"] == "flaky"}
    assert len(flaky) == len(FAULTS)
    for (name, _beh, _first, kind), file in zip(FAULTS, names, strict=True):
        row = flaky[file.removesuffix(".png")]
        if kind is None:
            assert row["error"] == "" and row["text"].startswith("Здравствуйте"), (name, row)
        else:
            assert row["error_kind"] == kind and row["error"], (name, row)
    # retryable faults were retried once (max_retries 1), the others were not
    assert seen["500"] == seen["429-always"] == seen["close"] == seen["truncated-abrupt"] == 2
    assert seen["429-then-ok"] == 2 and seen["stall"] == seen["refusal"] == seen["empty"] == 1
    summary = json.loads((result.report_dir / "summary.json").read_text())
    f = summary["models"]["flaky"]
    n_failed = sum(1 for *_x, kind in FAULTS if kind)
    assert (f["n"], f["n_errors"]) == (len(FAULTS), n_failed)
    assert f["error_rate"] == pytest.approx(n_failed / len(FAULTS))
    assert f["errors_by_kind"] == dict(Counter(kind for *_x, kind in FAULTS if kind))
    assert f["failed"] is None
    # the dead server's model is reported as failed; it did not stop the other model
    d = summary["models"]["down"]
    assert (d["n"], d["n_errors"], d["error_rate"]) == (len(FAULTS), len(FAULTS), 1.0)
    assert d["errors_by_kind"] == {"connection": len(FAULTS)}
    assert "failed 5 requests in a row and none succeeded" in d["failed"]
    assert [f["model"] for f in (x["evidence"] for x in summary["findings"] if x["kind"] == "server_down")] == ["down"]
    # and the workbook's summary sheet shows the error rate of each model
    ws = load_workbook(result.report_dir / "results.xlsx")["summary"]
    header = [c.value for c in ws[1]]
    rates = {row[0]: row[header.index("error_rate")] for row in ws.iter_rows(min_row=2, values_only=True)}
    assert rates == {"flaky": pytest.approx(n_failed / len(FAULTS)), "down": 1.0}


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_concurrency_halves_on_429_and_grows_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server counts requests in flight; a burst of 429s brings it from 8 down to at most 4, and it climbs
    back to 8 after enough successes (one more per GROW_AFTER successes in a row). 150 requests and the 4 retried
    after a 429: the first 8 and the last 8 are answered once 8 are in flight, so the client's 8 show either way."""
    counter = InFlightCounter(monkeypatch, burst=range(24, 28), hold=lambda i: i < 8 or i >= 154 - 8, level=8)
    monkeypatch.setattr(generate_mod, "GROW_AFTER", 10)
    data = tmp_path / "data"
    make_images(data, 150)
    with FakeOpenAIServer(responder=image_responder, behavior_fn=counter.behaviour) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url, max_retries=3)], concurrency=8)
        result = run(cfg, show_progress=False)
    assert result.exit_code == 0  # every 429 was retried into a success
    starts = counter.sorted_starts()
    assert len(starts) == 154
    before = max(n for i, n in starts if i < 24)
    burst_end = 28
    # the next 10 arrivals (fewer than GROW_AFTER successes can have finished since the last 429)
    after = [n for i, n in starts if burst_end <= i < burst_end + 10]
    tail = max(n for _i, n in starts[-30:])
    summary = json.loads((result.report_dir / "summary.json").read_text())["models"]["m"]
    assert before == 8, starts
    assert max(after) <= 4, starts
    assert tail == 8, starts
    assert summary["concurrency_min"] <= 4 and summary["rate_limit_backoffs"] >= 1


async def test_limiter_halves_once_per_burst_never_below_one_and_recovers() -> None:
    lim = AdaptiveLimiter(8, grow_after=2)

    async def outcome(kind: str) -> None:
        async with lim.slot() as slot:
            slot.outcome = kind

    # four 429s from requests that were all sent under the same limit halve it once
    slots = [lim.slot() for _ in range(4)]
    entered = [await s.__aenter__() for s in slots]
    for s, slot in zip(slots, entered, strict=True):
        slot.outcome = "http_429"
        await s.__aexit__(None, None, None)
    assert lim.limit == 4 and lim.backoffs == 1
    for expected in (2, 1, 1):
        await outcome("http_429")
        assert lim.limit == expected
    assert lim.min_limit == 1
    await outcome("http_500")  # other errors neither shrink nor grow it
    assert lim.limit == 1
    for _ in range(4):
        await outcome("ok")
    assert lim.limit == 3
    for _ in range(20):
        await outcome("ok")
    assert lim.limit == 8  # never above the configured concurrency


async def test_limiter_never_admits_more_than_its_limit() -> None:
    lim = AdaptiveLimiter(3)
    peak = 0

    async def work() -> None:
        nonlocal peak
        async with lim.slot() as slot:
            peak = max(peak, lim.in_flight)
            await asyncio.sleep(0.001)
            slot.outcome = "ok"

    await asyncio.gather(*(work() for _ in range(30)))
    assert peak == 3 and lim.in_flight == 0


def test_digest_helper_matches_what_the_provider_sends(tmp_path: Path) -> None:
    (name,) = make_images(tmp_path, 1)
    data = (tmp_path / name).read_bytes()
    expected = hashlib.sha256(base64.b64encode(data)).hexdigest()[:10]
    assert _digest_of_file(tmp_path / name) == expected
