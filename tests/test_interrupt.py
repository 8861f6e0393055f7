"""Ctrl-C (SIGINT) during a run: a clear message, exit 130, what finished is kept, and the next run finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fakeserver import Behavior, FakeOpenAIServer
from reliability_helpers import HELD, make_images, model, write_config
from vlmpipe.core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_ctrl_c_says_what_was_kept_and_the_same_command_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_images(data, 3)
    # the first request is answered, the second held until the server stops: Ctrl-C comes while it is in flight
    held = Behavior(**HELD)
    with FakeOpenAIServer(behavior_fn=lambda index, _body: held if index == 1 else Behavior()) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("m", srv.url)], concurrency=1)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        # SIGINT must reach Python's default handler, as it does from a terminal (a shell's background job
        # would inherit SIGINT ignored)
        proc = subprocess.Popen([sys.executable, "-m", "vlmpipe.app.cli", "run", str(cfg), "--quiet"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while srv.request_count < 2 and time.monotonic() < deadline:  # the first answer is done, the second held
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert ("interrupted: everything that finished is stored in the run directory; run the same command "
                "again to continue") in " ".join(err.split())
        with Store(tmp_path / "runs" / "r" / "run.sqlite") as store:
            kept = [g for g in store.generations() if g["error"] is None]
        assert len(kept) == 1
        before = srv.request_count
        again = subprocess.run([sys.executable, "-m", "vlmpipe.app.cli", "run", str(cfg), "--quiet"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert srv.request_count - before == 3 - len(kept)  # only what was missing is sent
