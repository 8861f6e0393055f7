"""Tesseract OCR: what the OCR baseline provider and the grounding metric read off a screenshot.

Needs the Debian packages ``tesseract-ocr`` and ``tesseract-ocr-rus``; :func:`ocr_available` says what is missing.
"""

from __future__ import annotations

import io
import os
import shutil

import regex

_WORDY = regex.compile(r"[\p{L}\d]")


_FOUND = False  # Tesseract with its data was found in this process: no need to run `tesseract --list-langs` again


def ocr_available() -> tuple[bool, str]:
    """Whether Tesseract with Russian data can be used here, and why not (a success is remembered for the process:
    the check runs Tesseract, ~0.1 s, and the OCR baseline asks before every screenshot)."""
    global _FOUND
    if _FOUND:
        return True, ""
    exe = shutil.which("tesseract")
    if not exe:
        return False, "tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-rus)"
    import pytesseract

    try:
        langs = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractError as err:  # pragma: no cover - broken install
        return False, f"tesseract does not run: {err}"
    missing = {"rus", "eng"} - langs
    if missing:
        return False, f"tesseract lacks language data {sorted(missing)} (apt-get install tesseract-ocr-rus)"
    _FOUND = True
    return True, ""


def ocr_lines(image_bytes: bytes, lang: str = "rus+eng") -> list[str]:
    """The screenshot's text lines as Tesseract reads them, blank and symbol-only lines dropped."""
    import pytesseract
    from PIL import Image

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # ~6x faster on small images, no oversubscription
    with Image.open(io.BytesIO(image_bytes)) as im:
        text = pytesseract.image_to_string(im.convert("RGB"), lang=lang)
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if len(_WORDY.findall(line)) >= 2:
            lines.append(line)
    return lines
