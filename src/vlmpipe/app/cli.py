"""The ``vlmpipe`` command line. Exit codes: 0 completed, 1 completed with failed items, 2 could not start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vlmpipe.core.config import ConfigError
from vlmpipe.core.dataset import DatasetError

if TYPE_CHECKING:
    from vlmpipe.analysis.summary import RunSummary

app = typer.Typer(
    help="Evaluate vision-language models that turn support screenshots into user requests.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

RunDir = Annotated[Path, typer.Argument(help="A run directory (runs/<name>).", exists=True, file_okay=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _fail_start(message: str) -> None:
    # the message may quote user data (a path, a key with brackets): escaped, and never wrapped mid-path
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C: say what was kept and how to go on (exit 130, as the shell expects), instead of exiting silently."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print("interrupted: everything that finished is stored in the run directory; run the same "
                          "command again to continue (only what is missing is sent)", highlight=False, markup=False)
        raise typer.Exit(130) from None


def _make_out_dir(out: Path) -> None:
    """The folder an ``--out`` option names, or a one-line error (exit 2) instead of a traceback."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from vlmpipe.core.folders import why_not_written

        _fail_start(f"--out {out}: cannot create the folder: {why_not_written(out, err)}")


def _ranking_table(summary: RunSummary) -> Table:
    from vlmpipe.render.console import ranking_table

    return ranking_table(summary, width=console.width)


def _show(result: Any, judge_hint: str | None = None) -> None:
    """The ranking, the notes, the judge's state (and ``judge_hint`` when it is not configured), the report."""
    console.print(_ranking_table(result.summary))
    for note in getattr(result, "notes", []):
        console.print(note, highlight=False, markup=False)
    status = result.summary.judge_status
    if status is not None and status.state in ("not_configured", "not_run"):
        hint = f"; {judge_hint}" if judge_hint and status.state == "not_configured" else ""
        console.print(f"judge: {status.message}{hint}", highlight=False, markup=False)
    if result.exit_code == 1:
        from vlmpipe.render.console import failures_note

        note = failures_note(result.summary)
        if note:
            console.print(note, highlight=False, markup=False)
    report_dir = result.report_dir
    index = report_dir / "index.html"
    console.print(f"report: {index if index.exists() else report_dir / 'summary.json'}")


