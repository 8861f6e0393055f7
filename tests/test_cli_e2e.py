"""End to end through the command line, on the success paths: `vlmpipe bench`, `import` + `score` of the peer's
recorded results, `compare --all/--out`, a run whose references come from a reference model, and `demo` with the
judge named by environment variables. Everything runs in-process against the stand-in server (tests/fakeserver.py);
every expectation is derived from what the test set up (counts, names, texts), not from a snapshot. Assertions are
on the console output, the exit codes, summary.json, generations.csv and references.csv (not on index.html).
"""

from __future__ import annotations

import csv
import json
import re
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner, Result

from conftest import PEER
from fakeserver import Behavior, FakeOpenAIServer
from vlmpipe.app.cli import app

WIDE = {"COLUMNS": "250"}  # every column of every table, one line per row


def cli(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


def words(line: str) -> list[str]:
    """A console line's words, a table's box-drawing borders left out."""
    return re.sub(r"[│┃]", " ", line).split()


def rows_of(output: str, first: str) -> list[list[str]]:
    """The console lines whose first word is ``first``, as words (a table row per line at 250 columns)."""
    return [words(ln) for ln in output.splitlines() if words(ln)[:1] == [first]]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "report" / "summary.json").read_text(encoding="utf-8"))


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def screenshots(folder: Path, n: int, references: list[str] | None = None) -> dict[str, Any]:
    """``n`` small distinct PNGs (and a manifest with the given dataset references); the config's dataset section."""
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        Image.new("RGB", (24 + i, 16), (60 * i, 120, 200)).save(folder / f"s{i}.png")
        ref = {"reference": references[i]} if references else {}
        lines.append(json.dumps({"id": f"s{i}", "image": f"s{i}.png", **ref}, ensure_ascii=False))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"path": str(folder), "manifest": str(folder / "manifest.jsonl")}


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_data() -> Path:
    from vlmpipe.app.demo import demo_dir

    return demo_dir() / "data"


# --- 1. vlmpipe bench ---------------------------------------------------------------------------------------------
WARMUP, REQUESTS, LEVELS, FREEZE_S, STALL_S = 2, 3, (1, 2), 0.4, 1.0
# per model the requests are numbered in the order the server receives them: the warm-up (0, 1), concurrency 1
# (2, 3, 4, one at a time), then concurrency 2 (5, 6, 7; a level starts when the previous one ended). For "fake-a"
# three requests stall for STALL_S > FREEZE_S: a warm-up request and the second request of level 1 before their first
# token, one request of level 2 between its two tokens; "fake-b" never stalls. So: one freeze at each level for
# alpha (the warm-up's is not counted), none for beta.
LATE_FIRST_TOKEN = Behavior(ttft_s=STALL_S)
GAP_MID_STREAM = Behavior(text="Здравствуйте, помогите!", token_delay_s=STALL_S)  # two tokens, one gap
STALLED = {"fake-a": {0: LATE_FIRST_TOKEN, WARMUP + 1: LATE_FIRST_TOKEN, WARMUP + REQUESTS + 1: GAP_MID_STREAM},
           "fake-b": {}}


