"""The pipeline: prepare → generate → references → score → judge → report, over one run directory.

The Python API mirrors the CLI: ``vlmpipe.run("config.yaml")`` does what ``vlmpipe run config.yaml`` does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmpipe.core.config import ConfigError, RunConfig, load_config
from vlmpipe.core.images import PreparedImage
from vlmpipe.core.keys import require_api_keys
from vlmpipe.core.rundir import existing_store, load_run_config, open_store, save_config
from vlmpipe.core.runlog import run_log
from vlmpipe.core.store import Store
from vlmpipe.stages.generate import RunDeadline, generate
from vlmpipe.stages.plan import PlannedGeneration, make_plan
from vlmpipe.stages.prepare import load_task_items, prepare_items
from vlmpipe.stages.references import apply_references
from vlmpipe.stages.score import enabled_metrics, score_run
from vlmpipe.tasks import resolve

if TYPE_CHECKING:
    from vlmpipe.analysis.compare import Comparison
    from vlmpipe.analysis.summary import RunSummary
    from vlmpipe.stages.bench import BenchSettings
    from vlmpipe.stages.judge import JudgeOutcome


def judge_run(*args: Any, **kwargs: Any) -> JudgeOutcome:
    """The judge stage (imported on first use, like the report: a run without a judge never needs it)."""
    from vlmpipe.stages.judge import judge_run as run_judge

    return run_judge(*args, **kwargs)


def write_report(cfg: RunConfig, store: Store, run_dir: Path) -> RunSummary:
    """The report stage (imported on first use: matplotlib and openpyxl cost ~1 s per command, and a killed or
    failing run never gets there)."""
    from vlmpipe.render import write_report as write

    return write(cfg, store, run_dir)

log = logging.getLogger("vlmpipe")

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_CANNOT_START = 0, 1, 2


@dataclass
class RunResult:
    run_dir: Path
    summary: RunSummary
    exit_code: int
    requests_made: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def report_dir(self) -> Path:
        return self.run_dir / "report"


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` in a worker thread: stages use ``asyncio.run``, which a running loop (Jupyter) forbids."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def run(config: RunConfig | str | Path, *, show_progress: bool = True, max_time_s: float | None = None) -> RunResult:
    """Run every stage of a config; finished generations are reused, never re-requested.

    ``max_time_s`` (default: the config's ``max_run_time_s``) caps the run: when it passes, generation stops,
    what finished is kept, the report is written and the exit code is 1 with a note saying so.
    Works from a notebook too: inside a running event loop the stages run in a worker thread.
    """
    if _in_running_loop():
        return _off_loop(run, config, show_progress=show_progress, max_time_s=max_time_s)
    started = time.monotonic()
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    cap = max_time_s if max_time_s is not None else cfg.max_run_time_s
    # could not start (ConfigError) before anything is written or sent
    source = "config" if isinstance(config, RunConfig) else str(config)
    try:  # what the config itself gets wrong first, then what the environment lacks
        task = resolve(cfg)  # the task's instruction, user message and judge mode; an unknown task stops here
        enabled_metrics(cfg)  # an unknown metric name was found only after every generation had been sent
        if cfg.judge.enabled:  # and so were judge settings that cannot work
            from vlmpipe.stages.judge.run import check_judge_settings

            check_judge_settings(cfg, task=task)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    require_api_keys(cfg, source=source)
    run_dir = Path(cfg.run_dir)
    dataset = load_task_items(cfg)  # DatasetError (could not start) before anything is written
    save_config(cfg, run_dir, source=source)
    with run_log(cfg, run_dir), open_store(run_dir) as store:
        store.set_meta("stopped", None)
        images, plan = prepare(cfg, store, dataset)
        notes: list[str] = []
        try:
            remaining = None if cap is None else max(0.0, cap - (time.monotonic() - started))
            made = generate(cfg, store, plan, images, show_progress=show_progress, max_time_s=remaining)
        except RunDeadline:
            done = len(store.generations())
            reason = (f"stopped: the run time limit of {cap:g} s was reached; {done} of {len(plan)} generations "
                      f"are stored and reported, run the same command again to finish the rest")
            store.set_meta("stopped", reason)
            notes.append(reason)
            log.warning(reason)
            made = done
            if cfg.judge.enabled:
                notes.append("judge skipped: the run time limit was reached (run again, or `vlmpipe judge RUN`)")
        result = finish(cfg, store, run_dir, requests_made=made, show_progress=show_progress, images=images,
                        judge=not notes)
        result.notes = notes + result.notes
        if notes:
            result.exit_code = EXIT_FAILED_ITEMS
        return result


def prepare(cfg: RunConfig, store: Store, dataset: list[Any] | None = None
            ) -> tuple[dict[str, PreparedImage | str], list[PlannedGeneration]]:
    """The stages before generation: the items and their images, the models and the plan, stored."""
    images = prepare_items(cfg, store, dataset)
    plan = make_plan(cfg, store.items())
    store.put_models(
        [(m.name, "candidate", m.record()) for m in cfg.models]
        + ([(cfg.references.model.name, "reference", cfg.references.model.record())]
           if cfg.references.source == "model" and cfg.references.model else [])
    )
    store.set_plan((p.key, p.model, p.role, p.item, p.repeat) for p in plan)
    return images, plan


def finish(cfg: RunConfig, store: Store, run_dir: Path, *, requests_made: int = 0,
           show_progress: bool = True, judge: bool = True,
           images: dict[str, PreparedImage | str] | None = None) -> RunResult:
    """The stages after generation: references, score, judge (when enabled) and report."""
    apply_references(cfg, store)
    score_run(cfg, store, show_progress=show_progress)
    notes = []
    if judge and cfg.judge.enabled:
        notes = _judge_notes(judge_run(cfg, store, images=images, show_progress=show_progress))
    summary = write_report(cfg, store, run_dir)
    failed = summary.run.items_failed or any(m.n_errors for m in summary.models.values())
    failed = failed or any(m.judge and m.judge.n_failed for m in summary.models.values())
    return RunResult(run_dir, summary, EXIT_FAILED_ITEMS if failed else EXIT_OK, requests_made, notes)


def _judge_notes(outcome: JudgeOutcome) -> list[str]:
    notes = [f"judge: {outcome.requested} request(s) sent, {outcome.judged} judgement(s) judged, {outcome.failed} "
             f"failed, {outcome.already_done} already done; run cost ${outcome.cost_usd:.4f}"]
    if outcome.stopped:
        notes.append(f"judge stopped by --{outcome.stopped.replace('_', '-')}: {outcome.remaining} judgement(s) "
                     "left; run `vlmpipe judge RUN` again to continue")
    if outcome.reused:
        notes.append(f"judge: {outcome.reused} judgement(s) reused the stored answer to an identical request instead "
                     f"of sending it (saved ${outcome.cost_saved_usd:.4f} so far)")
    notes += [f"judge: {n} generation(s) not judged: {why}" for why, n in outcome.skipped.items()]
    return notes + outcome.notes


def run_config(run_dir: str | Path) -> RunConfig:
    """The saved config of a run directory, with its task's defaults (a :class:`ConfigError` names the file)."""
    cfg = load_run_config(run_dir)
    try:
        resolve(cfg)
    except ConfigError as err:
        raise ConfigError(f"{Path(run_dir) / 'config.yaml'}: {err}") from None
    return cfg


def judge(run_dir: str | Path, *, max_cost: float | None = None, limit: int | None = None,
          show_progress: bool = True) -> RunResult:
    """Run the judge stage of an existing run (what is not judged yet) and re-write its report.

    Exit code 1 when some judgements failed. Raises ``ConfigError`` when the run's config has no judge.
    """
    cfg = run_config(run_dir)
    if not cfg.judge.judges:
        from vlmpipe.analysis.judge import NOT_CONFIGURED

        raise ConfigError(f"{Path(run_dir) / 'config.yaml'}: {NOT_CONFIGURED}")
    require_api_keys(cfg, generate=False, judge=True, source=str(Path(run_dir) / "config.yaml"))
    with existing_store(run_dir) as store:
        apply_references(cfg, store)
        try:
            outcome = judge_run(cfg, store, max_cost=max_cost, limit=limit, show_progress=show_progress)
        except ConfigError as err:  # say which file to edit
            raise ConfigError(f"{Path(run_dir) / 'config.yaml'}: {err}") from None
        summary = write_report(cfg, store, Path(run_dir))
    failed = any(m.judge and m.judge.n_failed for m in summary.models.values())
    return RunResult(Path(run_dir), summary, EXIT_FAILED_ITEMS if failed else EXIT_OK, outcome.requested,
                     _judge_notes(outcome))


def score(run_dir: str | Path, *, show_progress: bool = True) -> RunResult:
    """Re-score and re-report an existing run (e.g. an imported one, or after adding a metric)."""
    if _in_running_loop():
        return _off_loop(score, run_dir, show_progress=show_progress)
    cfg = run_config(run_dir)
    with existing_store(run_dir) as store:
        return finish(cfg, store, Path(run_dir), show_progress=show_progress, judge=False)


def report(run_dir: str | Path) -> RunResult:
    """Re-write the report of an existing run from its store."""
    cfg = run_config(run_dir)
    with existing_store(run_dir) as store:
        summary = write_report(cfg, store, Path(run_dir))
    return RunResult(Path(run_dir), summary, EXIT_OK)


def bench(config: RunConfig | str | Path, settings: BenchSettings | None = None,
          log: Callable[[str], None] = lambda _m: None) -> RunResult:
    """``vlmpipe bench``: serving latency and throughput of every model, then the run's report (its summary.json
    has the ``bench`` section, and ``report/bench.png`` draws it)."""
    from vlmpipe.stages.bench import run_bench

    measured = run_bench(config, settings, log=log)
    with existing_store(measured.run_dir) as store:
        summary = write_report(measured.cfg, store, measured.run_dir)
    return RunResult(measured.run_dir, summary, measured.exit_code)


def compare(run_a: str | Path, run_b: str | Path, *, out: Path | None = None) -> Comparison:
    """Compare two runs' summaries; with ``out``, also write ``compare.json`` and ``compare.html`` there."""
    from vlmpipe.analysis.compare import compare_runs, headline
    from vlmpipe.render.compare_html import render_compare

    result = compare_runs(run_a, run_b)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2),
                                          encoding="utf-8")
        (out / "compare.html").write_text(render_compare(result, headline()), encoding="utf-8")
    return result


