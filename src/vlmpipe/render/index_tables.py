"""The tables of index.html, each a view of the typed summary: the ranking (the catalogue's ranking fields the run
has), the slices by tag, the errors by kind, the serving benchmark, the settings and what could not be computed.

A table is ``{"columns", "rows"}``; each cell carries its text and the value the page's sorting script compares.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vlmpipe.analysis.catalogue import console_fields, ranking_fields
from vlmpipe.analysis.summary import BenchSection, ModelSummary, Percentiles, RunSummary, number
from vlmpipe.core.fields import SummaryField


def _cell(value: float | None, text: str) -> dict[str, str]:
    """A table cell: its text and the value the sorting script compares (empty when missing)."""
    return {"v": "" if value is None else repr(value), "text": text}


def _cells(m: ModelSummary, fields: list[SummaryField], quality: SummaryField | None) -> list[dict[str, str]]:
    """One model's row: each field's value, the quality measure's with its 95% interval (cluster bootstrap)."""
    cells = []
    for f in fields:
        v = m.value(f.key)
        text = f.format(v)
        if f is quality and v is not None and (ci := m.interval(f.key)):
            text += f" [{f.format(ci[0])}, {f.format(ci[1])}]"
        cells.append(_cell(v, text))
    return cells


def ranking(summary: RunSummary) -> dict[str, Any]:
    """The ranking table: the catalogue's ranking fields that some model has, in catalogue order, models best first
    by the run's quality measure; that measure's cells carry their 95% interval (cluster bootstrap)."""
    names = summary.ranked()
    q = summary.quality_field()
    cols = [f for f in ranking_fields() if summary.present(f.key, names)]
    rows = [{"name": n, "role": summary.models[n].role, "cells": _cells(summary.models[n], cols, q)} for n in names]
    columns = [{"title": f.title + (" [95%]" if f is q else ""), "key": f.key, "description": f.description}
               for f in cols]
    return {"columns": columns, "rows": rows, "quality": q.label if q else None}


#: What the error kinds the providers record (``Generation.error_kind``) mean; others are shown as they are.
ERROR_KINDS = {
    "timeout": "no complete answer within the model's timeout", "connection": "the server could not be reached",
    "http_429": "rate limited (HTTP 429)", "server": "the model's server could not be started or crashed",
    "bad_response": "a malformed response", "empty": "an empty answer", "refusal": "the model refused",
    "stream_error": "the stream reported an error", "truncated": "the stream ended before the answer was complete",
    "image": "the screenshot could not be read", "unavailable": "the provider is not available here",
    "imported": "recorded as failed in the imported results", "error": "an error without a kind",
}


def slice_tables(summary: RunSummary) -> list[dict[str, Any]]:
    """One table per tag (``device``...): a row per tag value and model with the compact ranking's fields (the quality
    measure with its 95% interval first), from ``summary.slices``."""
    q = summary.quality_field()
    fields = ([q] if q else []) + [f for f in console_fields() if f is not q]
    out = []
    for tag, values in summary.slices.items():
        cols = [f for f in fields if any(m.value(f.key) is not None for models in values.values()
                                         for m in models.values())]
        rows = [{"value": value, "name": name, "cells": _cells(models[name], cols, q)}
                for value, models in values.items() for name in summary.ranked() if name in models]
        out.append({"tag": tag, "columns": [f.title + (" [95%]" if f is q else "") for f in cols], "rows": rows})
    return out


def error_kind_note(kind: str) -> str:
    if kind in ERROR_KINDS:
        return ERROR_KINDS[kind]
    if kind.startswith("http_5"):
        return f"server error (HTTP {kind[5:]})"
    if kind.startswith("http_4"):
        return f"request rejected (HTTP {kind[5:]})"
    return ""


