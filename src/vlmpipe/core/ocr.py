"""Tesseract OCR: what the OCR baseline provider and the grounding metric read off a screenshot.

Needs the Debian packages ``tesseract-ocr`` and ``tesseract-ocr-rus``; :func:`ocr_available` says what is missing.
"""

from __future__ import annotations

import io
import os
import shutil

import regex

_WORDY = regex.compile(r"[\p{L}\d]")


_FOUND: set[str] = set()  # language data found in this process: no need to run `tesseract --list-langs` again


def ocr_available(lang: str = "rus+eng") -> tuple[bool, str]:
    """Whether Tesseract with the language data ``lang`` (``+``-joined) can be used here, and why not (a success is
    remembered for the process: the check runs Tesseract, ~0.1 s, and the OCR baseline asks before every
    screenshot)."""
    if lang in _FOUND:
        return True, ""
    exe = shutil.which("tesseract")
    if not exe:
        return False, "tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-rus)"
    import pytesseract

    try:
        langs = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractError as err:  # pragma: no cover - broken install
        return False, f"tesseract does not run: {err}"
    missing = set(lang.split("+")) - langs
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in sorted(missing))
        return False, f"tesseract lacks language data {sorted(missing)} (Debian: apt-get install {packages})"
    _FOUND.add(lang)
    return True, ""


def ocr_lines(image_bytes: bytes, lang: str = "rus+eng", psm: int | None = None) -> list[str]:
    """The screenshot's text lines as Tesseract reads them, blank and symbol-only lines dropped.

    ``psm``: Tesseract's page segmentation mode (``--psm``); ``None``: Tesseract's default."""
    import pytesseract
    from PIL import Image

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # ~6x faster on small images, no oversubscription
    with Image.open(io.BytesIO(image_bytes)) as im:
        text = pytesseract.image_to_string(im.convert("RGB"), lang=lang,
                                           config="" if psm is None else f"--psm {psm}")
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if len(_WORDY.findall(line)) >= 2:
            lines.append(line)
    return lines
