"""``vlmpipe compare RUN_A RUN_B``: two runs' summaries side by side.

For every model both runs have and every numeric field both summaries have (nested fields dotted, e.g.
``latency_s.p50``, ``judge.ratio_mean``), the two values and B − A. Where both runs have a 95% interval
(``judge.ratio_ci95``) it says whether the intervals overlap: intervals that do not overlap mean the change is
beyond the run-to-run noise the intervals describe; overlapping ones do not prove there is no change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vlmpipe.analysis import access

#: The fields the console shows by default (``--all`` shows every numeric field).
HEADLINE = ["n_errors", "judge.ratio_mean", "chrf_mean", "rouge1_f_mean", "bleurt_mean", "fact_recall_mean",
            "hallucinated_number_rate", "off_language_rate", "consistency_mean", "latency_s.p50", "latency_s.max",
            "length_chars_mean", "chars_per_s_mean", "gpu_memory_gb_peak"]

#: Interval fields: (interval path, the mean it belongs to).
INTERVALS = [("judge.ratio_ci95", "judge.ratio_mean")]


def summary_file(run: str | Path) -> Path:
    """A run's ``report/summary.json`` (given a run directory, its report folder, or the file itself)."""
    p = Path(run)
    for candidate in (p / "report" / "summary.json", p / "summary.json", p):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{run}: no report/summary.json (run `vlmpipe report {run}` first)")


def read_summary(run: str | Path) -> dict[str, Any]:
    """The summary; a file that is not a JSON object is a ``ValueError`` saying how to write it again."""
    path = summary_file(run)
    run = path.parent.parent if path.parent.name == "report" else path.parent  # the run directory
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); run `vlmpipe report {run}` to write it again") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("models"), dict):
        raise ValueError(f"{path}: not a vlmpipe summary (no \"models\"); run `vlmpipe report {run}` to write it")
    return loaded


def written_at(path: Path) -> str:
    """When a file was last written, in UTC to the minute (summary.json holds no date of its own)."""
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def numeric_fields(model: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in model.items():
        if k in ("unavailable", "errors_by_kind"):
            continue
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(numeric_fields(v, f"{path}."))
        elif (n := access.number(v)) is not None:
            out[path] = n
    return out


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def compare_summaries(a: dict[str, Any], b: dict[str, Any], *, name_a: str = "A", name_b: str = "B"
                      ) -> dict[str, Any]:
    common = [m for m in access.models(a) if m in b.get("models", {})]
    models: dict[str, Any] = {}
    for m in common:
        fa, fb = numeric_fields(a["models"][m]), numeric_fields(b["models"][m])
        metrics = {f: {"a": fa[f], "b": fb[f], "diff": fb[f] - fa[f]} for f in fa if f in fb}
        for ipath, mean_path in INTERVALS:
            ia, ib = access.interval(a, m, ipath), access.interval(b, m, ipath)
            if ia and ib and mean_path in metrics:
                metrics[mean_path].update(ci95_a=list(ia), ci95_b=list(ib), intervals_overlap=overlap(ia, ib))
        models[m] = metrics
    return {
        "a": {"name": name_a, "run": a.get("run", {})},
        "b": {"name": name_b, "run": b.get("run", {})},
        "models": models,
        "only_a": [m for m in access.models(a) if m not in b.get("models", {})],
        "only_b": [m for m in access.models(b) if m not in a.get("models", {})],
    }


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict[str, Any]:
    """Compare two runs' summaries. Each side also gets ``summary_written``: when its summary.json was written (UTC).
    """
    file_a, file_b = summary_file(run_a), summary_file(run_b)
    result = compare_summaries(read_summary(file_a), read_summary(file_b), name_a=str(run_a), name_b=str(run_b))
    result["a"]["summary_written"], result["b"]["summary_written"] = written_at(file_a), written_at(file_b)
    return result