# --- batch engines (docs/judge.md: "Batch") ----------------------------------------------------------------------
def _batch_target(target: str | Path) -> tuple[RunConfig, Path]:
    """A run directory, or a config file (its run directory is made and planned, nothing is generated)."""
    path = Path(target)
    if path.is_file():
        cfg = load_config(path)
        try:
            resolve(cfg)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
        save_config(cfg, Path(cfg.run_dir), source=str(path))
        return cfg, Path(cfg.run_dir)
    return run_config(path), path


def batch_export(target: str | Path, stage: str, out: Path, *, model: str | None = None) -> Any:
    """``vlmpipe batch export``: what ``stage`` still lacks, as an OpenAI batch input file (returns the
    :class:`~vlmpipe.stages.batch.files.ExportOutcome`). The run is prepared first (items, plan), as ``vlmpipe run``
    does before generating; for the judge, the references are chosen first."""
    from vlmpipe.stages.batch.files import export_requests

    cfg, run_dir = _batch_target(target)
    dataset = load_task_items(cfg)
    with open_store(run_dir) as store:
        images, _plan = prepare(cfg, store, dataset)
        apply_references(cfg, store)
        return export_requests(cfg, store, stage, images, out, model=model)


def batch_import(run_dir: str | Path, results: Path, *, show_progress: bool = True) -> RunResult:
    """``vlmpipe batch import``: a results file stored as if requested live, then the references, scores and
    report, as after a live stage. Exit code 1 when some answers are errors."""
    from vlmpipe.stages.batch.files import import_results
    from vlmpipe.stages.judge.run import load_item_images

    cfg = run_config(run_dir)
    with existing_store(run_dir) as store:
        images = load_item_images(cfg, store.items())
        apply_references(cfg, store)
        outcome = import_results(cfg, store, results, images)
        result = finish(cfg, store, Path(run_dir), judge=False, show_progress=show_progress, images=images)
    result.notes = [f"batch import: {outcome.answers} answer(s) stored for {outcome.stored} "
                    f"{'judgement' if outcome.stage == 'judge' else 'generation'}(s)"
                    + (f" ({outcome.reused} reused an identical request's answer)" if outcome.reused else ""),
                    *outcome.notes, *result.notes]
    if outcome.failed:
        result.exit_code = EXIT_FAILED_ITEMS
    return result


