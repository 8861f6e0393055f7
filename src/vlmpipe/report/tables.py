"""Tables of a run: the per-generation CSV (a contract, see DESIGN.md) and the xlsx workbook.

Model output is untrusted: in the workbook a text beginning with ``=``, ``+``, ``-`` or ``@`` is stored as a
string cell, never as a formula. The CSV keeps texts exactly as generated, for machines to read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from ..metrics.base import REGISTRY

BASE_COLUMNS = ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s", "length_chars", "chars_per_s"]
EXTRA_COLUMNS = ["role", "error_kind", "output_tokens_per_s", "prompt_tokens", "completion_tokens"]


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Metric columns in registry order, then any other stored metric (e.g. from an import)."""
    present = {m for r in rows for m in r["metrics"]}
    ordered = [c for cls in REGISTRY.values() for c in cls.columns if c in present]
    return ordered + sorted(present - set(ordered))


def cell_value(value: Any, detail: Any) -> Any:
    """A metric's cell: its number, or its detail when the metric is a label (e.g. a language code)."""
    if value is None and isinstance(detail, str | int | float):
        return detail
    return value


def generation_rows(table: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    cols = metric_columns(table)
    header = BASE_COLUMNS + cols + EXTRA_COLUMNS
    rows = []
    for r in table:
        base = [r.get(c) for c in BASE_COLUMNS]
        mets = [cell_value(*r["metrics"][c]) if c in r["metrics"] else None for c in cols]
        rows.append(base + mets + [r.get(c) for c in EXTRA_COLUMNS])
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])


def write_sheet(ws: Worksheet, header: list[str], rows: list[list[Any]], *, widths: dict[str, int] | None = None,
                number_format: str = "0.000") -> None:
    """Header row frozen, texts as plain strings (formula-safe), floats with a number format."""
    ws.append(header)
    for row in rows:
        ws.append([None if v is None else v for v in row])
    for row_cells in ws.iter_rows(min_row=2):
        for cell in row_cells:
            if isinstance(cell.value, str):
                if cell.data_type == "f" or cell.value[:1] in ("=", "+", "-", "@"):
                    cell.data_type = "s"
            elif isinstance(cell.value, float):
                cell.number_format = number_format
    ws.freeze_panes = "A2"
    for i, name in enumerate(header, 1):
        width = (widths or {}).get(name, 60 if name in ("text", "reference", "explanation", "error") else 14)
        ws.column_dimensions[get_column_letter(i)].width = width


def flatten_summary(models: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per model; nested aggregates become ``latency_s.p95``-style columns."""
    flat_rows: list[dict[str, Any]] = []
    for name, s in models.items():
        flat: dict[str, Any] = {"model": name}
        for k, v in s.items():
            if k in ("unavailable", "errors_by_kind"):
                continue
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    if not isinstance(v2, dict | list):
                        flat[f"{k}.{k2}"] = v2
            elif isinstance(v, list):
                flat[k] = ", ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in v)
            else:
                flat[k] = v
        flat_rows.append(flat)
    header: list[str] = []
    for f in flat_rows:
        header += [k for k in f if k not in header]
    return header, [[f.get(h) for h in header] for f in flat_rows]


def write_workbook(path: Path, summary: dict[str, Any], table: list[dict[str, Any]]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "summary"
    header, rows = flatten_summary(summary["models"])
    write_sheet(ws, header, rows, widths={"model": 36})
    gh, gr = generation_rows(table)
    write_sheet(wb.create_sheet("generations"), gh, gr, widths={"model": 30})
    wb.save(path)
