"""Bring your own generations: importers that turn recorded results into a run directory.

``original``: the original pipeline's xlsx files (summary_test_stats.xlsx, auto_metrics_stats.xlsx,
judgement_scores.xlsx). ``table``: any CSV / XLSX / JSONL table with a column mapping. Both write a run
directory (config.yaml + run.sqlite) that ``vlmpipe score`` and ``vlmpipe report`` treat like any other run.
"""

from vlmpipe.stages.importers.common import ImportDataError, ImportedGeneration, ImportedItem, write_run

__all__ = ["ImportDataError", "ImportedGeneration", "ImportedItem", "write_run"]
