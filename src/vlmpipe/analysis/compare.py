"""``vlmpipe compare RUN_A RUN_B``: two runs' summaries side by side.

For every model both runs have and every number both summaries have (catalogue fields first, in the catalogue's
order, then any other number, dotted: ``latency_s.p95``, ``judge.tie_rate``), the two values and B − A. Where both
runs have a field's 95% interval (``fields.<key>.ci95``: chrF, fact recall, the judge ratio...; for summaries
written before ``fields`` existed, the judge's ``ratio_ci95``) it says whether the intervals overlap: intervals
that do not overlap mean the change is beyond the run-to-run noise the intervals describe; overlapping ones do not
prove there is no change. Summaries of schema 1 of any vlmpipe version are read; another schema is an error.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from vlmpipe.analysis.catalogue import catalogue, headline_fields
from vlmpipe.analysis.summary import SCHEMA_VERSION, RunInfo, RunSummary, number

#: What ``numeric_fields`` leaves out: the per-field records (compared through their values) and the counts by kind.
SKIP = {"fields", "unavailable", "errors_by_kind", "within_item_std", "injection"}


def headline() -> list[str]:
    """The fields the console shows by default (``--all`` shows every number)."""
    return [f.key for f in headline_fields()]


def summary_file(run: str | Path) -> Path:
    """A run's ``report/summary.json`` (given a run directory, its report folder, or the file itself)."""
    p = Path(run)
    for candidate in (p / "report" / "summary.json", p / "summary.json", p):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{run}: no report/summary.json (run `vlmpipe report {run}` first)")


def read_summary(run: str | Path) -> RunSummary:
    """The typed summary; a file that is not a vlmpipe summary is a ``ValueError`` saying how to write it again."""
    path = summary_file(run)
    run = path.parent.parent if path.parent.name == "report" else path.parent  # the run directory
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); run `vlmpipe report {run}` to write it again") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("models"), dict):
        raise ValueError(f"{path}: not a vlmpipe summary (no \"models\"); run `vlmpipe report {run}` to write it")
    if loaded.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError(f"{path}: summary schema {loaded.get('schema')!r}, but this vlmpipe reads schema "
                         f"{SCHEMA_VERSION}; compare runs written by the same major version")
    try:
        return RunSummary.model_validate(loaded)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: not a vlmpipe summary ({where}: {first['msg']}); run `vlmpipe report {run}` "
                         "to write it again") from None


def written_at(path: Path) -> str:
    """When a file was last written, in UTC to the minute (summary.json holds no date of its own)."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def numeric_fields(model: BaseModel | dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every number of a model's summary under its dotted key."""
    data = model.model_dump() if isinstance(model, BaseModel) else model
    out: dict[str, float] = {}
    for k, v in data.items():
        if k in SKIP and not prefix:
            continue
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(numeric_fields(v, f"{path}."))
        elif (n := number(v)) is not None:
            out[path] = n
    return out


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


class Compared(BaseModel):
    """One number of one model in both runs: A, B, B − A, and where both runs have its 95% interval, both
    intervals and whether they overlap."""

    a: float
    b: float
    diff: float
    ci95_a: list[float] | None = None
    ci95_b: list[float] | None = None
    intervals_overlap: bool | None = None


class ComparedRun(BaseModel):
    """One side: the path it was given as (``name``), its summary's ``run`` section, when the summary was written."""

    name: str
    run: RunInfo
    summary_written: str | None = None


class Comparison(BaseModel):
    """The result of ``vlmpipe compare`` (``compare.json`` is :meth:`to_dict`)."""

    a: ComparedRun
    b: ComparedRun
    models: dict[str, dict[str, Compared]] = Field(
        default_factory=dict, description="{model in both runs: {field: Compared}}, catalogue fields first")
    only_a: list[str] = Field(default_factory=list)
    only_b: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="how the two runs differ besides their models: "
                             "task, prompts, screenshots (a difference may come from these)")

    def to_dict(self) -> dict[str, Any]:
        """``compare.json``: a field's interval keys only where both runs have its interval; ``summary_written`` only
        when known."""
        out = self.model_dump(mode="json")
        for side in ("a", "b"):
            if out[side]["summary_written"] is None:
                del out[side]["summary_written"]
        out["models"] = {m: {k: v.model_dump(mode="json", exclude_none=True) for k, v in fields.items()}
                         for m, fields in self.models.items()}
        return out


def compare_summaries(a: RunSummary, b: RunSummary, *, name_a: str = "A", name_b: str = "B") -> Comparison:
    """Every model both summaries have, every number both have for it (catalogue fields in catalogue order, then
    the other numbers), and the models only one has."""
    order = {f.key: i for i, f in enumerate(catalogue())}
    models: dict[str, dict[str, Compared]] = {}
    for m in (n for n in a.names() if n in b.models):
        ma, mb = a.models[m], b.models[m]
        fa, fb = numeric_fields(ma), numeric_fields(mb)
        keys = sorted((k for k in fa if k in fb), key=lambda k: (order.get(k, len(order)), list(fa).index(k)))
        metrics: dict[str, Compared] = {}
        for k in keys:
            same = math.isclose(fa[k], fb[k], rel_tol=1e-12, abs_tol=1e-12)  # a mean summed in another order
            entry = Compared(a=fa[k], b=fb[k], diff=0.0 if same else fb[k] - fa[k])
            ia, ib = ma.interval(k), mb.interval(k)
            if ia and ib:
                entry = entry.model_copy(update={"ci95_a": list(ia), "ci95_b": list(ib),
                                                 "intervals_overlap": overlap(ia, ib)})
            metrics[k] = entry
        models[m] = metrics
    return Comparison(
        a=ComparedRun(name=name_a, run=a.run), b=ComparedRun(name=name_b, run=b.run), models=models,
        only_a=[m for m in a.names() if m not in b.models], only_b=[m for m in b.names() if m not in a.models],
        notes=differences(a.run, b.run))


def differences(a: RunInfo, b: RunInfo) -> list[str]:
    """What, besides the models, differs between the runs and may explain a difference in their numbers."""
    notes = []
    if a.task != b.task:
        notes.append(f"A is a {a.task} run and B a {b.task} run: the same field measures different things in them "
                     "(other prompts, references and judge); compare runs of one task.")
    if a.prompt_hash and b.prompt_hash and a.prompt_hash != b.prompt_hash:
        notes.append(f"The two runs used different prompts (prompt hash {a.prompt_hash} in A, {b.prompt_hash} in B): "
                     "a difference may come from the prompt, not the model.")
    shots_a, shots_b = a.screenshots or a.items, b.screenshots or b.items
    if (a.items, shots_a) != (b.items, shots_b):
        def size(r: RunInfo, shots: int) -> str:
            return f"{r.items} items on {shots} screenshots" if r.items != shots else f"{r.items} screenshots"
        notes.append(f"A has {size(a, shots_a)}, B {size(b, shots_b)}: the runs are not over the same data, and a "
                     "difference may come from the screenshots.")
    return notes


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Compare two runs' summaries. Each side also gets ``summary_written``: when its summary.json was written (UTC).
    """
    file_a, file_b = summary_file(run_a), summary_file(run_b)
    result = compare_summaries(read_summary(file_a), read_summary(file_b), name_a=str(run_a), name_b=str(run_b))
    result.a.summary_written, result.b.summary_written = written_at(file_a), written_at(file_b)
    return result
