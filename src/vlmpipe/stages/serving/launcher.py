"""Starting and stopping a model server: vLLM, or any command line that serves the OpenAI protocol.

The server runs in its own process group (its own session) on a free port, with stdout and stderr in
``runs/<name>/logs/<model>.log``. Readiness is ``GET health_path`` then ``GET models_path`` both answering 200,
polled until ``ready_timeout_s``; a server that exits first, or is not ready in time, fails with the tail of
its log. Stopping sends SIGTERM to the whole group (vLLM's engine and worker processes included), waits
``stop_timeout_s``, then SIGKILLs the group; only that group is ever signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from vlmpipe.core.config import LaunchSpec
from vlmpipe.providers.http import HttpModelSpec

log = logging.getLogger("vlmpipe.stages.serving.launcher")

TAIL_LINES = 25
TAIL_CHARS = 2000


class ServerLaunchError(RuntimeError):
    """The server could not be started or never became ready; the message ends with its log's tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a new server could listen on the port (no listener; TIME_WAIT connections do not count, as
    servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def safe_filename(name: str) -> str:
    """A model name as a log file name: no path separators, no dot-files."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"
    return cleaned[:120]


def served_model(spec: HttpModelSpec) -> str:
    launch = spec.launch
    return (launch.model if launch and launch.model else None) or spec.model_id


def _substitute(arg: str, values: dict[str, str]) -> str:
    # str.replace, not str.format: arguments may hold JSON braces ({"image": 1}).
    for key, value in values.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def build_command(spec: HttpModelSpec, port: int) -> list[str]:
    """The server's argv for a model spec with ``launch`` set."""
    launch = spec.launch
    if launch is None:
        raise ValueError(f"model {spec.name!r} has no launch settings")
    model = served_model(spec)
    values = {"port": str(port), "host": launch.host, "model": model, "served_model_name": spec.model_id}
    if launch.engine == "command":
        assert launch.command is not None
        return [_substitute(a, values) for a in launch.command] + [_substitute(a, values) for a in launch.args]
    argv = [launch.executable, "serve", model, "--host", launch.host, "--port", str(port)]
    if model != spec.model_id:
        argv += ["--served-model-name", spec.model_id]
    named: list[tuple[str, object]] = [
        ("--quantization", launch.quantization), ("--dtype", launch.dtype),
        ("--max-model-len", launch.max_model_len), ("--gpu-memory-utilization", launch.gpu_memory_utilization),
        ("--tensor-parallel-size", launch.tensor_parallel_size),
    ]
    for flag, value in named:
        if value is not None:
            argv += [flag, str(value)]
    if launch.limit_mm_per_prompt is not None:
        mm = launch.limit_mm_per_prompt
        argv += ["--limit-mm-per-prompt", mm if isinstance(mm, str) else json.dumps(mm, separators=(",", ":"))]
    if launch.enable_prefix_caching is not None:
        argv.append("--enable-prefix-caching" if launch.enable_prefix_caching else "--no-enable-prefix-caching")
    return argv + [_substitute(a, values) for a in launch.args]


def log_tail(path: Path, lines: int = TAIL_LINES, limit: int = TAIL_CHARS) -> str:
    """The last lines of a log file (at most ``limit`` characters), or a note when there is none."""
    try:
        data = path.read_bytes()[-64 * 1024:]
    except OSError:
        return "(no log)"
    text = "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:]).strip()
    if len(text) > limit:
        text = "…" + text[-limit:]
    return text or "(the log is empty)"


@dataclass
class LaunchedServer:
    spec: HttpModelSpec
    argv: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.time)
    ready_after_s: float | None = None
    ready_polls: int = 0  # readiness polls sent, the one that found the server ready included

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def root_url(self) -> str:
        host = self.spec.launch.host if self.spec.launch else "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        api = self.spec.launch.api_path if self.spec.launch else "/v1"
        return self.root_url + api

    def alive(self) -> bool:
        return self.process.poll() is None

    def info(self) -> dict[str, object]:
        return {"pid": self.pid, "port": self.port, "log": str(self.log_path), "command": shlex.join(self.argv),
                "ready_after_s": self.ready_after_s, "ready_polls": self.ready_polls,
                "exit_code": self.process.returncode}