def batch_submit(run_dir: str | Path, stage: str, *, model: str | None = None, poll_interval_s: float = 30.0,
                 wait: bool = True, show_progress: bool = True) -> RunResult:
    """``vlmpipe batch submit``: the stage's missing requests through the OpenAI Batch API (one batch per model),
    polled to the end and imported; a second call polls the stored batches instead of submitting again."""
    from vlmpipe.stages.batch.submit import submit

    cfg = run_config(run_dir)
    where = str(Path(run_dir) / "config.yaml")
    if stage == "judge":
        require_api_keys(cfg, generate=False, judge=True, source=where)
    else:
        require_api_keys(cfg, generate=stage == "generate", references=stage == "references", judge=False,
                         source=where)
    with existing_store(run_dir) as store:
        from vlmpipe.stages.judge.run import load_item_images

        images = load_item_images(cfg, store.items())
        apply_references(cfg, store)
        outcome = submit(cfg, store, stage, images, Path(run_dir) / "batches", model=model,
                         poll_interval_s=poll_interval_s, wait=wait, show_progress=show_progress)
        if outcome.imported:
            result = finish(cfg, store, Path(run_dir), judge=False, show_progress=show_progress, images=images)
        else:
            result = RunResult(Path(run_dir), write_report(cfg, store, Path(run_dir)), EXIT_OK)
    result.notes = [*outcome.notes, *result.notes]
    if outcome.failed:
        result.exit_code = EXIT_FAILED_ITEMS
    return result