class StallSome:
    """``behavior_fn`` of the stand-in: the STALLED behaviours on those request numbers of each model."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()

    def __call__(self, _index: int, body: dict[str, Any]) -> Behavior:
        model = body["model"]
        with self.lock:
            k = self.seen[model]
            self.seen[model] += 1
        return STALLED[model].get(k, Behavior())


def test_bench_counts_requests_and_freezes_at_the_server(tmp_path: Path) -> None:
    with FakeOpenAIServer(models=("fake-a", "fake-b"), behavior_fn=StallSome()) as srv:
        config = write_config(tmp_path / "bench.yaml", {
            "name": "bench-e2e", "output_dir": str(tmp_path / "runs"), "dataset": screenshots(tmp_path / "data", 2),
            "models": [{"name": "alpha", "model": "fake-a", "base_url": srv.url},
                       {"name": "beta", "model": "fake-b", "base_url": srv.url}],
        })
        res = cli("bench", str(config), "--concurrency", ",".join(map(str, LEVELS)), "--requests", str(REQUESTS),
                  "--warmup", str(WARMUP), "--freeze-s", str(FREEZE_S))
        bodies = list(srv.requests)
    assert res.exit_code == 0, res.output
    # what the server received: per model, the warm-up plus N requests per level, streamed, no retries
    assert Counter(b["model"] for b in bodies) == {m: WARMUP + REQUESTS * len(LEVELS) for m in ("fake-a", "fake-b")}
    assert all(b["stream"] for b in bodies)

    summary = read_summary(tmp_path / "runs" / "bench-e2e")
    section = summary["bench"]
    settings = section["settings"]
    assert (settings["concurrency"], settings["requests"], settings["warmup"], settings["freeze_s"]) == (
        list(LEVELS), REQUESTS, WARMUP, FREEZE_S)
    assert set(section["models"]) == {"alpha", "beta"}
    expected_freezes = {"alpha": {1: 1, 2: 1}, "beta": {1: 0, 2: 0}}
    for model, per_level in expected_freezes.items():
        levels = section["models"][model]["levels"]
        assert sorted(levels) == [str(c) for c in LEVELS]
        for c, freezes in per_level.items():
            level = levels[str(c)]
            assert (level["concurrency"], level["requests"], level["completed"], level["errors"]) == (
                c, REQUESTS, REQUESTS, 0)
            assert level["freezes"] == freezes, (model, c, level)
    assert (tmp_path / "runs" / "bench-e2e" / "report" / "bench.png").stat().st_size > 0

    # the printed table: one row per model and level, ok/n, no errors, the freezes; the closing line names the files
    table = {(r[0], r[1]): r for m in ("alpha", "beta") for r in rows_of(res.stdout, m)}
    assert set(table) == {(m, str(c)) for m in ("alpha", "beta") for c in LEVELS}
    for (model, level), row in table.items():
        assert row[2] == f"{REQUESTS}/{REQUESTS}"  # ok/n
        assert row[-3:-1] == ["0%", str(expected_freezes[model][int(level)])]  # errors, freezes
    assert "bench (ms; TPOT excludes the first token)" in res.stdout
    progress = " ".join(res.stderr.split())  # one progress line per model and level, on stderr
    for model in ("alpha", "beta"):
        for c in LEVELS:
            assert f"{model} @ {c}: {REQUESTS}/{REQUESTS} ok," in progress
    assert "errors:" not in progress
    closing = " ".join(res.stdout.split())
    assert f"{tmp_path / 'runs' / 'bench-e2e' / 'report' / 'summary.json'} (bench)" in closing
    assert str(tmp_path / "runs" / "bench-e2e" / "report" / "bench.png") in closing


def test_bench_against_a_dead_server_exits_1_and_says_why(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    config = write_config(tmp_path / "dead.yaml", {
        "name": "bench-dead", "output_dir": str(tmp_path / "runs"), "dataset": screenshots(tmp_path / "data", 1),
        "models": [{"name": "dead", "base_url": url}],
    })
    res = cli("bench", str(config), "--concurrency", "1", "--requests", "2", "--warmup", "0")
    assert res.exit_code == 1, res.output
    said = " ".join(res.stderr.split())  # the progress lines go to stderr, the table to stdout
    assert "dead @ 1: 0/2 ok" in said and "errors: connection: 2" in said
    assert f"first: connection to {url} failed" in said  # the reason, with the address that refused
    level = read_summary(tmp_path / "runs" / "bench-dead")["bench"]["models"]["dead"]["levels"]["1"]
    assert (level["requests"], level["completed"], level["errors"], level["errors_by_kind"]) == (
        2, 0, 2, {"connection": 2})
    [row] = rows_of(res.stdout, "dead")
    assert row[1:3] == ["1", "0/2"] and "100%" in row


# --- 2. vlmpipe import --format original + vlmpipe score, on the peer's recorded results ---------------------------
@pytest.fixture(scope="module")
def peer_scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The peer's results imported and scored once through the CLI: both results, the run directory."""
    if not (PEER / "summary_test_stats.xlsx").is_file():
        pytest.skip(f"peer data not found at {PEER} (it lives beside the checkout in ../shared/peer)")
    run_dir = tmp_path_factory.mktemp("peer") / "peer-run"
    imported = cli("import", "--format", "original", "--results", str(PEER), "--images", str(PEER / "screenshots"),
                   "--out", str(run_dir))
    scored = cli("score", str(run_dir), "-q") if imported.exit_code == 0 else None
    return {"imported": imported, "scored": scored, "run_dir": run_dir}


