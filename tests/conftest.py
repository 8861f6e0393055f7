"""Shared fixtures. ``tests/`` is on sys.path so tests can import the local servers (fakeserver.py)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
PEER = ROOT.parent / "shared" / "peer"
PEER_VQA = ROOT.parent / "shared" / "peer-vqa"
sys.path.insert(0, str(TESTS))
from components import COMPONENTS, SKIP_ENV, SKIP_TAG, missing, require  # noqa: E402

# Pipeline tests run without the llama.cpp perplexity scorer (seconds per run); the tests of perplexity and of
# the demo enable it explicitly. Subprocesses inherit this.
os.environ["VLMPIPE_DEFAULT_METRICS_EXCLUDE"] = "perplexity"
# pytest-xdist workers start with COLUMNS=80/LINES=24 in their environment; rich would freeze the CLI's console at
# that width when it is imported, and a test's CliRunner(env={"COLUMNS": ...}) could no longer widen it.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
# Waiting threads of torch and llama.cpp (GNU OpenMP) sleep instead of spinning: on 2 cores shared with other jobs,
# spinning threads slowed the perplexity tests 2-4x (test_perplexity_default: 16-37 s spinning, 8-14 s sleeping).
# Set before anything loads libgomp; subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# pytest-xdist workers (`make test`) share two cores: each worker's torch uses one thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def summary_json(result: Any) -> dict[str, Any]:
    """The ``report/summary.json`` a run (a ``RunResult``) wrote, as the contract's JSON."""
    return json.loads((Path(result.report_dir) / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def peer_dir() -> Path:
    """The peer's recorded results (../shared/peer); tests using it skip with a reason when absent."""
    if not (PEER / "summary_test_stats.xlsx").is_file():
        pytest.skip(f"peer data not found at {PEER} (it lives beside the checkout in ../shared/peer)")
    return PEER


@pytest.fixture
def peer_vqa_dir() -> Path:
    """The study's recorded VQA results (../shared/peer-vqa); tests using it skip with a reason when absent."""
    if not (PEER_VQA / "results" / "summary_test_stats.xlsx").is_file():
        pytest.skip(f"peer VQA data not found at {PEER_VQA} (it lives beside the checkout in ../shared/peer-vqa)")
    return PEER_VQA


# Real runs shared by the report tests (tests/report_runs.py says how each is made), built once per session (per
# xdist worker) on first use. Tests read them and never change them.
@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The planted run against the stand-in servers: its ``RunResult`` (``run_dir``, ``report_dir``, ``summary``)."""
    from report_runs import planted_run

    return planted_run(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="session")
def imported_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two imported and scored runs to compare, A (``baseline``) and B (``after``): their run directories."""
    from report_runs import after_rows, baseline_rows, import_run

    tmp = tmp_path_factory.mktemp("imported")
    return import_run(tmp, "baseline", baseline_rows()), import_run(tmp, "after", after_rows())


@pytest.fixture(scope="session")
def peer_run(peer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The peer's 400 recorded generations imported (with their recorded judgements) and scored: the run directory."""
    from report_runs import peer_run as make

    return make(peer_dir, tmp_path_factory.mktemp("peer") / "peer")


@pytest.fixture(scope="session")
def demo_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """`vlmpipe demo --out DIR` run once per session: (exit code, console output, DIR)."""
    from typer.testing import CliRunner

    from vlmpipe.app.cli import app

    out = tmp_path_factory.mktemp("demo") / "runs"
    env = {"COLUMNS": "300", "VLMPIPE_DEFAULT_METRICS_EXCLUDE": ""}  # the demo shows perplexity
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--quiet"], env=env)
    return res.exit_code, res.output, out


@pytest.fixture(scope="session")
def default_scorer():
    """The offline default perplexity scorer (Gemma 3 270M in torch: what ``auto`` runs where torch is installed),
    loaded once per test session; the demo in the same process reuses it (``build_scorer`` keeps it)."""
    from vlmpipe.metrics.lm_logprobs import ScorerUnavailable
    from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer

    require("torch", "gguf")
    try:
        return build_scorer(PerplexitySettings(backend="hf"))
    except ScorerUnavailable as err:
        missing("gguf", str(err))


@pytest.fixture(scope="session")
def llama_scorer():
    """The same model in llama-cpp-python (``backend: llama_cpp``), loaded once per test session."""
    from vlmpipe.metrics.lm_logprobs import ScorerUnavailable
    from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer

    require("llama_cpp", "gguf")
    try:
        return build_scorer(PerplexitySettings(backend="llama_cpp"))
    except ScorerUnavailable as err:
        missing("llama_cpp", str(err))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.needs(...)``: a missing component fails the test (tests/components.py)."""
    for marker in item.iter_markers("needs"):
        require(*marker.args)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Name what VLMPIPE_TEST_SKIP_MISSING skipped: an opted-out run must not read as a complete one."""
    counts: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        found = re.search(rf"{re.escape(SKIP_TAG)} (\w+):", reason)
        if found:
            counts[found.group(1)] += 1
    if counts:
        terminalreporter.write_sep("=", f"skipped because {SKIP_ENV}={os.environ.get(SKIP_ENV, '')}", yellow=True)
        for name, n in sorted(counts.items()):
            terminalreporter.write_line(f"{name}: {n} test(s) skipped, missing: {COMPONENTS[name].what} "
                                        f"(install: {COMPONENTS[name].install})")
        terminalreporter.write_line(f"unset {SKIP_ENV} to make these tests fail instead")


# `make test` runs the tests that load the offline perplexity model (Gemma in torch, on both cores) or run the demo
# first, alone (`-m model`); then the rest in two pytest-xdist workers (`-n 2 -m "not model"`), whose torch uses one
# thread each (above). Run together, torch's threads and a worker fight for the cores (a 28 s test took 87 s).
_MODEL_FILES = {"test_perplexity_default.py", "test_perplexity_llama.py", "test_pipeline.py", "test_report_html.py"}


def pytest_itemcollected(item: pytest.Item) -> None:
    if item.path.name in _MODEL_FILES:
        item.add_marker(pytest.mark.model)


# Every summary.json the tests produce must validate against docs/summary.schema.json (the typed summary's JSON
# Schema): at the end of the session (of each xdist worker), the summaries under the session's temporary folder are
# checked, and any that does not validate fails the session with the file and the error.
SCHEMA_FILE = ROOT / "docs" / "summary.schema.json"


def invalid_summaries(folder: Path) -> list[str]:
    """``"<file>: <error>"`` for every ``report/summary.json`` of a run (beside its ``run.sqlite``) under ``folder``
    that the schema rejects. Summaries a test writes by hand (old shapes, broken files) have no store beside them."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    problems = []
    for path in sorted(p for p in folder.rglob("report/summary.json") if (p.parent.parent / "run.sqlite").is_file()):
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            problems.append(f"{path}: not JSON: {err}")
            continue
        for err in validator.iter_errors(loaded):
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            problems.append(f"{path}: {where}: {err.message}")
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or not SCHEMA_FILE.is_file():
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    problems = invalid_summaries(base)
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{len(problems)} summary.json problem(s) against {SCHEMA_FILE.name}:", *problems[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
