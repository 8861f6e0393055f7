"""The judge's prompt: two Jinja2 templates, editable files.

``judge_system.j2`` (the judge's instructions and criteria) and ``judge_user.j2`` (the instruction the models
were given and the two anonymous answers, each inside ``<answer_a>…</answer_a>``-style delimiters) ship in
``vlmpipe/prompts/``; a file of the same name in ``judge.template_dir`` replaces the bundled one. The user
template receives ``instruction``, ``answer_a`` and ``answer_b`` — never a model name. A hash of both texts is
part of every judgement's key, so an edited prompt makes new judgements instead of mixing results.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined

SYSTEM_TEMPLATE = "judge_system.j2"
USER_TEMPLATE = "judge_user.j2"

# An answer must not be able to close its own delimiter (or open another) and pose as prompt text.
_DELIMITER = re.compile(r"<\s*(/?)\s*(answer_[ab]|instruction)\s*>", re.IGNORECASE)

_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class JudgeTemplates:
    system: str
    user: str
    origin: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(f"{self.system}\x00{self.user}".encode()).hexdigest()[:16]


def _read(name: str, template_dir: Path | None) -> tuple[str, str]:
    if template_dir is not None:
        path = Path(template_dir) / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    text = resources.files("vlmpipe").joinpath(f"prompts/{name}").read_text(encoding="utf-8")
    return text, f"vlmpipe/prompts/{name}"


def load_templates(template_dir: Path | None = None) -> JudgeTemplates:
    """The bundled templates, each replaced by its namesake in ``template_dir`` when that exists."""
    system, sys_origin = _read(SYSTEM_TEMPLATE, template_dir)
    user, user_origin = _read(USER_TEMPLATE, template_dir)
    return JudgeTemplates(system=system, user=user, origin=f"{sys_origin}, {user_origin}")


def neutralise(text: str) -> str:
    """The answer text with any look-alike of the prompt's delimiters defused (``<answer_a>`` → ``‹answer_a›``)."""
    return _DELIMITER.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)


def render(templates: JudgeTemplates, *, instruction: str, answer_a: str, answer_b: str) -> tuple[str, str]:
    """``(system text, user text)`` of one judge request."""
    system = _ENV.from_string(templates.system).render().strip()
    user = _ENV.from_string(templates.user).render(
        instruction=neutralise(instruction.strip()),
        answer_a=neutralise(answer_a.strip()),
        answer_b=neutralise(answer_b.strip()),
    ).strip()
    return system, user
