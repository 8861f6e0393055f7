"""Per-generation metrics. Importing this package registers every built-in metric."""

from .base import REGISTRY, Metric, Score, ScoreContext, register

__all__ = ["REGISTRY", "Metric", "Score", "ScoreContext", "register"]
