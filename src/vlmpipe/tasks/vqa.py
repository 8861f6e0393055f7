"""Visual question answering (``task: vqa``): the model answers the user's question about the screenshot.

An item is one question about one screenshot — a screenshot may carry several — with the human answer as its
reference, an optional ``answerable: false`` when the screenshot cannot answer it, and tags (``device: phone``).
Intervals resample whole screenshots, not questions. The judge grades each answer alone, 1–10, against the human
answer (which counts as a 10): ratio = score / 10, as the study does; ``judge.mode: both`` also grades the human
answer itself, so that a judge that gives it less than 10 is visible.
"""

from __future__ import annotations

from vlmpipe.tasks.base import Task, register


@register
class VqaTask(Task):
    name = "vqa"
    description = "visual question answering: the model answers the user's question from the screenshot"
    system_prompt_file = "system_vqa_ru.txt"
    user_message_template = "{question}"
    required_fields = ("question",)
    reference_sources = ("dataset", "none")
    judge_kind = "graded"
    judge_modes = ("single", "both")
    judge_templates = ("judge_vqa_system.j2", "judge_vqa_user.j2")
