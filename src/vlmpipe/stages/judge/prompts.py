"""The judge's prompt: two Jinja2 templates per task, editable files.

Each task names its templates (:attr:`vlmpipe.tasks.base.Task.judge_templates`), shipped in ``vlmpipe/prompts/``; a
file of the same name in ``judge.template_dir`` replaces the bundled one. The pairwise templates (``judge_system.j2``,
``judge_user.j2``: screen annotation) receive ``instruction``, ``answer_a`` and ``answer_b``; the graded ones
(``judge_vqa_system.j2``, ``judge_vqa_user.j2``: visual question answering) receive ``question``, ``reference``
(the human answer) and ``answer`` — never a model name. Every text inside a delimiter (``<answer_a>…</answer_a>``)
has look-alikes of the delimiters defused first, so an answer cannot close its own and pose as prompt text. A hash of
both templates is part of every judgement's key, so an edited prompt makes new judgements instead of mixing results.
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
_DELIMITER = re.compile(r"<\s*(/?)\s*(answer(?:_[ab])?|instruction|question|reference)\s*>", re.IGNORECASE)

_ENV = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)

#: Sample values that every bundled template's variables can be rendered with (a template_dir check).
SAMPLE = {"instruction": "i", "answer_a": "a", "answer_b": "b", "question": "q", "reference": "r", "answer": "c"}


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


def load_templates(template_dir: Path | None = None,
                   names: tuple[str, str] = (SYSTEM_TEMPLATE, USER_TEMPLATE)) -> JudgeTemplates:
    """The bundled templates ``names`` (system, user), each replaced by its namesake in ``template_dir``."""
    system, sys_origin = _read(names[0], template_dir)
    user, user_origin = _read(names[1], template_dir)
    return JudgeTemplates(system=system, user=user, origin=f"{sys_origin}, {user_origin}")


def neutralise(text: str) -> str:
    """The text with any look-alike of the prompt's delimiters defused (``<answer_a>`` → ``‹answer_a›``)."""
    return _DELIMITER.sub(lambda m: f"‹{m.group(1)}{m.group(2)}›", text)


def render(templates: JudgeTemplates, **variables: str) -> tuple[str, str]:
    """``(system text, user text)`` of one judge request; every variable is stripped and neutralised."""
    system = _ENV.from_string(templates.system).render().strip()
    user = _ENV.from_string(templates.user).render(
        **{k: neutralise(v.strip()) for k, v in variables.items()}).strip()
    return system, user
