"""Refusals and unanswerable questions (both tasks).

A *refusal* declines instead of answering: «Извините, но я не могу помочь…», "Sorry, but I can't assist with that.",
«Я не могу предоставить…», «мои возможности не позволяют…», or asks the user for what the screenshot already shows
(«Вы не предоставили информацию…»). ``refusal`` is 1 for those, 0 otherwise, with the matched phrase as its detail.
A user's first-person request is not a refusal: «я не могу оплатить заказ», "Sorry, but I can't seem to make a
payment" — «я не могу» counts only with a verb of answering, helping or seeing.

An item may be marked ``answerable: false``: the screenshot cannot answer its question. For those, a refusal or an
answer saying that it is not shown on the screenshot («на скриншоте этого не видно», "it is not shown in the
screenshot") is correct (``abstention_correct`` = 1), and any other answer counts as invented
(``unanswerable_invented`` = 1); both are absent for answerable items. A statement of fact that merely starts with
«К сожалению» («К сожалению, введён неправильный код») is an answer, not a refusal.
"""

from __future__ import annotations

from typing import Any

import regex

from vlmpipe.core.fields import Alert, SummaryField
from vlmpipe.metrics.base import Metric, Score, ScoreContext, register

# The assistant declining — not a user's first-person request («я не могу оплатить заказ» is what screen annotation
# asks for): «я не могу» only with verbs of answering, helping or seeing.
_ASSIST = (r"(?:помочь|ответить|предоставить|предсказать|сформулировать|формализовать|интерпретировать|увидеть|видеть|"
           r"выполнить|обработать|дать|просмотреть|распознать|прочитать|проанализировать|анализировать|открыть)")
_REFUSAL = [
    rf"\bя\s+(?:\w+\s+){{0,2}}не\s+(?:могу|смогу|в\s+состоянии)\s+(?:\w+\s+)?{_ASSIST}\b",
    r"\bмои\s+возможности\s+не\s+позволяют",
    r"\b(?:вы|Вы)\s+не\s+(?:предоставили|прислали|уточнили)\b",
    r"\bi\s*(?:can't|can’t|cannot|can\s+not|am\s+unable\s+to|'m\s+unable\s+to|’m\s+unable\s+to|am\s+not\s+able\s+to)"
    r"\s+(?:assist|help|provide|answer|comply|see\s+(?:the|your|this)\s+(?:screen|image|screenshot))",
    r"\b(?:as\s+an\s+ai|как\s+(?:языковая\s+модель|ии|искусственный\s+интеллект))\b",
]
_NOT_SHOWN = [
    r"\b(?:на|в)\s+(?:этом\s+|данном\s+|вашем\s+|присланном\s+)?(?:скриншоте|изображении|снимке\s+экрана)\s+"
    r"(?:\w+\s+){0,2}(?:не\s+(?:видно|указан\w*|показан\w*|отображ\w*|видн\w*)|нет\s+(?:информации|данных|сведений))",
    r"\b(?:по|из)\s+(?:этому\s+|данному\s+)?(?:скриншот\w*|изображени\w*)\s+(?:\w+\s+){0,2}"
    r"(?:не|невозможно|нельзя)\s+(?:понять|определить|сказать|узнать)",
    r"\b(?:невозможно|нельзя|не\s+удаётся|не\s+удается)\s+(?:\w+\s+){0,2}(?:определить|понять|сказать|узнать)\s+"
    r"(?:по|из|на)\s+(?:этому\s+|данному\s+)?(?:скриншот\w*|изображени\w*)",
    r"\b(?:скриншот|изображение)\s+не\s+(?:содержит|показывает|отображает)\b",
    r"\b(?:в\s+сообщении|на\s+экране|в\s+интерфейсе)\s+нет\s+информации\b",
    r"\b(?:is\s+not|isn't|not)\s+(?:shown|visible|displayed|indicated)\s+(?:on|in)\s+the\s+(?:screenshot|image|screen)",
    r"\bthe\s+(?:screenshot|image)\s+(?:does\s+not|doesn't)\s+(?:show|contain|include|indicate)",
    r"\b(?:cannot|can't|can\s+not)\s+be\s+determined\s+from\s+the\s+(?:screenshot|image)",
]
REFUSAL_RE = regex.compile("|".join(f"(?:{p})" for p in _REFUSAL), regex.IGNORECASE)
NOT_SHOWN_RE = regex.compile("|".join(f"(?:{p})" for p in _NOT_SHOWN), regex.IGNORECASE)


def refusal(text: str | None) -> str | None:
    """The phrase with which ``text`` declines to answer, or ``None``."""
    m = REFUSAL_RE.search(text or "")
    return m.group(0) if m else None


def abstention(text: str | None) -> str | None:
    """The phrase with which ``text`` declines or says the screenshot does not show the answer, or ``None``."""
    m = REFUSAL_RE.search(text or "") or NOT_SHOWN_RE.search(text or "")
    return m.group(0) if m else None


@register
class Refusal(Metric):
    name = "refusal"
    columns = ("refusal", "abstention_correct", "unanswerable_invented")
    parallel = True
    fields = (
        SummaryField("refusal_rate", "refusals", column="refusal", aggregation="rate", fmt="{:.1%}",
                     higher_is_better=False, group="quality", description="answers that decline instead of answering",
                     ranking=True, headline=True,
                     alert=Alert("refuses", "{model} refuses to answer in {value:.1%} of generations.", above=0.0,
                                 flags=True)),
        SummaryField("abstention_correct_rate", "abstains when unanswerable", column="abstention_correct",
                     aggregation="rate", fmt="{:.0%}", higher_is_better=True, group="grounding",
                     description="answers to questions the screenshot cannot answer that say so (or decline)",
                     ranking=True, headline=True),
        SummaryField("unanswerable_invented_rate", "invents unanswerable", column="unanswerable_invented",
                     aggregation="rate", fmt="{:.0%}", higher_is_better=False, group="grounding",
                     description="answers to questions the screenshot cannot answer that answer anyway", ranking=True,
                     headline=True,
                     alert=Alert("invents_answers", "{model} invents an answer to {value:.0%} of the questions the "
                                 "screenshot cannot answer.", above=0.0)),
    )

    def score(self, rows: list[dict[str, Any]], ctx: ScoreContext) -> list[dict[str, Score]]:
        out: list[dict[str, Score]] = []
        for r in rows:
            declined = refusal(r["text"])
            scores: dict[str, Score] = {"refusal": (1.0 if declined else 0.0, declined),
                                        "abstention_correct": (None, None), "unanswerable_invented": (None, None)}
            if (ctx.items.get(r["item"]) or {}).get("answerable") is False:
                said = abstention(r["text"])
                scores["abstention_correct"] = (1.0 if said else 0.0, said)
                scores["unanswerable_invented"] = (0.0 if said else 1.0, None)
            out.append(scores)
        return out
