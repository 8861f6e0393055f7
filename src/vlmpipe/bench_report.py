"""The bench section as a terminal table."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _ms(d: Any, stat: str) -> str:
    return "—" if not isinstance(d, dict) or d.get(stat) is None else f"{d[stat] * 1000:.1f}"


def bench_table(section: dict[str, Any]) -> Table:
    table = Table(title="bench (ms; TPOT excludes the first token)")
    for col in ("model", "conc.", "ok/n", "req/s", "tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
                "ITL p50", "ITL p99", "E2E p50", "E2E p99", "errors", "freezes", "prefix cache"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, entry in (section.get("models") or {}).items():
        for level, d in entry.get("levels", {}).items():
            if d.get("error"):
                table.add_row(name, level, "—", "—", "—", *["—"] * 8, "server failed", "—",
                              entry.get("prefix_caching", "unknown"))
                continue
            rps, tps = d.get("request_throughput"), d.get("output_tokens_per_s")
            table.add_row(
                name, level, f"{d['completed']}/{d['requests']}",
                "—" if rps is None else f"{rps:.2f}", "—" if tps is None else f"{tps:.1f}",
                _ms(d.get("ttft_s"), "p50"), _ms(d.get("ttft_s"), "p99"),
                _ms(d.get("tpot_s"), "p50"), _ms(d.get("tpot_s"), "p99"),
                _ms(d.get("itl_s"), "p50"), _ms(d.get("itl_s"), "p99"),
                _ms(d.get("e2e_latency_s"), "p50"), _ms(d.get("e2e_latency_s"), "p99"),
                f"{d['error_rate']:.0%}" if d.get("error_rate") is not None else "—",
                str(d.get("freezes", 0)), entry.get("prefix_caching", "unknown"),
            )
    return table