def start_server(spec: HttpModelSpec, log_dir: Path) -> LaunchedServer:
    """Start the spec's server in its own process group; returns at once (see :func:`wait_ready`)."""
    launch: LaunchSpec | None = spec.launch
    if launch is None:
        raise ValueError(f"model {spec.name!r} has no launch settings")
    port = launch.port or free_port(launch.host if launch.host not in ("0.0.0.0", "") else "127.0.0.1")
    argv = build_command(spec, port)
    if shutil.which(argv[0]) is None:
        hint = " (install vLLM on the GPU machine: pip install vllm)" if launch.engine == "vllm" else ""
        raise ServerLaunchError(f"cannot start the server of {spec.name}: {argv[0]!r} not found{hint}")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{safe_filename(spec.name)}.log"
    env = {**os.environ, **launch.env}
    with log_path.open("ab") as fh:
        header = f"\n==== vlmpipe {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(argv)}"
        if launch.env:
            header += f"  (env: {', '.join(f'{k}={v}' for k, v in launch.env.items())})"
        fh.write((header + "\n").encode())
        fh.flush()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        except OSError as err:
            raise ServerLaunchError(f"cannot start the server of {spec.name}: {err}") from None
        fh.write(f"==== vlmpipe: pid {proc.pid} (process group {proc.pid}), port {port}\n".encode())
    log.info("started %s (pid %d, port %d): %s", spec.name, proc.pid, port, shlex.join(argv))
    return LaunchedServer(spec, argv, port, log_path, proc)


async def wait_ready(server: LaunchedServer) -> None:
    """Poll ``health_path`` then ``models_path`` until both answer 200; raise with the log's tail otherwise."""
    launch = server.spec.launch
    assert launch is not None
    deadline = time.monotonic() + launch.ready_timeout_s
    t0 = time.monotonic()
    last = "no answer yet"
    async with httpx.AsyncClient(base_url=server.root_url, timeout=httpx.Timeout(5.0)) as client:
        while True:
            if not server.alive():
                raise ServerLaunchError(
                    f"the server of {server.spec.name} exited with status {server.process.returncode} before it "
                    f"was ready; log {server.log_path}, last lines:\n{log_tail(server.log_path)}")
            if time.monotonic() > deadline:
                raise ServerLaunchError(
                    f"the server of {server.spec.name} was not ready within {launch.ready_timeout_s:g} s ({last}); "
                    f"log {server.log_path}, last lines:\n{log_tail(server.log_path)}")
            server.ready_polls += 1
            try:
                health = await client.get(launch.health_path)
                if health.status_code == 200:
                    models = await client.get(launch.models_path)
                    if models.status_code == 200:
                        server.ready_after_s = time.monotonic() - t0
                        return
                    last = f"{launch.models_path} answered {models.status_code}"
                else:
                    last = f"{launch.health_path} answered {health.status_code}"
            except httpx.HTTPError as err:
                last = f"{launch.health_path}: {err.__class__.__name__}"
            await asyncio.sleep(launch.poll_interval_s)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def group_members(pgid: int) -> list[int] | None:
    """Live (non-zombie) processes of a process group, from /proc; ``None`` where /proc is not readable."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies, which hold nothing but a pid, do not count)."""
    members = group_members(pgid)
    if members is not None:
        return bool(members)
    try:  # pragma: no cover - systems without /proc
        os.killpg(pgid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True  # pragma: no cover


def stop_server(server: LaunchedServer) -> None:
    """SIGTERM the server's process group, wait, SIGKILL what is left; reap the leader."""
    launch = server.spec.launch
    timeout = launch.stop_timeout_s if launch else 30.0
    pgid = server.pid  # start_new_session: the leader's pid is the group id
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.process.poll()
        if not _group_alive(pgid):
            break
        time.sleep(0.05)
    else:
        log.warning("the server of %s did not stop within %g s of SIGTERM: SIGKILL", server.spec.name, timeout)
        _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=10)
    # Orphans of the group that outlived the leader by a moment (e.g. engine workers) get SIGKILL too.
    for _ in range(100):
        if not _group_alive(pgid):
            break
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.05)
    with server.log_path.open("ab") as fh:
        fh.write(f"==== vlmpipe: stopped (exit status {server.process.returncode})\n".encode())
    log.info("stopped %s (pid %d, exit %s)", server.spec.name, server.pid, server.process.returncode)


@contextlib.asynccontextmanager
async def launched(spec: HttpModelSpec, log_dir: Path) -> AsyncIterator[LaunchedServer]:
    """Start the spec's server, wait until it is ready, yield it, and always stop it afterwards.

    Raises :class:`ServerLaunchError` (after stopping what was started) when it never gets ready.
    """
    server = start_server(spec, log_dir)
    try:
        await wait_ready(server)
        yield server
    finally:
        await asyncio.to_thread(stop_server, server)