def _finish(result: Any, judge_hint: str | None = None) -> None:
    _show(result, judge_hint)
    raise typer.Exit(result.exit_code)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="The run's YAML config.")],
    quiet: Quiet = False,
    max_time: Annotated[float | None, typer.Option(
        "--max-time", min=0.001, help="Stop generating after SECONDS; what is done is stored and reported "
                                      "(overrides max_run_time_s).")] = None,
) -> None:
    """Run every stage of CONFIG: generate, score, judge, report. Finished work is reused."""
    from vlmpipe.app.pipeline import run as run_pipeline

    try:
        with _interruptible():
            result = run_pipeline(config, show_progress=not quiet, max_time_s=max_time)
    except (ConfigError, DatasetError) as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for run directories.")] = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Run the bundled offline demo (OCR baseline on synthetic screenshots): screen annotation into OUT/demo, then
    visual question answering into OUT/demo-vqa."""
    from vlmpipe.app.demo import CONFIGS, demo_config
    from vlmpipe.app.demo.judge_env import DEMO_HINT
    from vlmpipe.app.pipeline import run as run_pipeline

    _make_out_dir(out)
    worst = 0
    for task in CONFIGS:
        try:
            with _interruptible():
                result = run_pipeline(demo_config(out, task), show_progress=not quiet)
        except (ConfigError, DatasetError) as err:
            _fail_start(str(err))
        _show(result, judge_hint=DEMO_HINT if task == "request" else None)
        worst = max(worst, result.exit_code)
    raise typer.Exit(worst)


@app.command()
def score(run_dir: RunDir, quiet: Quiet = False) -> None:
    """Compute the metrics of an existing run (new metrics only) and re-write its report."""
    from vlmpipe.app.pipeline import score as score_pipeline

    try:
        with _interruptible():
            result = score_pipeline(run_dir, show_progress=not quiet)
    except ConfigError as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def judge(
    run_dir: RunDir,
    max_cost: Annotated[float | None, typer.Option("--max-cost", min=0, help="Stop before the run's judge cost "
                                                   "(USD, earlier calls included) would exceed this.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, help="At most N judgements now (one per generation and order).")] = None,
    quiet: Quiet = False,
) -> None:
    """Judge RUN's candidate answers against the references with the LLM judge (what is not judged yet)."""
    from vlmpipe.app.pipeline import judge as judge_pipeline

    try:
        with _interruptible():
            result = judge_pipeline(run_dir, max_cost=max_cost, limit=limit, show_progress=not quiet)
    except ConfigError as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def report(run_dir: RunDir) -> None:
    """Re-write the report of an existing run from its store."""
    from vlmpipe.app.pipeline import report as report_pipeline

    try:
        result = report_pipeline(run_dir)
    except ConfigError as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def compare(
    run_a: RunDir,
    run_b: RunDir,
    out: Annotated[Path | None, typer.Option(help="Write compare.json and compare.html into this folder.")] = None,
    all_fields: Annotated[bool, typer.Option("--all", help="Every numeric field, not only the headline ones.")] = False,
) -> None:
    """Put two runs' summaries side by side: common models and metrics, B − A, interval overlap."""
    from vlmpipe.analysis.compare import headline
    from vlmpipe.app.pipeline import compare as compare_pipeline
    from vlmpipe.render.console import compare_table

    if out is not None:
        _make_out_dir(out)
    try:
        result = compare_pipeline(run_a, run_b, out=out)
    except (FileNotFoundError, ValueError) as err:
        _fail_start(str(err))
    console.print(f"A = {run_a}\nB = {run_b}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    if result.models:
        console.print(compare_table(result, None if all_fields else headline()))
    else:
        console.print("no models in common")
    for side, only in (("A", result.only_a), ("B", result.only_b)):
        if only:
            console.print(f"only in {side}: {', '.join(only)}")
    if out is not None:
        console.print(f"written: {out / 'compare.json'}, {out / 'compare.html'}")


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        _fail_start(f"--concurrency {text!r}: give positive integers separated by commas, e.g. 1,4,16")
    return levels


@app.command()
def bench(
    config: Annotated[Path, typer.Argument(help="The run's YAML config.")],
    concurrency: Annotated[str, typer.Option(help="Concurrency levels, comma-separated.")] = "1,4,16",
    requests: Annotated[int | None, typer.Option(min=1, help="Requests per level (default: "
                                                               "max(items, 4 × concurrency)).")] = None,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up requests per model, not counted.")] = 2,
    freeze_s: Annotated[float, typer.Option(min=0.001, help="A gap longer than this counts as a freeze.")] = 10.0,
    quiet: Quiet = False,
) -> None:
    """Measure serving latency and throughput (TTFT, TPOT, ITL, E2E; p50/p95/p99) at several concurrencies."""
    from vlmpipe.app.pipeline import bench as bench_pipeline
    from vlmpipe.render.bench_table import bench_table
    from vlmpipe.stages.bench import BenchSettings

    settings = BenchSettings(levels=_levels(concurrency), requests=requests, warmup=warmup, freeze_s=freeze_s)
    say = (lambda _m: None) if quiet else (lambda m: err_console.print(m, highlight=False, markup=False))
    try:
        result = bench_pipeline(config, settings, log=say)
    except (ConfigError, DatasetError) as err:
        _fail_start(str(err))
    console.print(bench_table(result.summary.bench, width=console.width))
    console.print(f"bench: {result.run_dir / 'report' / 'summary.json'} (bench), "
                  f"{result.run_dir / 'report' / 'bench.png'}")
    raise typer.Exit(result.exit_code)


@app.command()
def models() -> None:
    """List the model catalogue: presets usable as `preset: NAME` in a model spec."""
    from vlmpipe.core.presets import PRESETS

    # a compact table whose preset names (what a config needs) are never cut in an 80-column terminal; the
    # Hugging Face id and the vLLM arguments follow, one line per preset, wrapping as lines do
    table = Table(title="presets, served with vLLM (GPU GB: the specification's table)")
    table.add_column("preset", no_wrap=True)
    for col in ("size", "weights", "GPU GB"):
        table.add_column(col, no_wrap=True)
    for p in PRESETS.values():
        table.add_row(p.name, p.size, p.weights, f"{p.gpu_memory_gb[0]:.2f}–{p.gpu_memory_gb[1]:.2f}")
    console.print(table)
    for p in PRESETS.values():
        args = {**({"quantization": p.quantization} if p.quantization else {}), **p.launch}
        launch = ", ".join(f"{k}={v}" for k, v in args.items())
        console.print(f"{p.name}: {p.hf_id}; vLLM {launch}", highlight=False, markup=False)


@app.command("import")
def import_(
    out: Annotated[Path, typer.Option("--out", help="The run directory to create.")],
    format: Annotated[str, typer.Option("--format", help="original (the original pipeline's xlsx files), "
                                                   "original-vqa (the study's VQA results) or table.")]
    = "original",
    results: Annotated[Path | None, typer.Option(
        help="original, original-vqa: the folder of its xlsx files; table: the CSV/XLSX/JSONL file.")] = None,
    images: Annotated[Path | None, typer.Option(help="Folder of the screenshots the generations came from.")]
    = None,
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="table: canonical=source column, e.g. --map text=candidate --map model=model_name.")] = None,
) -> None:
    """Import recorded generations into a run directory; then `vlmpipe score RUN` and `vlmpipe report RUN`."""
    from vlmpipe.stages.importers import ImportDataError

    try:
        if results is None:
            raise ImportDataError("--results is required (a results folder, or a table file)")
        if format == "original":
            if map_:
                raise ImportDataError("--map applies to --format table only")
            from vlmpipe.stages.importers.original import import_original

            run_dir = import_original(results, images, out)
        elif format == "original-vqa":
            if map_:
                raise ImportDataError("--map applies to --format table only")
            from vlmpipe.stages.importers.original_vqa import import_original_vqa

            run_dir = import_original_vqa(results, images, out)
        elif format == "table":
            from vlmpipe.stages.importers.table import import_table, parse_mapping

            run_dir = import_table(results, out, mapping=parse_mapping(map_ or []), images=images)
        else:
            raise ImportDataError(f"--format {format!r}: use 'original', 'original-vqa' or 'table'")
    except (ImportDataError, ConfigError) as err:
        _fail_start(str(err))
    console.print(f"imported into {run_dir}; next: vlmpipe score {run_dir}")


