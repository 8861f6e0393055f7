"""The launcher: building vLLM / custom command lines, readiness, failures with the log's tail, clean stops."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from vlmpipe.app.pipeline import run
from vlmpipe.core.config import ConfigError, config_from_dict
from vlmpipe.providers.openai_spec import OpenAISpec
from vlmpipe.stages.serving import gpu
from vlmpipe.stages.serving.launcher import (
    ServerLaunchError,
    build_command,
    port_is_free,
    start_server,
    stop_server,
    wait_ready,
)
from vlmpipe.stages.serving.session import model_session, weights_gb_from_log

FAKESERVER = str(Path(__file__).parent / "fakeserver.py")


def pid_alive(pid: int) -> bool:
    """os.kill(pid, 0), a zombie (exited, not yet reaped by init) counting as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def fake_command(*extra: str) -> list[str]:
    return [sys.executable, FAKESERVER, "--port", "{port}", *extra]


def make_dataset(root: Path, n: int = 2) -> Path:
    data = root / "data"
    data.mkdir()
    for i in range(n):
        Image.new("RGB", (32, 24), (40 * i, 90, 200)).save(data / f"shot{i}.png")
    return data


def test_vllm_command_from_named_arguments() -> None:
    spec = OpenAISpec.model_validate({
        "name": "q7", "model": "Qwen/Qwen2-VL-7B-Instruct-AWQ",
        "launch": {"quantization": "awq_marlin", "max_model_len": 8192, "gpu_memory_utilization": 0.85,
                   "limit_mm_per_prompt": {"image": 2}, "dtype": "float16", "tensor_parallel_size": 2,
                   "enable_prefix_caching": False, "args": ["--seed", "1"]},
    })
    assert spec.launch is not None and spec.launch.engine == "vllm"
    assert build_command(spec, 8123) == [
        "vllm", "serve", "Qwen/Qwen2-VL-7B-Instruct-AWQ", "--host", "127.0.0.1", "--port", "8123",
        "--quantization", "awq_marlin", "--dtype", "float16", "--max-model-len", "8192",
        "--gpu-memory-utilization", "0.85", "--tensor-parallel-size", "2", "--limit-mm-per-prompt",
        '{"image":2}', "--no-enable-prefix-caching", "--seed", "1",
    ]


def test_launch_shorthand_and_served_model_name() -> None:
    spec = OpenAISpec.model_validate({"name": "local", "launch": "vllm"})
    assert build_command(spec, 9000) == ["vllm", "serve", "local", "--host", "127.0.0.1", "--port", "9000"]
    spec = OpenAISpec.model_validate({"name": "m", "model": "short", "launch": {"model": "/models/qwen"}})
    assert build_command(spec, 1)[2:3] == ["/models/qwen"]
    assert build_command(spec, 1)[-2:] == ["--served-model-name", "short"]


def test_custom_command_placeholders_keep_json_braces() -> None:
    spec = OpenAISpec.model_validate({
        "name": "sg", "model": "Qwen/Qwen2-VL-2B-Instruct",
        "launch": {"command": ["python", "-m", "sglang.launch_server", "--model-path", "{model}", "--port",
                               "{port}", "--json-model-override-args", '{"x": 1}']},
    })
    assert spec.launch is not None and spec.launch.engine == "command"
    assert build_command(spec, 30000) == ["python", "-m", "sglang.launch_server", "--model-path",
                                          "Qwen/Qwen2-VL-2B-Instruct", "--port", "30000",
                                          "--json-model-override-args", '{"x": 1}']


def test_launch_config_errors_name_the_field(tmp_path: Path) -> None:
    base = {"dataset": {"path": str(tmp_path)}}
    with pytest.raises(ConfigError, match=r"models\.0\.launch.*command is not set"):
        config_from_dict({**base, "models": [{"name": "a", "launch": {"engine": "command"}}]}, source="c.yaml")
    with pytest.raises(ConfigError, match="base_urls and launch exclude each other"):
        config_from_dict({**base, "models": [{"name": "a", "launch": "vllm", "base_urls": ["http://h/v1"]}]})
    with pytest.raises(ConfigError, match=r"models\.0\.launch\.gpu_memory_utilization"):
        config_from_dict({**base, "models": [{"name": "a", "launch": {"gpu_memory_utilization": 2}}]})


async def test_missing_vllm_fails_the_model_with_a_clear_reason(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "nov", "output_dir": str(tmp_path), "dataset": {"path": str(tmp_path)},
                            "models": [{"name": "m", "launch": {"executable": "vllm-not-installed-here"}}]})
    async with model_session(cfg, cfg.models[0], None) as served:
        assert served.error is not None
        assert "'vllm-not-installed-here' not found" in served.error
        assert "pip install vllm" in served.error


def test_a_server_that_cannot_start_is_reported_in_the_run_log(tmp_path: Path) -> None:
    """The reason reaches the console (a WARNING) and logs/run.log, not only the report."""
    cfg = config_from_dict({"name": "nov", "output_dir": str(tmp_path / "runs"),
                            "dataset": {"path": str(make_dataset(tmp_path))}, "repeats": 1,
                            "metrics": {"enabled": []}, "references": {"source": "none"},
                            "models": [{"name": "m", "launch": {"executable": "vllm-not-installed-here"}}]})
    result = run(cfg, show_progress=False)
    assert result.exit_code == 1
    log = (result.run_dir / "logs" / "run.log").read_text(encoding="utf-8")
    assert ("WARNING vlmpipe: model m: 2 generation(s) not sent: cannot start the server of m: "
            "'vllm-not-installed-here' not found") in log


