"""Key facts and invented numbers: normalisation cases and a planted invented amount."""

from __future__ import annotations

import pytest

from metric_helpers import make_ctx, rows
from vlmpipe.core.facts import FactIndex, fact_present, facts_from_reference, find_mentions, parse_fact
from vlmpipe.metrics.grounding import Grounding, ground, item_facts

REF = ("Здравствуйте! Мой заказ № 02632305-0222 на сумму 20 588 ₽ отменили 23 октября в 20:32. "
       "Подскажите, когда вернутся деньги?")


def keys(text: str) -> list[str]:
    return [m.key for m in find_mentions(text)]


@pytest.mark.parametrize(("a", "b"), [
    ("20 588 ₽", "20588 рублей"),
    ("20\u00a0588 руб.", "20,588 rubles"),
    ("1 234,50 ₽", "1234.5"),
    ("23 октября", "23.10"),
    ("12.11.2026", "12 ноября 2026"),
    ("October 23", "23 октября"),
    ("9:05", "09:05"),
    ("+7 (900) 123-45-67", "8 900 123 45 67"),
])
def test_normalised_forms_are_equal(a: str, b: str) -> None:
    assert keys(a) == keys(b)


def test_mentions_by_kind() -> None:
    ms = find_mentions("Заказ 03718254-0419 на 3 270 ₽, карта •••• 4821, 12.11.2026 в 14:05, код 05, версия 2.5")
    assert [(m.kind, m.key) for m in ms] == [
        ("id", "id:037182540419"), ("number", "num:3270"), ("number", "num:4821"),
        ("date", "date:12.11.2026"), ("time", "time:14:05"), ("number", "num:5"), ("number", "num:2.5"),
    ]


def test_dates_match_without_a_year_but_not_with_another_year() -> None:
    gen = FactIndex.of("отменили 23.10")
    assert fact_present(parse_fact("23 октября 2022"), gen, "отменили 23.10")
    assert not fact_present(parse_fact("23 октября 2022"), FactIndex.of("23.10.2021"), "23.10.2021")


def test_facts_from_reference() -> None:
    assert [f.text for f in facts_from_reference(REF)] == ["02632305-0222", "20 588", "23 октября", "20:32"]


def test_fact_recall_by_hand() -> None:
    facts = facts_from_reference(REF)
    # Has the order number, the amount and the date (in other spellings); lacks the time 20:32.
    gen = "Мой заказ 02632305-0222 на 20588 рублей отменили 23.10, верните деньги"
    score = ground(gen, facts, FactIndex.of(REF))
    assert score["fact_recall"] == (0.75, {"missing": ["20:32"]})
    assert score["hallucinated_numbers"] == (0.0, [])


def test_planted_invented_amount() -> None:
    gen = "Не могу оплатить 43 рубля за заказ 02632305-0222 от 23 октября"
    score = ground(gen, facts_from_reference(REF), FactIndex.of(REF))
    assert score["hallucinated_numbers"] == (1.0, ["43"])


def test_a_numbered_lists_numbers_are_not_invented_but_a_sources_numbering_is_a_source() -> None:
    steps = "1. Откройте раздел «Лимиты»\n2) Нажмите «Повысить»"
    assert keys(steps) == []  # numbering at the start of a line, not facts
    assert ground(steps, [], FactIndex.of("Лимиты"))["hallucinated_numbers"] == (0.0, [])
    # The screenshot's «9. Про переводы и лимиты» reaches the OCR baseline's request mid-line («…Настройки; 9. Про
    # переводы…»), where it is a number: the OCR text, as a source, has that 9 (it counted as invented before).
    ocr = "Главная Настройки\n9. Про переводы и лимиты >"
    request = "У меня на экране написано: «Главная Настройки; 9. Про переводы и лимиты >»"
    assert ground(request, [], FactIndex.of(ocr))["hallucinated_numbers"] == (0.0, [])
    assert ground(request, [], FactIndex.of("Главная Настройки"))["hallucinated_numbers"] == (1.0, ["9"])


def test_ocr_text_grounds_a_number(tmp_path) -> None:
    # 360 is not in the reference but is on the screenshot: grounded by the OCR text.
    items = {"a": {"reference": "Не хватает средств на карте", "ocr_text": "Недостаточно средств\n360 ₽"}}
    ctx = make_ctx(tmp_path, items, settings={"grounding": {"ocr": True}})
    out = Grounding().score(rows("Не хватает 360 ₽ и ещё 99 ₽"), ctx)[0]
    value, detail = out["hallucinated_numbers"]
    if "ocr" in detail["sources"]:  # Tesseract installed: the stored OCR text is a source
        assert (value, detail["numbers"]) == (1.0, ["99"])
    else:
        assert (value, detail["numbers"]) == (2.0, ["360", "99"])
        assert "ocr" in detail


def test_without_ocr_only_reference_and_facts(tmp_path) -> None:
    items = {"a": {"reference": "Оплата 360 ₽ не прошла", "facts": ["360 ₽", "MasterCard"],
                   "ocr_text": "MasterCard 7315"}}
    ctx = make_ctx(tmp_path, items, settings={"grounding": {"ocr": False}})
    out = Grounding().score(rows("Оплата 360 рублей картой Mastercard 7315 не прошла", "Оплата не прошла"), ctx)
    assert out[0]["fact_recall"] == (1.0, {"missing": []})
    assert out[0]["hallucinated_numbers"][0] == 1.0  # 7315 only in the (unused) OCR text
    assert out[0]["hallucinated_numbers"][1]["sources"] == ["reference", "facts"]
    assert out[1]["fact_recall"] == (0.0, {"missing": ["360 ₽", "MasterCard"]})
    assert [f.text for f in item_facts(ctx.items["a"])] == ["360 ₽", "MasterCard"]


def test_no_facts_and_no_sources(tmp_path) -> None:
    ctx = make_ctx(tmp_path, {"a": {}}, settings={"grounding": {"ocr": False}})
    out = Grounding().score(rows("Оплата 5 ₽"), ctx)[0]
    assert out["fact_recall"] == (None, "no key facts")
    assert out["hallucinated_numbers"][0] is None
    assert Grounding().unavailable(ctx) is not None


@pytest.mark.needs("tesseract")
def test_ocr_text_is_computed_once_and_stored(tmp_path) -> None:
    import shutil

    from vlmpipe.app.demo import demo_dir
    from vlmpipe.core.store import Store

    shutil.copy(demo_dir() / "data" / "failed_payment.png", tmp_path / "shot.png")
    store = Store(tmp_path / "run.sqlite")
    store.put_items([{"id": "a", "image": "shot.png", "reference": "Оплата не прошла"}])
    ctx = make_ctx(tmp_path)
    ctx.items = {i["id"]: i for i in store.items()}
    ctx.store = store
    # «14:07» is the phone's clock and «4821» the card: both only on the screenshot; «777» is invented.
    out = Grounding().score(rows("В 14:07 карта 4821 отклонена, списано 777 ₽"), ctx)[0]
    assert out["hallucinated_numbers"][0] == 1.0
    assert out["hallucinated_numbers"][1]["numbers"] == ["777"]
    stored = store.items()[0]["ocr_text"]
    assert "4821" in stored
    # A second scoring reads the stored text instead of running Tesseract again.
    store.set_ocr_text("a", "карта 4821")
    ctx.items = {i["id"]: i for i in store.items()}
    out = Grounding().score(rows("В 14:07 карта 4821"), ctx)[0]
    assert out["hallucinated_numbers"][1]["numbers"] == ["14:07"]
    store.close()
