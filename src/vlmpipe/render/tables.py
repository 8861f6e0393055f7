"""Tables of a run: the per-generation CSV (a contract, see DESIGN.md) and the xlsx workbook.

The workbook has the sheets of the original pipeline's three files plus the per-model summary: ``summary`` (one
row per model, flattened from the typed summary: every catalogue field the run has with its intervals split into
``.lo``/``.hi``), ``tech_stats`` (per generation: timings, length, speed and the columns of the metrics with a
technical field — spelling, letters, language, perplexity: ``summary_test_stats.xlsx``), ``auto_metrics`` (per
generation with the reference: every other metric — overlap, semantic, grounding: ``auto_metrics_stats.xlsx``),
``judgements`` (per judgement:
scores and explanations — ``judgement_scores.xlsx``; says "judge not run" when the store has none) and
``generations`` (the full contract table). Each sheet is also written as CSV.

Model output is untrusted: in the workbook a text beginning with ``=``, ``+``, ``-`` or ``@`` is stored as a
string cell, never as a formula. The CSV keeps texts exactly as generated, for machines to read.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from vlmpipe.analysis.catalogue import catalogue, technical_columns
from vlmpipe.analysis.summary import ModelSummary, RunSummary, number
from vlmpipe.core.fields import SummaryField
from vlmpipe.metrics.base import REGISTRY

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


#: Per-model entries the summary sheet leaves out: lists and counts by kind (``errors_by_kind`` is the Errors table;
#: ``unavailable`` the reasons) and the per-field records, flattened from the catalogue instead.
NOT_FLATTENED = {"fields", "unavailable", "errors_by_kind", "within_item_std"}


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars under dotted keys; a two-number list is an interval, split into ``.lo`` and ``.hi``."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, f"{key}."))
        elif isinstance(v, list):
            if len(v) == 2 and all(number(x) is not None for x in v):
                out[f"{key}.lo"], out[f"{key}.hi"] = v
        elif v is not None:
            out[key] = v
    return out


def _field_columns(m: ModelSummary, f: SummaryField) -> dict[str, Any]:
    """A catalogue field's columns: its value, and for a mean or rate both 95% intervals."""
    out: dict[str, Any] = {f.key: m.value(f.key)}
    if f.interval:
        for name, naive in (("ci95", False), ("ci95_naive", True)):
            ci = m.interval(f.key, naive=naive)
            out[f"{f.key}.{name}.lo"], out[f"{f.key}.{name}.hi"] = ci if ci else (None, None)
    return out


def flatten_summary(summary: RunSummary) -> tuple[list[str], list[list[Any]]]:
    """One row per model: ``model``, ``role``, then every catalogue field some model has (plugins' included), in
    catalogue order, with its intervals (``chrf_mean.ci95.lo``...), then the summary's other numbers and labels
    (``judge.tie_rate``, ``judge.ratio_ci95.lo``, ``perplexity_scorer``...)."""
    names = summary.names()
    fields = [f for f in catalogue() if summary.present(f.key, names)]
    flat_rows: list[dict[str, Any]] = []
    for name in names:
        m = summary.models[name]
        flat: dict[str, Any] = {"model": name, "role": m.role}
        for f in fields:
            flat.update(_field_columns(m, f))
        rest = _flat({k: v for k, v in m.model_dump(mode="json").items() if k not in NOT_FLATTENED})
        flat.update({k: v for k, v in rest.items() if k not in flat})
        flat_rows.append(flat)
    header: list[str] = []
    for f in flat_rows:
        header += [k for k in f if k not in header]
    return header, [[f.get(h) for h in header] for f in flat_rows]


def detail_text(detail: Any) -> str | None:
    """A metric's detail as a cell: listed words joined by commas, a dict as ``k: v`` pairs."""
    if isinstance(detail, list):
        return ", ".join(str(x) for x in detail) or None
    if isinstance(detail, dict):
        for key in ("words", "numbers", "missing"):  # the list a metric's detail is about
            if isinstance(detail.get(key), list):
                return ", ".join(str(x) for x in detail[key]) or None
        return "; ".join(f"{k}: {v}" for k, v in detail.items()) or None
    return None