def test_run_launches_waits_stops_and_survives_a_crashing_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "load_nvml", lambda: (None, "NVML unavailable: test has no GPU"))
    data = make_dataset(tmp_path)
    cfg = config_from_dict({
        "name": "launched", "output_dir": str(tmp_path / "runs"), "dataset": {"path": str(data)},
        "repeats": 2, "concurrency": 2,
        "models": [
            {"name": "crasher", "model": "fake-vlm", "max_retries": 0,
             "launch": {"command": fake_command("--startup-delay", "0.3", "--crash-on-start"),
                        "ready_timeout_s": 30, "stop_timeout_s": 5}},
            {"name": "good", "model": "fake-vlm",
             "launch": {"command": fake_command("--startup-delay", "0.5"), "ready_timeout_s": 30,
                        "stop_timeout_s": 5, "env": {"CUDA_VISIBLE_DEVICES": "0"}}},
        ],
        "references": {"source": "none"},
    })
    result = run(cfg, show_progress=False)
    assert result.exit_code == 1  # completed, with the crashing model's requests failed

    rows = json.loads((result.report_dir / "summary.json").read_text())["models"]
    crasher, good = rows["crasher"], rows["good"]
    assert crasher["n"] == 4 and crasher["n_errors"] == 4 and crasher["errors_by_kind"] == {"server": 4}
    assert good["n"] == 4 and good["n_errors"] == 0
    assert good["gpu_memory_gb_peak"] is None
    assert good["unavailable"]["gpu_memory_gb_peak"] == "NVML unavailable: test has no GPU"
    # the stand-in server serves vLLM's gauges on /metrics; they were scraped while the model ran
    assert good["server_kv_cache_usage_peak"] == pytest.approx(0.25)

    from vlmpipe.core.store import Store

    with Store(result.run_dir / "run.sqlite") as store:
        gens = store.generations()
        info = {m["name"]: m["info"] for m in store.models()}
    crash_errors = {g["error"] for g in gens if g["model"] == "crasher"}
    assert len(crash_errors) == 1
    message = crash_errors.pop()
    assert "exited with status 1 before it was ready" in message
    assert "fake server: simulated crash on start" in message  # the log's tail
    assert all(g["error"] is None and g["text"] for g in gens if g["model"] == "good")

    server = info["good"]["server"]
    assert server["status"] == "stopped" and server["exit_code"] == 0  # SIGTERM was enough
    # the start-up delay was awaited: the first polls found the port still closed, a later one found it ready
    assert server["ready_polls"] > 1 and server["ready_after_s"] is not None
    assert not pid_alive(server["pid"]) and port_is_free(server["port"])
    assert not pid_alive(info["crasher"]["server"]["pid"])
    assert info["crasher"]["server"]["status"] == "failed"
    log_text = (result.run_dir / "logs" / "good.log").read_text()
    assert "fake server: listening on" in log_text and "CUDA_VISIBLE_DEVICES=0" in log_text
    assert (result.run_dir / "logs" / "crasher.log").is_file()


async def test_a_server_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    spec = OpenAISpec.model_validate({
        "name": "slow", "launch": {"command": [sys.executable, "-c", "print('loading', flush=True); "
                                              "import time; time.sleep(60)"],
                                   "ready_timeout_s": 0.5, "stop_timeout_s": 5}})
    server = start_server(spec, tmp_path)
    with pytest.raises(ServerLaunchError, match=r"not ready within 0\.5 s") as err:
        await wait_ready(server)
    assert "loading" in str(err.value)
    stop_server(server)
    assert not pid_alive(server.pid)


def test_stop_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    spec = OpenAISpec.model_validate({"name": "stubborn", "launch": {"command": [sys.executable, "-c", script],
                                                                   "stop_timeout_s": 0.5}})
    server = start_server(spec, tmp_path)
    deadline = time.monotonic() + 20
    while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert pid_alive(server.pid) and pid_alive(child)
    stop_server(server)
    assert server.process.returncode == -9  # SIGKILL after the ignored SIGTERM
    assert not pid_alive(server.pid) and not pid_alive(child)
    assert "stopped (exit status -9)" in (tmp_path / "stubborn.log").read_text()


def test_weights_memory_is_read_from_the_vllm_log(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text("INFO 01-01 worker.py:1] Loading model weights took 4.1562 GB\n"
                   "INFO 01-01 gpu_model_runner.py:1] Model loading took 8.7 GiB and 5.2 seconds\n")
    assert weights_gb_from_log(log) == pytest.approx(8.7)
    assert weights_gb_from_log(tmp_path / "absent.log") is None


async def test_a_server_that_dies_while_serving_is_reported(tmp_path: Path) -> None:
    from vlmpipe.core.store import Store

    cfg = config_from_dict({"name": "dies", "output_dir": str(tmp_path), "dataset": {"path": str(tmp_path)},
                            "models": [{"name": "m", "model": "fake-vlm",
                                        "launch": {"command": fake_command(), "ready_timeout_s": 30}}]})
    with Store(tmp_path / "run.sqlite") as store:
        store.put_models([("m", "candidate", {})])
        async with model_session(cfg, cfg.models[0], store) as served:
            assert served.error is None and served.server is not None
            os.kill(served.server.pid, signal.SIGKILL)
            served.server.process.wait(timeout=10)
        server = store.model_info("m")["server"]
    assert server["status"] == "died" and server["exit_code"] == -9
    assert "the server exited with status -9 while serving" in server["error"]
    assert "fake server: listening on" in server["error"]  # the log's tail
