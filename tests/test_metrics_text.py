"""Letter scripts, spelling and language: hand-checked values."""

from __future__ import annotations

import pytest

from metric_helpers import make_ctx, rows
from vlmpipe.metrics.language import LanguageId
from vlmpipe.metrics.letters import Letters, letter_stats
from vlmpipe.metrics.spelling import Spelling, misspelled

needs_dicts = pytest.mark.needs("hunspell")


def test_letter_scripts_counted_by_hand() -> None:
    # 10 letters: 6 Cyrillic (привет), 4 Latin (Ozon); no other scripts.
    s = letter_stats("Привет, Ozon!")
    assert s["non_ru_en_letters"] == (0.0, None)
    assert s["en_letters_pct"][0] == pytest.approx(40.0)
    assert s["unique_en_words"] == (1.0, ["ozon"])
    # Chinese drift: 2 Han letters out of 8 letters; digits and punctuation are not letters.
    s = letter_stats("Заказ 42 你好")
    assert s["non_ru_en_letters"] == (2.0, "你好")
    assert s["en_letters_pct"][0] == 0.0
    assert letter_stats("12 345 ₽")["en_letters_pct"] == (None, None)


def test_letters_metric_excludes_allowed_brands(tmp_path) -> None:
    ctx = make_ctx(tmp_path, spelling_allow=["Ozon"])
    out = Letters().score(rows("Оплата Ozon Pay не прошла, sorry Sorry"), ctx)[0]
    assert out["unique_en_words"] == (2.0, ["pay", "sorry"])


@needs_dicts
def test_planted_misspelling_is_found_and_correct_text_is_clean() -> None:
    assert misspelled("Здравствуйте! Мой заказ отменили, подскажите, пожалуйста, почему.") == []
    # «перешлили» (a real 2B-GPTQ-Int4 error from the peer data) and a planted «аплата».
    assert misspelled("Страница была удалена или вы перешлили по ссылке, аплата не прошла") == ["перешлили", "аплата"]
    # Latin words are checked against English: «Sorry» is fine, «pleese» is not.
    assert misspelled("Sorry, pleese help") == ["pleese"]


@needs_dicts
def test_project_word_list_allow_list_and_urls(tmp_path) -> None:
    # Hunspell ru_RU rejects these support words; the project word list accepts them.
    assert misspelled("Промокод не применилась, на скриншоте маркетплейса виден QR-код") == []
    # The allow-list (brands, abbreviations) is case-insensitive; addresses are skipped.
    ctx = make_ctx(tmp_path, spelling_allow=["СБП", "Ozon", "юрлицо"])
    out = Spelling().score(rows("Перевод через СБП на OZON для юрлицо, см. seller.ozon.ru", "Сбп тест ошипка"), ctx)
    assert out[0]["spelling_errors"] == (0.0, [])
    assert out[1]["spelling_errors"] == (1.0, ["ошипка"])


@needs_dicts
def test_mixed_script_word_is_an_error() -> None:
    assert misspelled("Мой заказ на Оzon") == ["Оzon"]  # Cyrillic О + Latin zon


def test_planted_english_answer_is_off_language(tmp_path) -> None:
    ctx = make_ctx(tmp_path)
    out = LanguageId().score(rows(
        "Здравствуйте! Не проходит оплата заказа через СБП, помогите разобраться.",
        "Hello, my payment did not go through. Could you please help me?",
        "Оплата через Ozon Pay",  # 18 letters < min_language_chars=20: not judged, not flagged
        "СБП",
    ), ctx)
    assert [o["language"][1] for o in out] == ["ru", "en", "short", "short"]
    assert [o["off_language"][0] for o in out] == [0.0, 1.0, 0.0, 0.0]
    assert all(o["language"][0] is None for o in out)


def test_language_candidates_are_restricted(tmp_path) -> None:
    # With only ru and en as candidates a Ukrainian-looking text can only come out ru or en.
    ctx = make_ctx(tmp_path, languages=["ru", "en"])
    out = LanguageId().score(rows("Доброго дня, мені потрібна допомога з оплатою замовлення"), ctx)[0]
    assert out["language"][1] in {"ru", "en"}
    assert LanguageId().unavailable(make_ctx(tmp_path, languages=["ru", "xx"])) is not None


def test_missing_dictionaries_make_spelling_unavailable(monkeypatch, tmp_path) -> None:
    import enchant

    monkeypatch.setattr(enchant, "dict_exists", lambda tag: tag != "ru_RU")
    why = Spelling().unavailable(make_ctx(tmp_path))
    assert why is not None and "ru_RU" in why and "hunspell-ru" in why
