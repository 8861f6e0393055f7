"""Tesseract OCR: what the OCR baseline provider and the grounding metric read off a screenshot.

Needs the Debian packages ``tesseract-ocr`` and ``tesseract-ocr-rus``; :func:`ocr_available` says what is missing.

:func:`ocr_lines` reads one image given as bytes (the provider). :func:`ocr_files` reads many image files (the
grounding metric): one Tesseract process per batch of files, so its language models load once per batch, batches in
parallel, one per core; a file Tesseract reads as it is (an 8-bit RGB PNG or JPEG) is handed over by its path,
without decoding and re-encoding it, and any other is converted to RGB PNG first as :func:`ocr_lines` does — the
same pixels either way, so the same text.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import regex

log = logging.getLogger("vlmpipe.ocr")

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
    return text_lines(text)


def text_lines(text: str) -> list[str]:
    """Tesseract's text as lines: whitespace collapsed, lines with fewer than two letters or digits dropped."""
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if len(_WORDY.findall(line)) >= 2:
            lines.append(line)
    return lines


#: Files per Tesseract process: its language models load once per batch (~0.1 s), and a batch is the unit of work
#: spread over the cores.
OCR_BATCH = 32
#: Formats Tesseract (Leptonica) decodes to the same pixels as Pillow: handed over by path when 8-bit RGB.
DIRECT_FORMATS = ("PNG", "JPEG")


def _direct(path: Path) -> bool:
    """Whether Tesseract can read ``path`` as it is and see what :func:`ocr_lines` would give it."""
    from PIL import Image

    if "\n" in str(path) or "\r" in str(path):  # one path per line in Tesseract's list file
        return False
    try:
        with Image.open(path) as im:  # reads the header only
            # a resolution in the file (PNG pHYs, JPEG JFIF/EXIF) is used by Tesseract, which otherwise estimates
            # one: the same screenshot read two ways (`8 800 555-89-82` vs `8 800 ae`). ocr_lines hands Tesseract
            # a copy without it, so such a file is converted too.
            return im.format in DIRECT_FORMATS and im.mode == "RGB" and not _has_resolution(im.info)
    except Exception:
        return False


def _has_resolution(info: dict[str, object]) -> bool:
    return any(k in info for k in ("dpi", "jfif_density", "exif"))


def _tesseract(inputs: Sequence[str], lang: str, psm: int | None, tmp: Path) -> list[str] | None:
    """Raw text of each input file from one Tesseract process, or ``None`` when it did not read them all."""
    import pytesseract

    listing = tmp / f"batch-{os.getpid()}-{id(inputs)}.txt"
    listing.write_text("".join(f"{p}\n" for p in inputs), encoding="utf-8")
    cmd = [pytesseract.pytesseract.tesseract_cmd, str(listing), "stdout", "-l", lang]
    if psm is not None:
        cmd += ["--psm", str(psm)]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run(cmd, capture_output=True, env=env, check=False)
    pages = done.stdout.decode("utf-8", errors="replace").split("\f")  # one page per file, form feeds between
    if done.returncode != 0 or len(pages) != len(inputs):
        return None
    return pages


def _one(path: Path, lang: str, psm: int | None) -> list[str]:
    try:
        return ocr_lines(path.read_bytes(), lang, psm)
    except Exception as err:  # one unreadable image must not stop the others
        log.warning("OCR of %s failed: %s", path, err)
        return []


def ocr_files(paths: Sequence[Path], lang: str = "rus+eng", psm: int | None = None, *, workers: int | None = None,
              progress: Callable[[int], None] | None = None) -> list[list[str]]:
    """The text lines of each image file (as :func:`ocr_lines` reads it; ``[]`` for a file that cannot be read),
    in batches of :data:`OCR_BATCH` files per Tesseract process, ``workers`` processes at a time (default: one per
    core). ``progress(n)`` is called as batches finish."""
    paths = [Path(p) for p in paths]
    out: list[list[str]] = [[] for _ in paths]
    if not paths:
        return out
    from PIL import Image

    workers = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                             else os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="vlmpipe-ocr-") as tmp_dir:
        tmp = Path(tmp_dir)

        def batch(start: int) -> None:
            idx = list(range(start, min(start + OCR_BATCH, len(paths))))
            inputs: list[str] = []
            readable: list[int] = []
            for i in idx:
                path = paths[i]
                if _direct(path):
                    inputs.append(str(path.resolve()))
                    readable.append(i)
                    continue
                try:  # what ocr_lines hands Tesseract: the image in RGB, as PNG without a resolution
                    with Image.open(path) as im:
                        converted = tmp / f"{i}.png"
                        im.convert("RGB").save(converted, "PNG", compress_level=1)  # the same pixels, 2x faster
                    inputs.append(str(converted))
                    readable.append(i)
                except Exception as err:
                    log.warning("OCR of %s failed: %s", path, err)
            pages = _tesseract(inputs, lang, psm, tmp) if inputs else []
            for i in idx:  # a thousand converted screenshots would otherwise wait on disk until the end
                (tmp / f"{i}.png").unlink(missing_ok=True)
            if pages is None:  # a file Tesseract could not read stops its batch: read them one by one
                for i in readable:
                    out[i] = _one(paths[i], lang, psm)
            else:
                for i, page in zip(readable, pages, strict=True):
                    out[i] = text_lines(page)
            if progress is not None:
                progress(len(idx))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(batch, range(0, len(paths), OCR_BATCH)))
    return out
