"""The ``vlmpipe`` command line. Exit codes: 0 completed, 1 completed with failed items, 2 could not start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .config import ConfigError
from .dataset import DatasetError

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
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(2)


def _ranking_table(summary: dict[str, Any]) -> Table:
    from .report.console import ranking_table

    return ranking_table(summary)


def _get(d: dict[str, Any], path: str) -> Any:
    cur: Any = d
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _finish(result: Any) -> None:
    console.print(_ranking_table(result.summary))
    for note in getattr(result, "notes", []):
        console.print(note, highlight=False, markup=False)
    status = result.summary.get("judge_status") or {}
    if status.get("state") in ("not_configured", "not_run"):
        console.print(f"judge: {status['message']}", highlight=False, markup=False)
    report_dir = result.report_dir
    index = report_dir / "index.html"
    console.print(f"report: {index if index.exists() else report_dir / 'summary.json'}")
    raise typer.Exit(result.exit_code)


@app.command()
def run(config: Annotated[Path, typer.Argument(help="The run's YAML config.")], quiet: Quiet = False) -> None:
    """Run every stage of CONFIG: generate, score, judge, report. Finished work is reused."""
    from .pipeline import run as run_pipeline

    try:
        result = run_pipeline(config, show_progress=not quiet)
    except (ConfigError, DatasetError) as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for run directories.")] = Path("runs"),
    quiet: Quiet = False,
) -> None:
    """Run the bundled offline demo (OCR baseline on synthetic screenshots)."""
    from .demo import demo_config
    from .pipeline import run as run_pipeline

    result = run_pipeline(demo_config(out), show_progress=not quiet)
    _finish(result)


@app.command()
def score(run_dir: RunDir, quiet: Quiet = False) -> None:
    """Compute the metrics of an existing run (new metrics only) and re-write its report."""
    from .pipeline import score as score_pipeline

    try:
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
    from .pipeline import judge as judge_pipeline

    try:
        result = judge_pipeline(run_dir, max_cost=max_cost, limit=limit, show_progress=not quiet)
    except ConfigError as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def report(run_dir: RunDir) -> None:
    """Re-write the report of an existing run from its store."""
    from .pipeline import report as report_pipeline

    try:
        result = report_pipeline(run_dir)
    except ConfigError as err:
        _fail_start(str(err))
    _finish(result)


@app.command()
def compare(
    run_a: RunDir,
    run_b: RunDir,
    out: Annotated[Path | None, typer.Option(help="Write compare.json into this folder.")] = None,
    all_fields: Annotated[bool, typer.Option("--all", help="Every numeric field, not only the headline ones.")] = False,
) -> None:
    """Put two runs' summaries side by side: common models and metrics, B − A, interval overlap."""
    from .compare import HEADLINE, compare_runs
    from .report.console import compare_table

    try:
        result = compare_runs(run_a, run_b, out=out)
    except FileNotFoundError as err:
        _fail_start(str(err))
    console.print(f"A = {run_a}\nB = {run_b}", highlight=False)
    if result["models"]:
        console.print(compare_table(result, None if all_fields else HEADLINE))
    else:
        console.print("no models in common")
    for side in ("only_a", "only_b"):
        if result[side]:
            console.print(f"only in {side[-1].upper()}: {', '.join(result[side])}")
    if out is not None:
        console.print(f"written: {out / 'compare.json'}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
