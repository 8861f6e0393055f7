"""The OCR baseline on a rendered Russian screenshot (needs Debian tesseract-ocr with rus data), and its spec's
options (lang, psm, template) reaching Tesseract and the request."""

import asyncio
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlmpipe.providers import Request
from vlmpipe.providers import ocr as ocr_provider
from vlmpipe.providers.ocr import OcrProvider, OcrSpec, compose_request

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def rendered_screen() -> bytes:
    im = Image.new("RGB", (520, 260), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(str(FONT), 22)
    for y, line in enumerate(["Заказ № 02632305-0222", "Отменён 23 октября в 20:32", "Сумма 1490 рублей"]):
        draw.text((20, 30 + 60 * y), line, fill="black", font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_template_wraps_recognised_lines() -> None:
    text = compose_request(["Заказ № 1", "Отменён"])
    assert text.startswith("Здравствуйте!") and "«Заказ № 1; Отменён»" in text
    assert "не читается" in compose_request([])


@pytest.mark.needs("tesseract")
def test_ocr_baseline_reads_the_order_number() -> None:
    provider = OcrProvider(OcrSpec(name="ocr"))
    data = rendered_screen()
    gen = asyncio.run(provider.generate(Request("x", "data:,", "instruction", image_bytes=data)))
    assert gen.ok, gen.error
    assert "02632305-0222" in (gen.text or "")
    assert "октября" in (gen.text or "")
    assert gen.latency_s is not None and gen.latency_s > 0


def test_ocr_needs_local_bytes() -> None:
    provider = OcrProvider(OcrSpec(name="ocr"))
    gen = asyncio.run(provider.generate(Request("x", "https://example.invalid/a.png", "i")))
    assert gen.error_kind in ("image", "unavailable")


def test_the_spec_options_reach_tesseract_and_the_template(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int | None]] = []

    def fake_lines(data: bytes, lang: str = "rus+eng", psm: int | None = None) -> list[str]:
        seen.append((lang, psm))
        return ["Заказ № 1", "Отменён"] if data else []

    monkeypatch.setattr(ocr_provider, "ocr_lines", fake_lines)
    monkeypatch.setattr(ocr_provider, "ocr_available", lambda lang: (True, ""))
    spec = OcrSpec(name="ocr", lang="rus", psm=6, template="Текст на экране: {lines}.", unreadable="Пусто.")
    provider = OcrProvider(spec)
    read = asyncio.run(provider.generate(Request("x", "data:,", "i", image_bytes=b"png")))
    empty = asyncio.run(provider.generate(Request("x", "data:,", "i", image_bytes=b"")))
    assert seen == [("rus", 6), ("rus", 6)]
    assert (read.text, empty.text) == ("Текст на экране: Заказ № 1; Отменён.", "Пусто.")


@pytest.mark.needs("tesseract")
def test_tesseract_reads_with_the_configured_psm_and_lang() -> None:
    spec = OcrSpec(name="ocr", lang="rus", psm=6, template="Скрин: {lines}")
    gen = asyncio.run(OcrProvider(spec).generate(Request("x", "data:,", "i", image_bytes=rendered_screen())))
    assert gen.ok, gen.error
    assert (gen.text or "").startswith("Скрин: ") and "02632305-0222" in (gen.text or "")


def test_a_language_without_data_names_the_package_to_install() -> None:
    if shutil.which("tesseract") is None:
        pytest.fail("the set-up must install Tesseract")
    gen = asyncio.run(OcrProvider(OcrSpec(name="ocr", lang="rus+xyz")).generate(
        Request("x", "data:,", "i", image_bytes=rendered_screen())))
    assert gen.error_kind == "unavailable"
    assert "lacks language data ['xyz'] (Debian: apt-get install tesseract-ocr-xyz)" in (gen.error or "")
