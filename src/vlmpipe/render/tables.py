"""Tables of a run: the per-generation CSV (a contract, see DESIGN.md) and the xlsx workbook.

The workbook has the sheets of the original pipeline's three files plus the per-model summary: ``summary`` (one
row per model, flattened from the typed summary: every catalogue field the run has with its intervals split into
``.lo``/``.hi``), ``tech_stats`` (per generation: timings, length, speed and the columns of the metrics with a
technical field — spelling, letters, language, perplexity: ``summary_test_stats.xlsx``), ``auto_metrics`` (per
generation with the reference: every other metric — overlap, semantic, grounding: ``auto_metrics_stats.xlsx``),
``judgements`` (per judgement:
scores and explanations — ``judgement_scores.xlsx``; says "judge not run" when the store has none) and
``generations`` (the full contract table). Each sheet is also written as CSV.

The per-generation tables are streamed: rows come from the store in chunks (:func:`iter_table`) and go straight into
the CSVs and the workbook (:mod:`vlmpipe.render.xlsx`), so a run of any size is written in constant memory. A sheet
longer than Excel's limit (1,048,576 rows with the header) continues in ``<name> 2``, ``<name> 3``..., and a last
sheet ``notes`` says so; the CSVs hold every row in one file.

Model output is untrusted: in the workbook every text is a string cell, never a formula (whatever it starts with).
The CSV keeps texts exactly as generated.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlmpipe.analysis.aggregate import iter_table
from vlmpipe.analysis.catalogue import catalogue, technical_columns
from vlmpipe.analysis.summary import ModelSummary, RunSummary, number
from vlmpipe.core.fields import SummaryField
from vlmpipe.core.store import Store
from vlmpipe.metrics.base import REGISTRY
from vlmpipe.render.xlsx import MAX_ROWS, Sheet, XlsxWriter, sheet_file

BASE_COLUMNS = ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s", "length_chars", "chars_per_s"]
EXTRA_COLUMNS = ["role", "error_kind", "output_tokens_per_s", "prompt_tokens", "completion_tokens"]


def metric_columns(rows: list[dict[str, Any]]) -> list[str]:
    """Metric columns in registry order, then any other stored metric (e.g. from an import)."""
    return ordered_columns({m for r in rows for m in r["metrics"]})


def ordered_columns(present: Iterable[str]) -> list[str]:
    """These metric columns in registry order, then the others (e.g. recorded by an import) sorted."""
    present = set(present)
    ordered = [c for cls in REGISTRY.values() for c in cls.columns if c in present]
    return ordered + sorted(present - set(ordered))


def cell_value(value: Any, detail: Any) -> Any:
    """A metric's cell: its number, or its detail when the metric is a label (e.g. a language code)."""
    if value is None and isinstance(detail, str | int | float):
        return detail
    return value


def write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(["" if v is None else v for v in row] for row in rows)


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


@dataclass
class GenerationColumns:
    """The columns of a run's per-generation tables: its metric columns (registry order) and those whose detail
    lists words (they get a ``<metric>_detail`` column in the sheets)."""

    metrics: list[str]
    details: set[str]

    @classmethod
    def of_store(cls, store: Store) -> GenerationColumns:
        """From the store, without reading the rows: the metrics scored, and for each whether some detail of it
        lists a word (stops at the first)."""
        metrics = ordered_columns(store.score_metrics())
        return cls(metrics, {m for m in metrics if any(detail_text(d) for d in store.score_details(m))})

    @classmethod
    def of_table(cls, table: list[dict[str, Any]]) -> GenerationColumns:
        metrics = metric_columns(table)
        return cls(metrics, {c for c in metrics if any(detail_text(r["metrics"].get(c, (None, None))[1])
                                                       for r in table)})

    def generations(self) -> tuple[list[str], Any]:
        """The contract table (``generations.csv``, the ``generations`` sheet): its header and a row maker."""
        cols = self.metrics

        def row(r: dict[str, Any]) -> list[Any]:
            mets = [cell_value(*r["metrics"][c]) if c in r["metrics"] else None for c in cols]
            return [r.get(c) for c in BASE_COLUMNS] + mets + [r.get(c) for c in EXTRA_COLUMNS]

        return BASE_COLUMNS + cols + EXTRA_COLUMNS, row

    def sheet(self, items: dict[str, dict[str, Any]], *, tech: bool) -> tuple[list[str], Any]:
        """The technical (``tech=True``) or automatic-metrics sheet: its header and a row maker. A metric's columns
        are technical when any of its fields is (:func:`vlmpipe.analysis.catalogue.technical_columns`); a recorded
        score (``recorded_<column>``) goes with its column, any other stored score with the automatic metrics."""
        technical = technical_columns()
        cols = [c for c in self.metrics if (c.removeprefix("recorded_") in technical) == tech]
        details = [c for c in cols if c in self.details]
        if tech:
            base = ["model", "item", "repeat", "text", "error", "latency_s", "ttft_s", "length_chars", "chars_per_s",
                    "output_tokens_per_s", "prompt_tokens", "completion_tokens"]
        else:
            base = ["model", "item", "repeat", "text", "reference"]
        header = base + [h for c in cols for h in ([c, f"{c}_detail"] if c in details else [c])]
        detailed = set(details)

        def row(r: dict[str, Any]) -> list[Any]:
            out = [items.get(r["item"], {}).get("reference") if c == "reference" else r.get(c) for c in base]
            for c in cols:
                v, d = r["metrics"].get(c, (None, None))
                out.append(cell_value(v, d))
                if c in detailed:
                    out.append(detail_text(d))
            return out

        return header, row