def errors(summary: RunSummary) -> dict[str, Any] | None:
    """The per-model errors table (``n``, errors, error rate, one column per error kind), models in ranking order;
    ``None`` when no model has errors."""
    names = summary.ranked()
    by_kind = {n: {str(k): int(v) for k, v in summary.models[n].errors_by_kind.items()} for n in names}
    totals: dict[str, int] = defaultdict(int)
    for counts in by_kind.values():
        for k, v in counts.items():
            totals[k] += v
    if not totals and not any(summary.models[n].n_errors for n in names):
        return None
    kinds = sorted(totals, key=lambda k: (-totals[k], k))
    rows = []
    for n in names:
        m = summary.models[n]
        rate = m.error_rate
        rows.append({"name": n, "role": m.role, "cells": [
            _cell(float(m.n_errors), str(m.n_errors)),
            _cell(rate, "—" if rate is None else f"{rate:.1%}"),
            *(_cell(float(by_kind[n].get(k, 0)), str(by_kind[n].get(k, 0))) for k in kinds)]})
    return {"columns": ["errors", "error rate", *kinds], "rows": rows,
            "legend": [(k, note) for k in kinds if (note := error_kind_note(k))]}


BENCH_COLUMNS = ["model", "concurrency", "ok / n", "req/s", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "E2E p50 ms",
                 "E2E p99 ms", "errors", "freezes", "GPU GB peak", "prefix cache"]


def _ms(p: Percentiles | None, stat: str) -> str:
    v = number(getattr(p, stat, None)) if p is not None else None
    return "—" if v is None else f"{1000 * v:.0f}"


def _num(v: float | None, fmt: str) -> str:
    n = number(v)
    return "—" if n is None else fmt.format(n)


def bench_rows(section: BenchSection | None) -> list[list[str]]:
    """The ``bench`` section (``vlmpipe bench``) as table rows: one per model and concurrency level."""
    rows: list[list[str]] = []
    for name, entry in (section.models if section else {}).items():
        for level, d in entry.levels.items():
            if d.error:
                rows.append([name, level, "server failed: " + d.error.splitlines()[0]] + ["—"] * 10)
                continue
            done = "—" if d.completed is None else str(d.completed)
            asked = "—" if d.requests is None else str(d.requests)
            rows.append([name, level, f"{done} / {asked}", _num(d.request_throughput, "{:.2f}"),
                         _num(d.output_tokens_per_s, "{:.1f}"), _ms(d.ttft_s, "p50"), _ms(d.ttft_s, "p99"),
                         _ms(d.e2e_latency_s, "p50"), _ms(d.e2e_latency_s, "p99"), _num(d.error_rate, "{:.0%}"),
                         "—" if d.freezes is None else str(d.freezes), _num(d.gpu_memory_gb_peak, "{:.1f}"),
                         entry.prefix_caching or "unknown"])
    return rows


def settings(cfg: Any, summary: RunSummary) -> list[tuple[str, str]]:
    run = summary.run
    rows = [("run", run.name), ("task", run.task), ("items", str(run.items)),
            ("screenshots", str(run.screenshots if run.screenshots is not None else run.items)),
            ("repeats", str(run.repeats)), ("prompt hash", str(run.prompt_hash))]
    if cfg is not None:
        rows.append(("dataset", str(cfg.dataset.path)))
        for m in cfg.models:
            rows.append((f"model {m.name}", m.describe()))
        rows.append(("references", cfg.references.source))
        judge = cfg.judge
        rows.append(("judge", f"{', '.join(j.model_id for j in judge.judges)} ({judge.mode})"
                     if judge.enabled and judge.judges else "not configured"))
        rows.append(("expected language", cfg.metrics.expected_language))
    return rows


def unavailable(summary: RunSummary) -> list[tuple[str, str]]:
    """What could not be computed, and why: every model's ``unavailable`` entries, each key once."""
    seen: dict[str, str] = {}
    for m in summary.models.values():
        for k, why in m.unavailable.items():
            seen.setdefault(k, str(why))
    return sorted(seen.items())
