"""The OCR baseline on a rendered Russian screenshot (needs Debian tesseract-ocr with rus data)."""

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlmpipe.core.config import ModelSpec
from vlmpipe.providers import Request
from vlmpipe.providers.ocr import OcrProvider, compose_request

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
    provider = OcrProvider(ModelSpec(name="ocr", provider="ocr"))
    data = rendered_screen()
    gen = asyncio.run(provider.generate(Request("x", "data:,", "instruction", image_bytes=data)))
    assert gen.ok, gen.error
    assert "02632305-0222" in (gen.text or "")
    assert "октября" in (gen.text or "")
    assert gen.latency_s is not None and gen.latency_s > 0


def test_ocr_needs_local_bytes() -> None:
    provider = OcrProvider(ModelSpec(name="ocr", provider="ocr"))
    gen = asyncio.run(provider.generate(Request("x", "https://example.invalid/a.png", "i")))
    assert gen.error_kind in ("image", "unavailable")