def generation_rows(table: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The contract table of rows held in memory (``generations.csv``)."""
    header, row = GenerationColumns.of_table(table).generations()
    return header, [row(r) for r in table]


def per_generation_sheet(table: list[dict[str, Any]], items: dict[str, dict[str, Any]], *, tech: bool
                         ) -> tuple[list[str], list[list[Any]]]:
    """The technical or automatic-metrics sheet of rows held in memory (see :meth:`GenerationColumns.sheet`)."""
    header, row = GenerationColumns.of_table(table).sheet(items, tech=tech)
    return header, [row(r) for r in table]


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


def judgement_sheet(summary: RunSummary, judgements: list[dict[str, Any]] | None,
                    items: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The ``judgements`` sheet, or one cell saying why the judge has not run."""
    if judgements is not None:
        return judgement_rows(judgements, items)
    why = (summary.judge_status.message if summary.judge_status else "") or (
        "enable the judge in the run's config and run `vlmpipe judge RUN`")
    return ["judge"], [[f"judge not run: {why}"]]


WIDTHS = {"model": 32, "item": 18, "repeat": 7, "text": 60, "candidate": 60, "reference": 60, "explanation": 70,
          "error": 30, "judge": 90}


def _widths(header: list[str]) -> list[float]:
    return [WIDTHS.get(h, 60 if h.endswith("_detail") else max(10, min(24, len(h) + 2))) for h in header]


#: The per-generation tables: ``(name, technical?)``; each is a CSV and a sheet (``None``: the contract table).
ROW_TABLES = (("tech_stats", True), ("auto_metrics", False), ("generations", None))


@dataclass
class SheetParts:
    """A table's sheets as written by :func:`write_row_tables`: ``[(sheet name, XML file, data rows)]``."""

    name: str
    parts: list[tuple[str, Path, int]]

    def note(self, max_rows: int, csv_name: str | None) -> str | None:
        """What the workbook's ``notes`` sheet says when the table was split."""
        if len(self.parts) < 2:
            return None
        total = sum(n for _s, _p, n in self.parts)
        where = ", ".join(f"'{s}' ({n:,})" for s, _p, n in self.parts)
        return (f"{self.name}: {total:,} rows, more than Excel's {max_rows:,} per sheet (header included): split into "
                f"{where}" + (f"; all of them are in {csv_name}" if csv_name else ""))


class _SplitSheet:
    """Sheet files for one table, continuing in ``<name> 2``, ``<name> 3``... past ``max_rows`` rows (header
    included)."""

    def __init__(self, folder: Path, name: str, header: list[str], max_rows: int) -> None:
        self.folder, self.header, self.max_rows = folder, header, max_rows
        self.table = SheetParts(name, [])
        self._sheet = self._next()

    def _next(self) -> Sheet:
        name = self.table.name if not self.table.parts else f"{self.table.name} {len(self.table.parts) + 1}"
        path = self.folder / f"{self.table.name}-{len(self.table.parts) + 1}.xml"
        self.table.parts.append((name, path, 0))
        return sheet_file(path, self.header, _widths(self.header))

    def append(self, row: list[Any]) -> None:
        if self._sheet.rows >= self.max_rows:
            self._sheet.close()
            self._sheet = self._next()
        self._sheet.append(row)
        name, path, n = self.table.parts[-1]
        self.table.parts[-1] = (name, path, n + 1)

    def close(self) -> SheetParts:
        self._sheet.close()
        return self.table


def write_row_tables(out: Path, store: Store, items: dict[str, dict[str, Any]], parts: Path, *,
                     max_rows: int = MAX_ROWS) -> list[SheetParts]:
    """The per-generation tables from one streamed pass over the store: ``generations.csv``, ``tech_stats.csv`` and
    ``auto_metrics.csv`` in ``out``, and their sheets' XML in ``parts`` (split past ``max_rows``), for
    :func:`write_workbook`. Runs in a worker process on large runs."""
    columns = GenerationColumns.of_store(store)
    parts.mkdir(parents=True, exist_ok=True)
    makers = [columns.sheet(items, tech=bool(tech)) if tech is not None else columns.generations()
              for _name, tech in ROW_TABLES]
    with ExitStack() as stack:
        writers = []
        sheets = []
        for (name, _tech), (header, _row) in zip(ROW_TABLES, makers, strict=True):
            f = stack.enter_context((out / f"{name}.csv").open("w", newline="", encoding="utf-8"))
            w = csv.writer(f)
            w.writerow(header)
            writers.append(w.writerow)
            sheets.append(_SplitSheet(parts, name, header, max_rows))
        outputs = [(row, write, sheet.append) for (_h, row), write, sheet in zip(makers, writers, sheets, strict=True)]
        for r in iter_table(store):
            for row, write_csv_row, append in outputs:
                values = row(r)
                write_csv_row(["" if v is None else v for v in values])
                append(values)
        return [sheet.close() for sheet in sheets]


def write_workbook(out: Path, summary: RunSummary, judgements: list[dict[str, Any]] | None,
                   items: dict[str, dict[str, Any]], tables: list[SheetParts], *, max_rows: int = MAX_ROWS) -> Path:
    """``results.xlsx`` and ``summary.csv``: the summary sheet, the per-generation sheets :func:`write_row_tables`
    wrote, the judgements, and — when a sheet had to be split — a last sheet ``notes`` saying how."""
    path = out / "results.xlsx"
    by_name = {t.name: t for t in tables}
    notes: list[str] = []
    with XlsxWriter(path) as book:
        header, rows = flatten_summary(summary)
        write_csv(out / "summary.csv", header, rows)
        sheet = book.sheet("summary", header, _widths(header))
        for r in rows:
            sheet.append(r)
        for name in ("tech_stats", "auto_metrics", "judgements", "generations"):
            if name == "judgements":
                header, judged = judgement_sheet(summary, judgements, items)
                table = SheetParts(name, [])
                for start in range(0, max(1, len(judged)), max_rows - 1):
                    sheet_name = name if not start else f"{name} {len(table.parts) + 1}"
                    part = book.sheet(sheet_name, header, _widths(header))
                    chunk = judged[start:start + max_rows - 1]
                    for r in chunk:
                        part.append([_cell(v) for v in r])
                    table.parts.append((sheet_name, Path(), len(chunk)))
                note = table.note(max_rows, None)
            else:
                table = by_name[name]
                for sheet_name, part_path, _n in table.parts:
                    book.add_sheet_file(sheet_name, part_path)
                note = table.note(max_rows, f"{name}.csv")
            if note:
                notes.append(note)
        if notes:
            sheet = book.sheet("notes", ["note"], [140])
            for n in notes:
                sheet.append([n])
    return path


def write_tables(out: Path, summary: RunSummary, store: Store, items: dict[str, dict[str, Any]],
                 judgements: list[dict[str, Any]] | None, *, max_rows: int = MAX_ROWS) -> Path:
    """``results.xlsx`` and ``generations.csv``, ``summary.csv``, ``tech_stats.csv``, ``auto_metrics.csv`` in
    ``out`` (:func:`write_row_tables`, then :func:`write_workbook`), in this process."""
    with tempfile.TemporaryDirectory(prefix=".sheets-", dir=out) as parts:
        tables = write_row_tables(out, store, items, Path(parts), max_rows=max_rows)
        return write_workbook(out, summary, judgements, items, tables, max_rows=max_rows)
