"""The LLM-as-a-judge stage: anonymous pairwise judgements of candidate answers against reference answers.

See docs/judge.md. ``judge_run`` runs the stage, ``add_judge`` aggregates it into summary.json,
``import_recorded_judgements`` reads the original pipeline's recorded judgements.
"""

from .aggregate import add_judge
from .recorded import import_recorded_judgements
from .run import JudgeOutcome, judge_run, judge_run_async

__all__ = ["JudgeOutcome", "add_judge", "import_recorded_judgements", "judge_run", "judge_run_async"]
