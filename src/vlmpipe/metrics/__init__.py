"""Per-generation metrics. Importing this package registers every built-in metric (in report column order)."""

# isort: off
from . import letters, spelling, language, overlap, grounding  # noqa: F401  (registers the metrics)
from .. import injection  # noqa: F401  (registers the prompt-injection marker)
from . import bleurt, bertscore, perplexity  # noqa: F401  (model-based metrics: optional extras, lazy imports)
# isort: on
from .base import REGISTRY, Metric, Score, ScoreContext, register

__all__ = ["REGISTRY", "Metric", "Score", "ScoreContext", "register"]
