"""Tasks (see :mod:`vlmpipe.tasks.base`). Importing this package registers the bundled tasks, then plugins'."""

# isort: off
from vlmpipe.tasks import request, vqa  # noqa: F401  (registers the bundled tasks)
# isort: on
from vlmpipe.tasks.base import REGISTRY, Task, get_task, load_plugins, register, resolve

PLUGIN_FAILURES = load_plugins()

__all__ = ["PLUGIN_FAILURES", "REGISTRY", "Task", "get_task", "register", "resolve"]
