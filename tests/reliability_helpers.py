"""Shared pieces of the reliability tests: small datasets, configs pointing at local fake servers."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

DATA_URL_RE = re.compile(r"data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)")


def make_images(folder: Path, n: int, prefix: str = "shot") -> list[str]:
    """``n`` small distinct PNG screenshots; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"{prefix}_{i}.png"
        Image.new("RGB", (24, 16), (40 * i % 256, 80, 200 - 10 * i)).save(folder / name, format="PNG")
        names.append(name)
    return names


def write_manifest(folder: Path, rows: list[dict[str, Any] | str], name: str = "manifest.jsonl") -> Path:
    path = folder / name
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def model(name: str, url: str, **over: Any) -> dict[str, Any]:
    """An OpenAI-compatible model spec with short timeouts and retries (tests stay fast)."""
    spec = {"name": name, "base_url": url, "model": "fake-vlm", "timeout_s": 5, "connect_timeout_s": 2,
            "max_retries": 1, "retry_backoff_s": 0.01, "max_retry_after_s": 0.2}
    spec.update(over)
    return spec


def write_config(path: Path, data_dir: Path, models: list[dict[str, Any]], **over: Any) -> Path:
    cfg: dict[str, Any] = {"name": "r", "output_dir": str(path.parent / "runs"), "dataset": {"path": str(data_dir)},
                           "models": models, "repeats": 1, "concurrency": 2, "metrics": {"enabled": []}}
    cfg.update(over)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def image_digest(body: dict[str, Any]) -> str:
    """A short hash of the image a chat request carries (its data URL, or the http URL itself)."""
    text = json.dumps(body.get("messages"), ensure_ascii=False)
    m = DATA_URL_RE.search(text)
    return hashlib.sha256((m.group(1) if m else text).encode()).hexdigest()[:10]


def image_responder(body: dict[str, Any]) -> str:
    """A deterministic answer per image (the same for every repeat), several words long."""
    d = image_digest(body)
    return f"Здравствуйте! Проблема с заказом {d[:4]}-{d[4:8]}, помогите разобраться, пожалуйста."


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height`` pixels with a tiny (invalid) body: a decompression bomb
    that costs nothing to create; only a decoder that trusts the header would allocate for it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def file_digest(path: Path) -> str:
    """:func:`image_digest` of the request that carries ``path`` (a plain PNG is sent as it is)."""
    url = f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"
    return image_digest({"messages": [{"content": url}]})


class InFlightCounter:
    """Counts the requests in flight at the fake server (patching its handler through ``monkeypatch``) and records,
    per request index, how many were in flight when it arrived; requests with an index in ``burst`` get a 429.

    Requests whose index ``hold`` accepts are answered in groups of ``level``: each waits (10 s at most) until
    ``level`` of them have arrived. How many requests the client keeps in flight then shows at the server whatever
    the machine's speed, instead of depending on answers being slow enough to overlap."""

    def __init__(self, monkeypatch: Any, burst: range, hold: Callable[[int], bool] = lambda _index: False,
                 level: int = 0) -> None:
        import fakeserver

        self.starts: list[tuple[int, int]] = []  # (request index, requests in flight when it arrived or was let go)
        self.in_flight = 0
        self.burst = burst
        self.hold = hold
        self.group = threading.Barrier(level) if level else None
        self.lock = threading.Lock()
        original = fakeserver._Handler.do_POST
        counter = self

        def counting_post(handler: Any) -> None:
            with counter.lock:
                counter.in_flight += 1
            try:
                original(handler)
            finally:
                with counter.lock:
                    counter.in_flight -= 1

        monkeypatch.setattr(fakeserver._Handler, "do_POST", counting_post)

    def behaviour(self, index: int, body: dict[str, Any]) -> Any:
        from fakeserver import Behavior

        if self.group is not None and self.hold(index):
            with contextlib.suppress(threading.BrokenBarrierError):  # too few came: the counts will show it
                self.group.wait(timeout=10)
        with self.lock:
            self.starts.append((index, self.in_flight))
        return Behavior("status", status=429, retry_after=0.05) if index in self.burst else Behavior()

    def sorted_starts(self) -> list[tuple[int, int]]:
        return sorted(self.starts)


#: what the stand-in server does with a request it holds: nothing, until the server stops
HELD = {"kind": "stall", "stall_after_chunks": 0, "stall_s": 3600}


class KillOnRequest:
    """A fake-server ``behavior_fn`` that SIGKILLs the process under test when a chosen request arrives: the
    ``at``-th (1-based) request since :meth:`start` for which ``counts(body)`` is true. That request is held (never
    answered, like one in flight when a machine dies); every other request is answered normally. The kill point is an
    event, not a moment: it does not depend on how fast the machine runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[Any] | None = None
        self.at = 0
        self.seen = 0
        self.counts: Any = None

    def start(self, argv: list[str], at: int, counts: Any = None, **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` (``subprocess.Popen(argv, **popen)``), armed to be killed at its ``at``-th counted request."""
        with self.lock:  # a request arriving before Popen returns waits here for the pid
            self.at, self.seen, self.counts = at, 0, counts
            self.proc = subprocess.Popen(argv, **popen)
            return self.proc

    def __call__(self, index: int, body: dict[str, Any]) -> Any:
        from fakeserver import Behavior

        with self.lock:
            if self.proc is not None and (self.counts is None or self.counts(body)):
                self.seen += 1
                if self.seen == self.at:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc = None
                    return Behavior(**HELD)
        return Behavior()
