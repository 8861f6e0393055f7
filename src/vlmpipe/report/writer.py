"""Writes ``report/`` of a run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..aggregate import build_summary, generation_table
from ..config import RunConfig
from ..judge.export import write_judge_files
from ..store import Store
from .tables import generation_rows, write_csv, write_workbook


def write_report(cfg: RunConfig, store: Store, run_dir: Path) -> dict[str, Any]:
    """Write summary.json, generations.csv and results.xlsx; returns the summary."""
    out = Path(run_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    summary = build_summary(cfg, store)
    table = generation_table(store)
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    header, rows = generation_rows(table)
    write_csv(out / "generations.csv", header, rows)
    write_workbook(out / "results.xlsx", summary, table)
    write_judge_files(store, out)
    return summary