def peer_expectations() -> dict[str, Any]:
    """What the peer's files say: rows per model, images, and judgements whose scores are outside 1–10."""
    gens = pd.read_excel(PEER / "summary_test_stats.xlsx", engine="openpyxl")
    judged = pd.read_excel(PEER / "judgement_scores.xlsx", engine="openpyxl")
    scores = judged[["Candidate_Score", "Reference_Score"]].apply(pd.to_numeric, errors="coerce")
    bad = ~scores.apply(lambda col: col.between(1, 10)).all(axis=1)
    return {"rows": len(gens), "per_model": gens["model_name"].value_counts().to_dict(),
            "images": gens["Image"].nunique(), "repeats": int(gens.groupby(["model_name", "Image"]).size().max()),
            "failed_per_model": judged[bad]["model_name"].value_counts().to_dict()}


def test_import_then_score_the_peer_results(peer_scored: dict[str, Any]) -> None:
    imported, scored, run_dir = peer_scored["imported"], peer_scored["scored"], peer_scored["run_dir"]
    assert imported.exit_code == 0, imported.output
    said = " ".join(imported.output.split())
    assert f"imported into {run_dir}; next: vlmpipe score {run_dir}" in said
    expect = peer_expectations()
    assert (expect["rows"], expect["images"], expect["repeats"]) == (400, 10, 5)  # the peer's README
    n_failed = sum(expect["failed_per_model"].values())
    assert n_failed == 6  # six rows hold summed criteria (34, 35 ...), docs/judge.md
    # completed, with the recorded judgements that could not be used: exit 1, and the console says which
    assert scored is not None and scored.exit_code == 1, scored.output if scored else imported.output
    assert f"completed with failures: {n_failed} judgement(s) failed" in " ".join(scored.output.split())
    assert f"10 items × {expect['repeats']} repeats, ranked by judge ratio" in scored.output
    for model in expect["per_model"]:
        assert len(rows_of(scored.output, model)) == 1, model  # every model has its row in the ranking

    summary = read_summary(run_dir)
    assert summary["run"]["items"] == expect["images"] and summary["run"]["items_failed"] == 0  # every image found
    assert summary["run"]["repeats"] == expect["repeats"]
    assert summary["judge_status"]["state"] == "recorded" and summary["judge_status"]["n_failed"] == n_failed
    assert set(summary["models"]) == set(expect["per_model"])
    for model, n in expect["per_model"].items():
        m = summary["models"][model]
        failed = expect["failed_per_model"].get(model, 0)
        assert (m["n"], m["n_errors"]) == (n, 0)
        assert (m["judge"]["n"], m["judge"]["n_failed"]) == (n - failed, failed), model
    rows = read_csv(run_dir / "report" / "generations.csv")
    assert len(rows) == expect["rows"]
    assert Counter(r["model"] for r in rows) == expect["per_model"]
    assert all(r["error"] == "" for r in rows)
    assert {r["item"] for r in rows} == {f"test_{i}" for i in range(1, 11)}


