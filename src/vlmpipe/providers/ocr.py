"""The offline OCR baseline: Tesseract reads the screenshot, a fixed Russian template makes the request.

It is the floor every VLM must beat and what lets the demo run with no GPU and no network. It needs the
Debian packages ``tesseract-ocr`` and ``tesseract-ocr-rus``; without them every request fails with a clear
error naming what to install.
"""

from __future__ import annotations

import asyncio
import time

from vlmpipe.core.config import ModelSpec
from vlmpipe.core.ocr import ocr_available, ocr_lines
from vlmpipe.providers.base import Generation, Request

MAX_LINES = 12


def compose_request(lines: list[str]) -> str:
    """The fixed template that turns recognised lines into a support request."""
    if not lines:
        return "Здравствуйте! У меня проблема, но текст на скриншоте не читается. Помогите, пожалуйста."
    shown = "; ".join(lines[:MAX_LINES])
    return f"Здравствуйте! У меня на экране написано: «{shown}». Помогите, пожалуйста, разобраться."


class OcrProvider:
    """``provider: ocr`` — needs local image bytes; URLs are not fetched."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.lang = str(spec.extra_body.get("lang", "rus+eng"))

    async def aclose(self) -> None:
        return None

    async def generate(self, request: Request) -> Generation:
        ok, why = ocr_available()
        if not ok:
            return Generation(error=f"OCR unavailable: {why}", error_kind="unavailable")
        if request.image_bytes is None:
            return Generation(error="the OCR baseline needs a local image file, not a URL", error_kind="image")
        t0 = time.perf_counter()
        try:
            lines = await asyncio.wait_for(
                asyncio.to_thread(ocr_lines, request.image_bytes, self.lang), timeout=self.spec.timeout_s
            )
        except TimeoutError:
            return Generation(error=f"OCR took longer than {self.spec.timeout_s:g} s", error_kind="timeout",
                              latency_s=time.perf_counter() - t0)
        except Exception as err:  # tesseract failure on one image must not stop the run
            return Generation(error=f"OCR failed: {err}"[:300], error_kind="ocr",
                              latency_s=time.perf_counter() - t0)
        text = compose_request(lines)
        latency = time.perf_counter() - t0
        return Generation(text=text, latency_s=latency, extra={"ocr_lines": lines})
