"""Tasks: what an item is, how its prompt is built, where its references come from, which metrics apply, and how
the judge grades. A task is one module that registers a :class:`Task` subclass; ``task: NAME`` in the run's config
picks it (default ``request``). Third-party tasks register through the entry-point group ``vlmpipe.tasks``.

The bundled ones: :mod:`vlmpipe.tasks.request` (screen annotation: the screenshot becomes the user's request) and
:mod:`vlmpipe.tasks.vqa` (visual question answering: the model answers the user's question about the screenshot).
"""

from __future__ import annotations

import logging
from importlib import resources
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, TypeVar

from vlmpipe.core.config import ConfigError, RunConfig

ENTRY_POINT_GROUP = "vlmpipe.tasks"
log = logging.getLogger("vlmpipe.tasks")

#: How the judge grades a task's answers: ``pairwise`` — the candidate against the reference answer, anonymised,
#: both scored 1–10 (ratio = candidate / reference); ``graded`` — the candidate alone, 1–10 against the human
#: answer, which counts as a 10 (ratio = score / 10).
JudgeKind = Literal["pairwise", "graded"]


def bundled_text(name: str) -> str:
    """A text file shipped in ``vlmpipe/prompts/``."""
    return resources.files("vlmpipe").joinpath(f"prompts/{name}").read_text(encoding="utf-8").strip()


class Task:
    """Base class of tasks; subclasses set the class attributes and may override the methods."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: The bundled instruction (a file in ``vlmpipe/prompts/``) used when the config sets no ``system_prompt``; a
    #: plugin overrides :meth:`default_system_prompt` instead.
    system_prompt_file: ClassVar[str] = ""
    #: The user message when the config sets none: a template over the item's fields (``{question}``); "" sends
    #: no user message.
    user_message_template: ClassVar[str] = ""
    #: Item fields a manifest row must have, besides ``image``.
    required_fields: ClassVar[tuple[str, ...]] = ()
    #: Whether the user message is a template over item fields (``{question}``) or a literal text.
    templated_user_message: ClassVar[bool] = True
    #: What an interval resamples: ``item`` (one item per screenshot) or ``image`` (the items of one screenshot
    #: together: several questions about it are not independent).
    cluster_by: ClassVar[Literal["item", "image"]] = "image"
    #: Where references may come from (``references.source``).
    reference_sources: ClassVar[tuple[str, ...]] = ("dataset", "model", "none")
    judge_kind: ClassVar[JudgeKind] = "pairwise"
    #: The judge's modes for this task (``judge.mode``); the first is the default.
    judge_modes: ClassVar[tuple[str, ...]] = ("both", "random")
    #: The bundled judge templates (system, user) in ``vlmpipe/prompts/``.
    judge_templates: ClassVar[tuple[str, str]] = ("judge_system.j2", "judge_user.j2")

    def default_system_prompt(self) -> str:
        if not self.system_prompt_file:
            raise ConfigError(f"task {self.name!r} has no default instruction: set system_prompt in the config")
        return bundled_text(self.system_prompt_file)

    def user_message(self, cfg: RunConfig, item: dict[str, Any]) -> str:
        """The user message sent with an item's screenshot: the item's own, else the config's (or the task's)
        template rendered over the item's fields."""
        own = str(item.get("user_message") or "")
        if own:
            return own
        template = cfg.user_message if cfg.user_message is not None else self.user_message_template
        return render_template(template, item) if self.templated_user_message else template

    def screenshot_of(self, item_id: str, image: str) -> str:
        """The cluster an item's values belong to when intervals resample screenshots."""
        return item_id if self.cluster_by == "item" else image

    def resolve(self, cfg: RunConfig) -> RunConfig:
        """Fill the task's defaults into ``cfg`` (instruction, user message, judge mode) and check the settings
        that depend on the task; a :class:`ConfigError` names the field."""
        if cfg.system_prompt is None:
            cfg.system_prompt = self.default_system_prompt()
        if cfg.user_message is None:
            cfg.user_message = self.user_message_template
        if cfg.references.source not in self.reference_sources:
            raise ConfigError(f"references.source: {cfg.references.source!r} does not apply to task {self.name!r} "
                              f"(use {', '.join(repr(s) for s in self.reference_sources)})")
        if cfg.judge.mode is None:
            cfg.judge.mode = self.judge_modes[0]
        elif cfg.judge.mode not in self.judge_modes:
            raise ConfigError(f"judge.mode: {cfg.judge.mode!r} does not apply to task {self.name!r} "
                              f"(use {', '.join(repr(m) for m in self.judge_modes)})")
        return cfg


def render_template(template: str, item: dict[str, Any]) -> str:
    """``template`` with ``{field}`` replaced by the item's fields (``{question}``, ``{id}``...); a field the item
    lacks is an error naming it."""
    fields = {k: "" if v is None else v for k, v in item.items() if isinstance(k, str)}
    fields.update({k: v for k, v in (item.get("fields") or {}).items() if k not in fields})
    try:
        return template.format_map(fields)
    except KeyError as err:
        raise ConfigError(f"user_message: the template uses {{{err.args[0]}}}, which item {item.get('id')!r} "
                          f"does not have (its fields: {', '.join(sorted(fields))})") from None


REGISTRY: dict[str, type[Task]] = {}
T = TypeVar("T", bound=type[Task])


def register(cls: T) -> T:
    """Class decorator adding a task to the registry under its ``name``."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def load_plugins() -> dict[str, str]:
    """Load the tasks of installed plugins (entry-point group ``vlmpipe.tasks``); ``{entry point: why}`` of those
    that failed (each logged as a warning)."""
    failed: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as err:  # a broken plugin must not take the bundled tasks down with it
            failed[ep.name] = f"{type(err).__name__}: {err}"
            log.warning("task plugin %s (%s) did not load: %s", ep.name, ep.value, failed[ep.name])
    return failed


def get_task(name: str) -> Task:
    """The task registered as ``name``; a :class:`ConfigError` listing the known ones otherwise."""
    if name not in REGISTRY:
        raise ConfigError(f"task: unknown task {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]()


def resolve(cfg: RunConfig) -> Task:
    """The run's task, with its defaults filled into ``cfg``."""
    task = get_task(cfg.task)
    task.resolve(cfg)
    return task