# --- 3. vlmpipe compare A B [--all] [--out DIR] ----------------------------------------------------------------------
TEXT_A = "Здравствуйте! Мой заказ отменили, верните деньги."
TEXT_B = "Добрый день! Не проходит оплата картой, что делать? Ответ"  # + " №NN": every answer of B differs
LIMIT, REPEATS = 4, 2


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo dataset's first LIMIT items, REPEATS times, against two stand-ins. Run A: model "cand" answers
    TEXT_A every time (one distinct answer per item: distinct_answer_rate 1/REPEATS). Run B: "cand" answers
    TEXT_B with a running number, every answer distinct (rate 1), all of the same length; and a model "extra"
    that only B has."""
    base = tmp_path_factory.mktemp("compare")
    data = demo_data()
    dataset = {"path": str(data), "manifest": str(data / "manifest.jsonl"), "limit": LIMIT}
    lock, count = threading.Lock(), Counter[str]()

    def numbered(_body: dict[str, Any]) -> str:
        with lock:
            count["b"] += 1
            return f"{TEXT_B} №{count['b']:02d}"

    runs = {}
    for name, responder, extra in (("a", lambda _b: TEXT_A, []), ("b", numbered, ["extra"])):
        with FakeOpenAIServer(responder=responder) as srv:
            models = [{"name": m, "model": "fake-vlm", "base_url": srv.url} for m in ["cand", *extra]]
            config = write_config(base / f"{name}.yaml", {
                "name": name, "output_dir": str(base / "runs"), "dataset": dataset, "models": models,
                "repeats": REPEATS, "concurrency": 4})
            res = cli("run", str(config), "-q")
            assert res.exit_code == 0, res.output
            assert srv.request_count == LIMIT * REPEATS * len(models)
        runs[name] = base / "runs" / name
    runs["out"] = base / "compared"
    return runs


def dotted(d: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        d = d[part]
    return d


def compare_row(output: str, field: str) -> list[str] | None:
    rows = rows_of(output, field)
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def test_compare_all_shows_every_field_and_b_minus_a_matches_the_summaries(two_runs: dict[str, Path]) -> None:
    from vlmpipe.analysis.compare import headline

    a, b = read_summary(two_runs["a"])["models"]["cand"], read_summary(two_runs["b"])["models"]["cand"]
    # what the runs were set up to give
    assert (a["length_chars_mean"], b["length_chars_mean"]) == (len(TEXT_A), len(TEXT_B) + len(" №01"))
    assert (a["distinct_answer_rate"], b["distinct_answer_rate"]) == (1 / REPEATS, 1.0)
    assert a["n"] == b["n"] == LIMIT * REPEATS

    default = cli("compare", str(two_runs["a"]), str(two_runs["b"]))
    everything = cli("compare", str(two_runs["a"]), str(two_runs["b"]), "--all")
    assert default.exit_code == 0 and everything.exit_code == 0, default.output + everything.output
    for res in (default, everything):
        said = " ".join(res.output.split())
        assert f"A = {two_runs['a']}" in said and f"B = {two_runs['b']}" in said
        assert "cand: B − A" in res.output and "only in B: extra" in said and "only in A" not in said
    # a headline field in both views, with A, B and B − A as the summaries have them
    assert "length_chars_mean" in headline()
    for res in (default, everything):
        row = compare_row(res.output, "length_chars_mean")
        assert row is not None and row[1:4] == [f"{len(TEXT_A)}", f"{len(TEXT_B) + 4}",
                                                f"{len(TEXT_B) + 4 - len(TEXT_A):+d}"]
    # a field the default view hides: only --all shows it, with its values (0.5 → 1: +0.5)
    assert "distinct_answer_rate" not in headline()
    assert compare_row(default.output, "distinct_answer_rate") is None
    assert compare_row(everything.output, "distinct_answer_rate")[1:4] == ["0.5", "1", "+0.5"]  # type: ignore[index]
    # every row --all prints is a number both summaries have, B − A of the two files
    shown = 0
    for line in everything.output.splitlines():
        row = words(line)
        if len(row) < 4 or not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*", row[0]):
            continue
        try:
            va, vb = float(dotted(a, row[0])), float(dotted(b, row[0]))
        except (KeyError, TypeError):
            continue
        assert row[1:4] == [f"{va:.4g}", f"{vb:.4g}", f"{vb - va:+.4g}"], row
        shown += 1
    assert shown >= 10


def test_compare_out_writes_json_and_html(two_runs: dict[str, Path]) -> None:
    out = two_runs["out"]
    res = cli("compare", str(two_runs["a"]), str(two_runs["b"]), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert f"written: {out / 'compare.json'}, {out / 'compare.html'}" in " ".join(res.output.split())
    result = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert (result["only_a"], result["only_b"]) == ([], ["extra"]) and list(result["models"]) == ["cand"]
    a, b = read_summary(two_runs["a"])["models"]["cand"], read_summary(two_runs["b"])["models"]["cand"]
    fields = result["models"]["cand"]
    assert fields["distinct_answer_rate"] == {"a": 1 / REPEATS, "b": 1.0, "diff": 1 - 1 / REPEATS}
    assert fields["length_chars_mean"]["diff"] == len(TEXT_B) + 4 - len(TEXT_A)
    for key, v in fields.items():  # every number: A and B as in the two summaries, B − A their difference
        assert (v["a"], v["b"]) == (dotted(a, key), dotted(b, key)), key
        assert v["diff"] == pytest.approx(v["b"] - v["a"]), key
    assert (out / "compare.html").stat().st_size > 0


# --- 4. references from a reference model ---------------------------------------------------------------------------
REF_TEXT = "Здравствуйте! Не могу войти в приложение: код из СМС не приходит уже 10 минут. Что делать?"
OTHER_TEXT = "Добрый день. Подскажите, как изменить адрес доставки заказа?"


def test_references_generated_by_a_reference_model(tmp_path: Path) -> None:
    n_items = 3
    answers = {"ref-model": REF_TEXT, "echo-vlm": REF_TEXT, "other-vlm": OTHER_TEXT}
    with FakeOpenAIServer(responder=lambda body: answers[body["model"]]) as srv:
        config = write_config(tmp_path / "refs.yaml", {
            "name": "refs", "output_dir": str(tmp_path / "runs"),
            # the dataset's own references, which the reference model's answers replace
            "dataset": screenshots(tmp_path / "data", n_items, [f"Справка из набора данных {i}" for i in range(3)]),
            "models": [{"name": "echo", "model": "echo-vlm", "base_url": srv.url},
                       {"name": "other", "model": "other-vlm", "base_url": srv.url}],
            "repeats": 2,
            "references": {"source": "model", "samples": 1,
                           "model": {"name": "gpt-ref", "model": "ref-model", "base_url": srv.url}},
        })
        res = cli("run", str(config), "-q")
        asked = Counter(b["model"] for b in srv.requests)
    assert res.exit_code == 0, res.output
    assert asked == {"ref-model": n_items, "echo-vlm": 2 * n_items, "other-vlm": 2 * n_items}
    report = tmp_path / "runs" / "refs" / "report"
    refs = read_csv(report / "references.csv")
    assert [(r["item"], r["source"], r["model"], r["sample"], r["reference"]) for r in refs] == [
        (f"s{i}", "model", "gpt-ref", "0", REF_TEXT) for i in range(n_items)]
    gens = [r for r in read_csv(report / "generations.csv") if r["model"] in ("echo", "other")]
    assert Counter(r["model"] for r in gens) == {"echo": 2 * n_items, "other": 2 * n_items}
    assert all(float(r["chrf"]) == 100.0 for r in gens if r["model"] == "echo")  # the reference model's own text
    assert all(float(r["chrf"]) < 50.0 for r in gens if r["model"] == "other")
    models = read_summary(tmp_path / "runs" / "refs")["models"]
    assert models["echo"]["chrf_mean"] == 100.0 and models["other"]["chrf_mean"] < 50.0


# --- 5. vlmpipe demo with the judge named by environment variables ----------------------------------------------------
JUDGE_ANSWER_RE = re.compile(r"<answer_([ab])>\n(.*?)\n</answer_\1>", re.DOTALL)
REFERENCE_SCORE, CANDIDATE_SCORE = 8, 6


def test_demo_with_the_judge_from_the_environment(tmp_path: Path) -> None:
    manifest = [json.loads(ln) for ln in (demo_data() / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
                if ln.strip()]
    references = {m["reference"].strip() for m in manifest}

    def judge(body: dict[str, Any]) -> str:
        """8 for the dataset's reference, 6 for any other answer, whichever position it is shown in; the VQA demo's
        graded answers (a question, the human answer, the candidate's) get 7 of 10."""
        text = next(p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text")
        if "<question>" in text:
            return json.dumps({"explanation": "g", "score": 7})
        answers = dict(JUDGE_ANSWER_RE.findall(text))
        score = {k: REFERENCE_SCORE if v.strip() in references else CANDIDATE_SCORE for k, v in answers.items()}
        return json.dumps({"explanation_a": "a", "explanation_b": "b", "score_a": score["a"], "score_b": score["b"]})

    out = tmp_path / "runs"
    with FakeOpenAIServer(models=("stand-in-judge",), responder=judge) as srv:
        res = cli("demo", "--out", str(out), "--quiet",
                  env={"VLMPIPE_JUDGE_BASE_URL": srv.url, "VLMPIPE_JUDGE_MODEL": "stand-in-judge",
                       "OPENAI_API_KEY": None, "VLMPIPE_JUDGE_API_KEY_ENV": None, "VLMPIPE_REFERENCE_MODEL": None})
        bodies, headers = list(srv.requests), list(srv.headers)
    assert res.exit_code == 0, res.output
    n = len(manifest)  # one repeat per item, one candidate (the OCR baseline)
    questions = len((demo_data() / "vqa.jsonl").read_text(encoding="utf-8").splitlines())
    # both orders of every generation, then each VQA answer graded once, asked of the model the environment named,
    # without a key
    assert len(bodies) == 2 * n + questions and {b["model"] for b in bodies} == {"stand-in-judge"}
    assert all("authorization" not in h for h in headers)
    summary = read_summary(out / "demo")
    assert summary["judge_status"]["state"] == "done"
    judged = summary["models"]["ocr-baseline"]["judge"]
    assert (judged["n"], judged["n_failed"]) == (n, 0)
    ratio = CANDIDATE_SCORE / REFERENCE_SCORE
    assert judged["ratio_mean"] == pytest.approx(ratio)
    assert (judged["candidate_score_mean"], judged["reference_score_mean"]) == (CANDIDATE_SCORE, REFERENCE_SCORE)
    assert (judged["win_rate"], judged["loss_rate"]) == (0.0, 1.0)
    # the console: ranked by the judge ratio, which the ranking shows with its interval; the judge's tally
    assert f"run demo: {n} items × 1 repeat, ranked by judge ratio" in res.output
    row, vqa_row = rows_of(res.output, "ocr-baseline")  # the demo's two rankings: screen annotation, then VQA
    assert f"{ratio:.3f} [{ratio:.3f}, {ratio:.3f}]" in " ".join(row)
    assert "0.700 [0.700, 0.700]" in " ".join(vqa_row)
    graded = read_summary(out / "demo-vqa")["models"]["ocr-baseline"]["judge"]
    assert graded["n"] == questions and graded["ratio_mean"] == pytest.approx(0.7)
    said = " ".join(res.output.split())
    assert f"judge: {2 * n} request(s) sent, {2 * n} judgement(s) judged, 0 failed" in said
    assert "not configured" not in said
