"""Per-generation metrics. Importing this package registers every built-in metric (in report column order)."""

# isort: off
from vlmpipe.metrics import letters, spelling, language, overlap, grounding, injection  # noqa: F401  (registers them)
from vlmpipe.metrics import bleurt, bertscore, perplexity  # noqa: F401  (model-based: optional extras, lazy imports)
# isort: on
from vlmpipe.metrics.base import REGISTRY, Metric, Score, ScoreContext, register

__all__ = ["REGISTRY", "Metric", "Score", "ScoreContext", "register"]
