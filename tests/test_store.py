"""The run store: keyed rows, resume after a kill, no duplicates."""

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from PIL import Image

from fakeserver import FakeOpenAIServer
from reliability_helpers import KillOnRequest
from vlmpipe.core.store import Store


def test_generation_rows_are_replaced_not_duplicated(tmp_path: Path) -> None:
    with Store(tmp_path / "run.sqlite") as st:
        row = {"key": "k1", "model": "m", "role": "candidate", "item": "a", "repeat": 0, "text": None,
               "error": "HTTP 500", "error_kind": "http_500"}
        st.put_generation(row)
        assert st.finished_keys() == set()  # a failed row is retried by the next run
        st.put_generation({**row, "text": "ok", "error": None, "error_kind": None, "latency_s": 1.5})
        assert st.count_generations() == 1 and st.finished_keys() == {"k1"}
        st.put_scores([("k1", "chrf", 42.0, {"n": 1}), ("k1", "language", None, "ru")])
        st.put_scores([("k1", "chrf", 43.0, None)])
        assert st.scores() == {"k1": {"chrf": (43.0, None), "language": (None, "ru")}}


def test_planned_rows_only_are_reported(tmp_path: Path) -> None:
    with Store(tmp_path / "run.sqlite") as st:
        for key in ("old", "new"):
            st.put_generation({"key": key, "model": "m", "role": "candidate", "item": "a", "repeat": 0,
                               "text": key})
        st.set_plan([("new", "m", "candidate", "a", 0)])
        assert [g["key"] for g in st.generations()] == ["new"]
        assert len(st.generations(planned=False)) == 2


def make_run(tmp_path: Path, port: int) -> Path:
    shots = tmp_path / "shots"
    shots.mkdir()
    for i in range(3):
        Image.new("RGB", (40 + i, 30), (i * 60, 100, 200)).save(shots / f"s{i}.png")
    cfg = {
        "name": "resume",
        "output_dir": str(tmp_path / "runs"),
        "dataset": {"path": str(shots)},
        "models": [{"name": "fake", "base_url": f"http://127.0.0.1:{port}/v1", "model": "fake-vlm",
                    "retry_backoff_s": 0.05}],
        "repeats": 4,
        "concurrency": 2,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        try:
            return int(c.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_killed_run_resumes_without_duplicates(tmp_path: Path) -> None:
    killer = KillOnRequest()  # the stand-in server SIGKILLs the run when its 6th request arrives
    with FakeOpenAIServer(behavior_fn=killer) as srv:
        config = make_run(tmp_path, srv.port)
        db = tmp_path / "runs" / "resume" / "run.sqlite"
        cmd = [sys.executable, "-m", "vlmpipe.app.cli", "run", str(config), "--quiet"]
        run = killer.start(cmd, 6, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _out, err = run.communicate(timeout=120)
        assert run.returncode == -signal.SIGKILL, err
        # 2 at a time: at least 4 were answered and stored before the 6th was sent; the 6th is never answered
        done_before = count(db, "SELECT COUNT(*) FROM generations WHERE error IS NULL")
        assert 4 <= done_before < 12
        resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert count(db, "SELECT COUNT(*) FROM generations") == 12
        assert count(db, "SELECT COUNT(*) FROM (SELECT DISTINCT model, item, repeat FROM generations)") == 12
        assert count(db, "SELECT COUNT(*) FROM generations WHERE error IS NULL") == 12
        with sqlite3.connect(db) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # sent again: only what the kill cut off in flight (the held 6th, and at most one more: 2 at a time)
        sent = srv.request_count
        assert 12 < sent <= 12 + 2
        # a third run finds everything done and sends nothing
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and count(db, "SELECT COUNT(*) FROM generations") == 12
        assert srv.request_count == sent
