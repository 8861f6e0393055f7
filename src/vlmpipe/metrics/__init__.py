"""Per-generation metrics. Importing this package registers every built-in metric."""

from . import bertscore, bleurt, perplexity  # noqa: F401  (model-based metrics register themselves)
from .base import REGISTRY, Metric, Score, ScoreContext, register

__all__ = ["REGISTRY", "Metric", "Score", "ScoreContext", "register"]
