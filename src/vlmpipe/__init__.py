"""vlmpipe: choose the vision-language model that turns support screenshots into user requests.

The Python API mirrors the command line: ``vlmpipe.run("config.yaml")``, ``vlmpipe.score(RUN)``,
``vlmpipe.report(RUN)``. The package is layered (docs/architecture.md): ``core`` ← ``metrics``/``providers`` ←
``stages`` ← ``analysis`` ← ``render`` ← ``app``; these names load on first use, so importing one layer does not
load the others.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "RunConfig", "RunResult", "judge", "load_config", "report", "run", "score"]
__version__ = "0.1.0"

_API = {"ConfigError": "vlmpipe.core.config", "RunConfig": "vlmpipe.core.config", "load_config": "vlmpipe.core.config",
        "RunResult": "vlmpipe.app.pipeline", "run": "vlmpipe.app.pipeline", "score": "vlmpipe.app.pipeline",
        "judge": "vlmpipe.app.pipeline", "report": "vlmpipe.app.pipeline"}


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'vlmpipe' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
