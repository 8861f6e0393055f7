"""Per-generation metrics. Importing this package registers every built-in metric."""

from .. import injection as _injection  # noqa: F401  (registers the prompt-injection marker)
from .base import REGISTRY, Metric, Score, ScoreContext, register

__all__ = ["REGISTRY", "Metric", "Score", "ScoreContext", "register"]
