"""vlmpipe: choose the vision-language model that turns support screenshots into user requests."""

from .config import ConfigError, RunConfig, load_config
from .pipeline import RunResult, report, run, score

__all__ = ["ConfigError", "RunConfig", "RunResult", "load_config", "report", "run", "score"]
__version__ = "0.1.0"
