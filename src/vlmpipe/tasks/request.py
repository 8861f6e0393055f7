"""Screen annotation (``task: request``, the default; the specification's task): the screenshot becomes the text of
the request the user would have typed into the support chat.

An item is a screenshot, with an optional per-item ``user_message``, a reference request (from the dataset or a
reference model) and key facts. The judge compares the candidate with the reference, anonymised, in both orders.
"""

from __future__ import annotations

from vlmpipe.tasks.base import Task, register


@register
class RequestTask(Task):
    name = "request"
    description = "screen annotation: the screenshot becomes the user's support request"
    system_prompt_file = "system_ru.txt"
    user_message_template = ""
    templated_user_message = False  # the specification's user message is a literal text
    cluster_by = "item"  # one item per screenshot (and the first round's intervals, unchanged)
