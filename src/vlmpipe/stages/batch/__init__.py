"""Batch engines for generation, references and judging (docs/judge.md, docs/serving.md).

:mod:`~vlmpipe.stages.batch.units` — what a stage still lacks, as batch requests built by the live code;
:mod:`~vlmpipe.stages.batch.files` — the OpenAI batch input file written, a results file read back into the store;
:mod:`~vlmpipe.stages.batch.submit` — the OpenAI Batch API (files, batches, polling, results) through the official
``openai`` SDK, resumable.
"""

from vlmpipe.stages.batch.units import STAGES, BatchError

__all__ = ["STAGES", "BatchError"]
