"""The report stage: summary.json, generations.csv and the workbook, from what aggregation produced."""

from vlmpipe.render.writer import write_report

__all__ = ["write_report"]
