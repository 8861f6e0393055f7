"""Per-generation metrics. Importing this package registers every built-in metric (in generations.csv column order),
then the metrics of installed plugins (entry-point group ``vlmpipe.metrics``)."""

# isort: off
from vlmpipe.metrics import letters, spelling, language, overlap, grounding, injection, refusal  # noqa: F401
from vlmpipe.metrics import bleurt, bertscore, perplexity  # noqa: F401  (model-based: optional extras, lazy imports)
# isort: on
from vlmpipe.metrics.base import REGISTRY, Metric, Score, ScoreContext, load_plugins, register

PLUGIN_FAILURES = load_plugins()

__all__ = ["PLUGIN_FAILURES", "REGISTRY", "Metric", "Score", "ScoreContext", "register"]