batch_app = typer.Typer(
    help="Batch engines: a stage's missing requests as an OpenAI batch file (export), its results stored (import), "
         "or both through the OpenAI Batch API (submit). See docs/judge.md and docs/serving.md.",
    no_args_is_help=True,
)
app.add_typer(batch_app, name="batch")
Stage = Annotated[str, typer.Option("--stage", help="generate (the candidates), references (the reference model) "
                                                    "or judge.")]
BatchModel = Annotated[str | None, typer.Option(
    "--model", help="Only this model's requests (a candidate, the reference model or a judge); a batch holds one "
                    "model's requests.")]


@batch_app.command("export")
def batch_export(
    target: Annotated[Path, typer.Argument(help="A run directory, or a config file (its run is prepared).",
                                           exists=True)],
    stage: Stage,
    out: Annotated[Path, typer.Option("--out", help="The JSONL file to write (OpenAI batch input).")],
    model: BatchModel = None,
) -> None:
    """Write what STAGE still lacks as OpenAI batch requests (custom_id, method, url, body)."""
    from vlmpipe.app.pipeline import batch_export as export
    from vlmpipe.stages.batch import BatchError

    try:
        done = export(target, stage, out, model=model)
    except (BatchError, ConfigError, DatasetError) as err:
        _fail_start(str(err))
    for note in done.notes:
        console.print(note, highlight=False, markup=False)
    if done.reused:
        console.print(f"{done.reused} answer(s) reused from the request cache (not exported)", highlight=False)
    what = "judgement" if stage == "judge" else "generation"
    console.print(f"wrote {done.requests} request(s) for {', '.join(done.models) or 'no model'} answering "
                  f"{done.answers} {what}(s) to {out}", highlight=False, markup=False)
    if done.requests:
        console.print("next: run them (OpenAI Batch API, or `vllm run-batch -i FILE -o results.jsonl --model MODEL`), "
                      "then `vlmpipe batch import RUN results.jsonl`", highlight=False, markup=False)


@batch_app.command("import")
def batch_import(
    run_dir: RunDir,
    results: Annotated[Path, typer.Argument(help="A batch engine's results file (JSONL).", exists=True,
                                            dir_okay=False)],
    quiet: Quiet = False,
) -> None:
    """Store a batch engine's results under their custom_ids, as if requested live; then re-write the report."""
    from vlmpipe.app.pipeline import batch_import as store_results
    from vlmpipe.stages.batch import BatchError

    try:
        result = store_results(run_dir, results, show_progress=not quiet)
    except (BatchError, ConfigError) as err:
        _fail_start(str(err))
    _finish(result)


@batch_app.command("submit")
def batch_submit(
    run_dir: RunDir,
    stage: Stage = "judge",
    model: BatchModel = None,
    poll_interval: Annotated[float, typer.Option("--poll-interval", min=0, help="Seconds between polls.")] = 30.0,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Poll until the batch ends (default), or submit "
                                                               "and return.")] = True,
    quiet: Quiet = False,
) -> None:
    """Submit STAGE's missing requests to the OpenAI Batch API of each model's base_url (one batch per model), poll
    them and import the results. A second call polls the stored batches instead of submitting again."""
    from vlmpipe.app.pipeline import batch_submit as submit
    from vlmpipe.stages.batch import BatchError

    try:
        with _interruptible():
            result = submit(run_dir, stage, model=model, poll_interval_s=poll_interval, wait=wait,
                            show_progress=not quiet)
    except (BatchError, ConfigError) as err:
        _fail_start(str(err))
    _finish(result)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