def per_generation_sheet(table: list[dict[str, Any]], items: dict[str, dict[str, Any]], *, tech: bool
                         ) -> tuple[list[str], list[list[Any]]]:
    """The technical (``tech=True``) or automatic-metrics sheet: one row per generation, the metric columns of that
    kind that this run has, and a ``<metric>_detail`` column where a metric lists words (misspellings,
    invented numbers, missing facts). A metric's columns are technical when any of its fields is
    (:func:`vlmpipe.analysis.catalogue.technical_columns`); a recorded score (``recorded_<column>``) goes with its
    column, any other stored score with the automatic metrics."""
    technical = technical_columns()
    cols = [c for c in metric_columns(table) if (c.removeprefix("recorded_") in technical) == tech]
    details = [c for c in cols if any(detail_text(r["metrics"].get(c, (None, None))[1]) for r in table)]
    if tech:
        base = ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s", "length_chars", "chars_per_s",
                "output_tokens_per_s", "prompt_tokens", "completion_tokens"]
    else:
        base = ["model", "item", "repeat", "text", "reference"]
    header = base + [h for c in cols for h in ([c, f"{c}_detail"] if c in details else [c])]
    rows = []
    for r in table:
        row = [items.get(r["item"], {}).get("reference") if c == "reference" else r.get(c) for c in base]
        for c in cols:
            v, d = r["metrics"].get(c, (None, None))
            row.append(cell_value(v, d))
            if c in details:
                row.append(detail_text(d))
        rows.append(row)
    return header, rows


JUDGEMENT_FIRST = ["model", "item", "repeat", "candidate_position", "candidate", "reference", "reference_score",
                   "candidate_score", "explanation_candidate", "explanation_reference", "explanation", "error",
                   "error_kind"]
#: Judge columns left out of the sheet: internal keys and hashes (the raw answer stays, for failed rows).
JUDGEMENT_HIDDEN = {"key", "generation_key", "signature", "reference_sha"}


def judgement_rows(judgements: list[dict[str, Any]], items: dict[str, dict[str, Any]]
                   ) -> tuple[list[str], list[list[Any]]]:
    """One row per stored judgement: who, what was compared, both scores, the explanation, then the rest."""
    rows = [{**j, "reference": j.get("reference") or items.get(j.get("item"), {}).get("reference")}
            for j in judgements]
    present = [c for c in JUDGEMENT_FIRST if any(c in r for r in rows)]
    rest: list[str] = []
    for r in rows:
        rest += [k for k in r if k not in present and k not in rest and k not in JUDGEMENT_HIDDEN]
    header = present + rest
    return header, [[_cell(r.get(h)) for h in header] for r in rows]


def _cell(v: Any) -> Any:
    return detail_text(v) if isinstance(v, list | dict) else v


def workbook_tables(summary: RunSummary, table: list[dict[str, Any]], items: dict[str, dict[str, Any]],
                    judgements: list[dict[str, Any]] | None) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every sheet of the workbook as ``{name: (header, rows)}``; ``judgements`` is ``None`` when not run."""
    sheets = {
        "summary": flatten_summary(summary),
        "tech_stats": per_generation_sheet(table, items, tech=True),
        "auto_metrics": per_generation_sheet(table, items, tech=False),
    }
    if judgements is not None:
        sheets["judgements"] = judgement_rows(judgements, items)
    else:
        why = (summary.judge_status.message if summary.judge_status else "") or (
            "enable the judge in the run's config and run `vlmpipe judge RUN`")
        sheets["judgements"] = (["judge"], [[f"judge not run: {why}"]])
    sheets["generations"] = generation_rows(table)
    return sheets


WIDTHS = {"model": 32, "item": 18, "repeat": 7, "text": 60, "candidate": 60, "reference": 60, "explanation": 70,
          "error": 30, "judge": 90}


def write_workbook(path: Path, summary: RunSummary, table: list[dict[str, Any]],
                   items: dict[str, dict[str, Any]] | None = None,
                   judgements: list[dict[str, Any]] | None = None) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Write the workbook; returns its sheets (so the caller can write the same tables as CSV)."""
    sheets = workbook_tables(summary, table, items or {}, judgements)
    wb = Workbook()
    first = True
    for name, (header, rows) in sheets.items():
        ws = wb.active if first else wb.create_sheet(name)
        ws.title = name
        first = False
        widths = {h: WIDTHS.get(h, 60 if h.endswith("_detail") else max(10, min(24, len(h) + 2))) for h in header}
        write_sheet(ws, header, rows, widths=widths)
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    wb.save(path)
    return sheets
