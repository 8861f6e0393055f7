"""The refusal metric on hand-checked sentences (the study's own refusals among them) and the abstention rates on
questions the screenshot cannot answer."""

from __future__ import annotations

import pytest

from vlmpipe.metrics.refusal import Refusal, abstention, refusal

REFUSALS = [
    # the study's VQA answers (../shared/peer-vqa, 2B variants)
    "Извините, но я не могу помочь с решением этой ошибки.",
    "Sorry, but I can't assist with that.",
    "Извините, но я не могу предоставить информацию о конкретном приложении, так как у меня нет доступа к конкретным "
    "интерфейсам или данным.",
    "К сожалению, на данном этапе мои возможности не позволяют мне открыть и закрыть окно.",
    "Извините, но вы не предоставили информацию о приложении, на основе которой я мог бы ответить на ваш вопрос.",
    # the study's screen-annotation answers (../shared/peer, 2B variants)
    "Извините, но я не могу предсказать, как человек сформулировал бы обращение в чат-бот поддержки.",
    "Я, как русскоязычный полезный помощник, могу помочь вам с любыми вопросами. Однако, я не могу помочь с проблемой.",
    # the examples and close variants
    "Я не могу предоставить эти данные.",
    "I'm unable to help with this request.",
    "As an AI, I cannot see your screen.",
]
ANSWERS = [
    # the study's answers that merely sound negative
    "Нет, иностранные граждане не могут воспользоваться этой услугой.",
    "К сожалению, введен неправильный код плательщика.",
    "К сожалению, в данном случае нет возможности закрыть окно. Однако вы можете нажать на кнопку «X».",
    "Нажмите на кнопку «Пополнить», чтобы внести средства на свой рублёвый счёт.",
    "Если я не помню пароль, нажмите «Не помню пароль».",
    "Sorry for the wait: press Continue.",
    # a user's own request (what screen annotation asks for) is not the model declining: the study's answers
    "Здравствуйте, у меня возникла проблема с оплатой заказа. Я не могу оплатить его, и мне нужно повторить оплату.",
    "Привет, я не могу найти страницу товара, которую я искал.",
    "Sorry, but I can't seem to make a payment. Could you please repeat the request?",
    "Здравствуйте, вы не указали срок возврата денег за заказ.",
]
NOT_SHOWN = [
    "На скриншоте не указано, когда придёт возврат.",
    "По скриншоту невозможно определить, сколько продлится проверка.",
    "В сообщении нет информации о том, насколько долго будет недоступен провайдер.",
    "This is not shown in the screenshot.",
    "The screenshot does not show the delivery date.",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_flagged(text: str) -> None:
    assert refusal(text) is not None and abstention(text) is not None


@pytest.mark.parametrize("text", ANSWERS)
def test_answers_are_not_refusals(text: str) -> None:
    assert refusal(text) is None and abstention(text) is None


@pytest.mark.parametrize("text", NOT_SHOWN)
def test_saying_the_screenshot_does_not_show_it_is_an_abstention_not_a_refusal(text: str) -> None:
    assert refusal(text) is None and abstention(text) is not None


def test_unanswerable_questions_count_abstentions_and_invented_answers() -> None:
    items = {"q1": {"answerable": True}, "q2": {"answerable": False}, "q3": {"answerable": False}}
    rows = [{"item": "q1", "text": "Sorry, but I can't assist with that."},
            {"item": "q2", "text": "На скриншоте не видно, когда придёт возврат."},
            {"item": "q3", "text": "Возврат придёт через 3 дня."}]

    class Ctx:
        pass

    ctx = Ctx()
    ctx.items = items  # type: ignore[attr-defined]
    q1, q2, q3 = Refusal().score(rows, ctx)  # type: ignore[arg-type]
    assert q1["refusal"][0] == 1.0 and q1["abstention_correct"] == (None, None)  # answerable: no abstention figure
    assert q2["refusal"][0] == 0.0 and q2["abstention_correct"][0] == 1.0 and q2["unanswerable_invented"][0] == 0.0
    assert q3["abstention_correct"][0] == 0.0 and q3["unanswerable_invented"][0] == 1.0  # an invented answer
