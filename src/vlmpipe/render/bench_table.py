"""The bench section as a terminal table."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

COLUMNS = ("model", "conc.", "ok/n", "req/s", "tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
           "ITL p50", "ITL p99", "E2E p50", "E2E p99", "errors", "freezes", "prefix cache")
#: left out first, in this order, when the terminal is too narrow (every figure stays in summary.json)
DROP_ORDER = ("prefix cache", "ITL p99", "ITL p50", "TPOT p99", "TTFT p99", "E2E p99", "tok/s", "ok/n")


def _ms(d: Any, stat: str) -> str:
    return "—" if not isinstance(d, dict) or d.get(stat) is None else f"{d[stat] * 1000:.1f}"


def _rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, entry in (section.get("models") or {}).items():
        for level, d in entry.get("levels", {}).items():
            if d.get("error"):
                rows.append([name, str(level), "—", "—", "—", *["—"] * 8, "server failed", "—",
                             entry.get("prefix_caching", "unknown")])
                continue
            rps, tps = d.get("request_throughput"), d.get("output_tokens_per_s")
            rows.append([
                name, str(level), f"{d['completed']}/{d['requests']}",
                "—" if rps is None else f"{rps:.2f}", "—" if tps is None else f"{tps:.1f}",
                _ms(d.get("ttft_s"), "p50"), _ms(d.get("ttft_s"), "p99"),
                _ms(d.get("tpot_s"), "p50"), _ms(d.get("tpot_s"), "p99"),
                _ms(d.get("itl_s"), "p50"), _ms(d.get("itl_s"), "p99"),
                _ms(d.get("e2e_latency_s"), "p50"), _ms(d.get("e2e_latency_s"), "p99"),
                f"{d['error_rate']:.0%}" if d.get("error_rate") is not None else "—",
                str(d.get("freezes", 0)), entry.get("prefix_caching", "unknown"),
            ])
    return rows


def bench_table(section: dict[str, Any], width: int | None = None) -> Table:
    """With ``width``, the least important columns are left out until the table fits (never cut to "…")."""
    rows = _rows(section)
    keep = list(range(len(COLUMNS)))

    def need(cols: list[int]) -> int:  # the model column may fold long names over two lines
        return sum(min(max(len(COLUMNS[i]), *(len(r[i]) for r in rows)), 16 if i == 0 else 99) + 3 for i in cols)

    if width:
        for col in DROP_ORDER:
            if need(keep) <= width:
                break
            keep.remove(COLUMNS.index(col))
    title = "bench (ms; TPOT excludes the first token)"
    if len(keep) < len(COLUMNS):
        title += "; a wider terminal shows " + ", ".join(c for i, c in enumerate(COLUMNS) if i not in keep)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(COLUMNS[0], justify="left", overflow="fold")
    for i in keep[1:]:
        table.add_column(COLUMNS[i], justify="right", no_wrap=True)
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table
