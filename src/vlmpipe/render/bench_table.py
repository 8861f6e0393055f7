"""The bench section as a terminal table."""

from __future__ import annotations

from rich import box
from rich.table import Table

from vlmpipe.analysis.summary import BenchSection, Percentiles

COLUMNS = ("model", "conc.", "ok/n", "req/s", "tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
           "ITL p50", "ITL p99", "E2E p50", "E2E p99", "errors", "freezes", "prefix cache")
#: left out first, in this order, when the terminal is too narrow (every figure stays in summary.json)
DROP_ORDER = ("prefix cache", "ITL p99", "ITL p50", "TPOT p99", "TTFT p99", "E2E p99", "tok/s", "ok/n")


def _ms(d: Percentiles | None, stat: str) -> str:
    value = None if d is None else getattr(d, stat)
    return "—" if value is None else f"{value * 1000:.1f}"


def _rows(section: BenchSection | None) -> list[list[str]]:
    rows = []
    for name, entry in (section.models if section else {}).items():
        caching = entry.prefix_caching or "unknown"
        for level, d in entry.levels.items():
            if d.error:
                rows.append([name, level, "—", "—", "—", *["—"] * 8, "server failed", "—", caching])
                continue
            rps, tps = d.request_throughput, d.output_tokens_per_s
            rows.append([
                name, level, f"{d.completed}/{d.requests}",
                "—" if rps is None else f"{rps:.2f}", "—" if tps is None else f"{tps:.1f}",
                _ms(d.ttft_s, "p50"), _ms(d.ttft_s, "p99"), _ms(d.tpot_s, "p50"), _ms(d.tpot_s, "p99"),
                _ms(d.itl_s, "p50"), _ms(d.itl_s, "p99"), _ms(d.e2e_latency_s, "p50"), _ms(d.e2e_latency_s, "p99"),
                f"{d.error_rate:.0%}" if d.error_rate is not None else "—",
                str(d.freezes or 0), caching,
            ])
    return rows


def bench_table(section: BenchSection | None, width: int | None = None) -> Table:
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
