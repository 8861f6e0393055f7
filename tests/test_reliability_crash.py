"""Crash and resume: a run SIGKILLed at seeded points of generation and judging, then resumed, ends with exactly
the planned generations and one judgement each, none twice, no finished request sent again, and the same
aggregates as an uninterrupted run.

Kill points are events, not moments: the stand-in server kills the run when its n-th request (or n-th judge
request) arrives (reliability_helpers.KillOnRequest), and scoring kills itself once n metrics are stored."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import summary_json
from fakeserver import FakeOpenAIServer
from reliability_helpers import KillOnRequest, image_digest, make_images, model, write_config, write_manifest
from vlmpipe.app.pipeline import run
from vlmpipe.app.pipeline import score as score_pipeline

ROOT = Path(__file__).resolve().parents[1]
ITEMS, REPEATS, CONCURRENCY = 5, 3, 3
MODELS = [("a", "vlm-a"), ("b", "vlm-b")]
PLANNED = ITEMS * REPEATS * len(MODELS)
TIMING = {"latency_s", "ttft_s", "chars_per_s_mean", "output_tokens_per_s_mean", "latency_s.mean"}
MONITORING = ("gpu_", "server_")
ANSWER_RE = re.compile(r"<answer_([ab])>\n(.*?)\n</answer_\1>", re.DOTALL)
GENERATED = "SELECT COUNT(*) FROM generations WHERE error IS NULL"
JUDGED = "SELECT COUNT(*) FROM judgements WHERE error IS NULL"


def responder(body: dict[str, Any]) -> str:
    """Candidates: deterministic per model and image (the same for every repeat), ten words long.
    The judge: scores derived from the two answers' texts, so judgements are deterministic too."""
    if body.get("model") == "fake-judge":
        user = body["messages"][-1]["content"]
        answers = dict(ANSWER_RE.findall(next(p["text"] for p in user if p["type"] == "text")))
        score = {k: 3 + sum(map(ord, v)) % 7 for k, v in answers.items()}
        return json.dumps({"explanation_a": "ok", "explanation_b": "ok", "score_a": score["a"],
                           "score_b": score["b"]})
    d = image_digest(body)
    return f"Здравствуйте, {body.get('model')} видит заказ {d[:6]} и ошибку {d[6:]}, помогите пожалуйста срочно."


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _stored(db: Path, sql: str = GENERATED) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _cli(command: str, target: Path) -> list[str]:
    return [sys.executable, "-m", "vlmpipe.app.cli", command, str(target), "--quiet"]


