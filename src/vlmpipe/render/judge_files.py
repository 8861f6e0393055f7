"""``report/judgements.csv`` (one row per judge answer of the current judge signature) and
``report/references.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

from vlmpipe.core.store import Store
from vlmpipe.stages.references import write_references_csv

COLUMNS = ["model", "item", "repeat", "candidate_position", "candidate_score", "reference_score",
           "explanation_candidate", "explanation_reference", "error", "error_kind", "raw", "attempts",
           "prompt_tokens", "completion_tokens", "cost_usd", "latency_s"]


def write_judge_files(store: Store, out_dir: Path) -> None:
    """A judge panel's judgements.csv has every judge's rows and a last column ``judge``."""
    write_references_csv(store, Path(out_dir) / "references.csv")
    meta = store.judge_meta()
    signature = meta.get("signature")
    if not signature:
        return
    judges = meta.get("judges") or []
    columns = [*COLUMNS, "judge"] if judges else COLUMNS
    rows = [r for sig in ([j["signature"] for j in judges] or [signature]) for r in store.judgements(signature=sig)]
    with (Path(out_dir) / "judgements.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in sorted(rows, key=lambda r: (r["model"], r["item"], r["repeat"], r["candidate_position"] or "",
                                             r.get("judge") or "")):
            w.writerow(["" if r.get(c) is None else r[c] for c in columns])
