"""The LLM-as-a-judge stage: anonymous pairwise judgements of candidate answers against reference answers.

See docs/judge.md. ``judge_run`` runs the stage; :mod:`vlmpipe.stages.importers.recorded_judgements` reads the
original pipeline's recorded judgements; :mod:`vlmpipe.analysis.judge` aggregates them into summary.json.
"""

from vlmpipe.stages.judge.run import JudgeOutcome, judge_run, judge_run_async

__all__ = ["JudgeOutcome", "judge_run", "judge_run_async"]