def _run_until_killed(killer: KillOnRequest, cfg: Path, at: int, judge: bool = False) -> bool:
    """``vlmpipe run``, SIGKILLed by the server when its ``at``-th candidate request (judge request with ``judge``)
    of this run arrives. Returns whether it was killed (False: it finished first)."""
    proc = killer.start(_cli("run", cfg), at, lambda body: (body.get("model") == "fake-judge") == judge, env=_env(),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(120) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """Per-model aggregates without what measures time or the machine (timings, GPU and server monitoring,
    which a resumed run's last invocation samples only while it still generates)."""

    def keep(key: str) -> bool:
        return key not in TIMING and not key.startswith(MONITORING)

    out = {}
    for name, m in summary["models"].items():
        out[name] = {k: ({k2: v2 for k2, v2 in v.items() if keep(k2)} if isinstance(v, dict) else v)
                     for k, v in m.items() if keep(k)}
    return out


def _texts(report: Path) -> list[tuple[str, str, str, str, str]]:
    with (report / "generations.csv").open(encoding="utf-8") as f:
        return sorted((r["model"], r["item"], r["repeat"], r["text"], r["error"]) for r in csv.DictReader(f))


def test_killed_runs_resume_to_exactly_the_plan_with_identical_aggregates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = make_images(data, ITEMS)
    write_manifest(data, [{"id": n.removesuffix(".png"), "image": n, "reference": f"Здравствуйте, эталон {n}."}
                          for n in names])
    rng = random.Random(8)
    # each run is killed at its n-th request, having stored fewer than n + CONCURRENCY (the others in flight may
    # finish while the kill is on its way), so 4 + 3 runs never finish the 30 of either
    gen_targets = [rng.randint(2, 4) for _ in range(4)]
    judge_targets = [rng.randint(2, 6) for _ in range(3)]
    killer = KillOnRequest()
    with FakeOpenAIServer(responder=responder, behavior_fn=killer) as srv:
        models = [model(n, srv.url, model=mid) for n, mid in MODELS]
        # one judge request per judgement (the repeats' identical answers are not deduplicated: the counts below
        # are per judgement; tests/test_judge_dedupe.py kills and resumes a deduplicating judge)
        judge = {"enabled": True, "mode": "random", "seed": 5, "dedupe": False,
                 "model": model("judge", srv.url, model="fake-judge", stream=False, temperature=0.0)}
        kw = {"repeats": REPEATS, "concurrency": CONCURRENCY, "seed": 3, "judge": judge,
              "dataset": {"path": str(data), "manifest": str(data / "manifest.jsonl")}}
        cfg = write_config(tmp_path / "c.yaml", data, models, **kw)
        db = tmp_path / "runs" / "r" / "run.sqlite"
        kills = judge_kills = 0
        for target in gen_targets:
            kills += _run_until_killed(killer, cfg, target)
        for target in judge_targets:
            killed = _run_until_killed(killer, cfg, target, judge=True)
            kills += killed
            judge_kills += killed and _stored(db) == PLANNED
        stored_before_resume = _stored(db), _stored(db, JUDGED)
        final = subprocess.run(_cli("run", cfg), env=_env(), capture_output=True, text=True, timeout=120)
        resumed_requests = list(srv.requests)

        srv.reset()
        base_cfg = write_config(tmp_path / "base.yaml", data, models, name="base", **kw)
        baseline = run(base_cfg, show_progress=False)
        baseline_requests = len(srv.requests)

    assert final.returncode == 0, final.stderr
    assert kills == 7 and judge_kills == 3 and stored_before_resume[1] < PLANNED
    # exactly items × models × repeats generations and one judgement each, each key once, all finished
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT g.key, g.error FROM generations g JOIN plan p ON p.key = g.key").fetchall()
        assert conn.execute("SELECT COUNT(*) FROM plan").fetchone()[0] == PLANNED
        judged = conn.execute("SELECT generation_key, error FROM judgements").fetchall()
    assert len(rows) == PLANNED and len({k for k, _ in rows}) == PLANNED and all(e is None for _, e in rows)
    assert sorted(k for k, _ in judged) == sorted(k for k, _ in rows) and all(e is None for _, e in judged)
    # no finished request sent twice: beyond the plan, only requests cut off by a kill were sent again
    assert baseline_requests == 2 * PLANNED  # one generation and one judgement each
    assert 2 * PLANNED <= len(resumed_requests) <= 2 * PLANNED + kills * CONCURRENCY
    per_image = Counter((b["model"], image_digest(b)) for b in resumed_requests)
    assert len(per_image) == ITEMS * (len(MODELS) + 1) and min(per_image.values()) >= REPEATS
    # the same aggregates (judge included) and texts as the uninterrupted run (timings naturally differ)
    run_dir = tmp_path / "runs" / "r"
    resumed = json.loads((run_dir / "report" / "summary.json").read_text())
    assert _comparable(resumed) == _comparable(summary_json(baseline))
    assert resumed["models"]["a"]["judge"]["n"] == ITEMS * REPEATS
    assert _texts(run_dir / "report") == _texts(baseline.report_dir)
    assert resumed["models"]["a"]["n"] == ITEMS * REPEATS and resumed["models"]["a"]["n_errors"] == 0


SCORE_KILLED_AT_STORE = textwrap.dedent(
    """
    import os, signal, sys
    from vlmpipe.app.cli import main
    from vlmpipe.core.store import Store

    # argv: K before|after COMMAND...: SIGKILL this process just before (or after) it stores its K-th metric's scores
    k, when = int(sys.argv.pop(1)), sys.argv.pop(1)
    put_scores, stores = Store.put_scores, 0

    def put_scores_then_die(self, rows):
        global stores
        stores += 1
        if stores == k and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        put_scores(self, rows)
        if stores == k:
            os.kill(os.getpid(), signal.SIGKILL)

    Store.put_scores = put_scores_then_die
    sys.argv[0] = "vlmpipe"
    main()
    """
)


def test_killed_scoring_resumes_to_the_same_scores(tmp_path: Path) -> None:
    """``vlmpipe score`` killed just before or after it stored a seeded number of metrics, three times, then run to
    the end, stores exactly the scores of an uninterrupted scoring."""
    data = tmp_path / "data"
    names = make_images(data, ITEMS)
    write_manifest(data, [{"id": n.removesuffix(".png"), "image": n, "reference": f"Здравствуйте, заказ {i} отменили.",
                           "facts": [str(i)]} for i, n in enumerate(names)])
    with FakeOpenAIServer(responder=responder) as srv:
        cfg = write_config(tmp_path / "c.yaml", data, [model("a", srv.url, model="vlm-a")], repeats=REPEATS,
                           dataset={"path": str(data), "manifest": str(data / "manifest.jsonl")})
        run(cfg, show_progress=False)
    run_dir = tmp_path / "runs" / "r"
    saved = run_dir / "config.yaml"
    saved.write_text(saved.read_text().replace("  enabled: []\n", "  enabled: null\n", 1))  # every metric
    baseline_dir = tmp_path / "baseline"
    shutil.copytree(run_dir, baseline_dir)
    n = ITEMS * REPEATS
    rng = random.Random(8)
    kills = 0
    for _ in range(3):  # 7 metrics store scores here: three runs of at most 2 each never finish them
        k, when = rng.randint(1, 2), rng.choice(["before", "after"])
        argv = [sys.executable, "-c", SCORE_KILLED_AT_STORE, str(k), when, "score", str(run_dir), "--quiet"]
        proc = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=120)
        kills += proc.returncode == -signal.SIGKILL
    partial = _stored(run_dir / "run.sqlite", "SELECT COUNT(*) FROM scores")
    final = subprocess.run(_cli("score", run_dir), env=_env(), capture_output=True, text=True, timeout=120)
    score_pipeline(baseline_dir, show_progress=False)
    assert final.returncode == 0, final.stderr
    assert kills == 3 and partial > 0

    def scores(db: Path) -> list[tuple[Any, ...]]:
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            return sorted(conn.execute("SELECT key, metric, value, detail FROM scores").fetchall())

    resumed, clean = scores(run_dir / "run.sqlite"), scores(baseline_dir / "run.sqlite")
    assert len(resumed) > 8 * n and len({(k, m) for k, m, *_ in resumed}) == len(resumed)
    assert resumed == clean
    assert partial < len(clean)


WRITER = textwrap.dedent(
    """
    import sys
    from vlmpipe.core.store import Store

    store = Store(sys.argv[1])
    batch = 0
    while True:
        with store.transaction() as c:
            for i in range(200):
                c.execute(
                    "INSERT INTO generations (key, model, role, item, repeat, text, created_at) "
                    "VALUES (?, 'm', 'candidate', 'i', ?, ?, 0)",
                    (f"{batch}-{i}", i, "текст " * 50),
                )
        batch += 1
        if batch == 3:
            print("ready", flush=True)
    """
)


def test_store_survives_a_kill_mid_write(tmp_path: Path) -> None:
    db = tmp_path / "run.sqlite"
    rng = random.Random(8)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], env=_env(), stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.01, 0.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n = conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        assert n >= 600 and n % 200 == 0  # whole transactions only: never half a batch
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM generations")
