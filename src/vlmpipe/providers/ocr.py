"""The offline OCR baseline (``provider: ocr``): Tesseract reads the screenshot, a template makes the request.

It is the floor every VLM must beat and what lets the demo run with no GPU and no network. It needs the
Debian packages ``tesseract-ocr`` and ``tesseract-ocr-rus`` (and one per other language in ``lang``); without
them every request fails with a clear error naming what to install.

Its spec, :class:`OcrSpec`, has the OCR's own options — ``lang``, ``psm``, ``template``, ``unreadable`` — and
none of an HTTP model's (``base_url`` under ``provider: ocr`` is an unknown key). Configs written before it had
its own spec (every run's saved ``config.yaml`` among them) carried the old shared fields and
``extra_body: {lang: ...}``: an entry with ``extra_body`` is read in that shape — ``extra_body.lang`` becomes
``lang``, the HTTP and sampling fields the OCR never used are dropped.
"""

from __future__ import annotations

import asyncio
import string
import time
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from vlmpipe.core.modelspec import ModelSpec
from vlmpipe.core.ocr import ocr_available, ocr_lines
from vlmpipe.providers.base import Generation, Request
from vlmpipe.providers.registry import register_provider

MAX_LINES = 12
DEFAULT_TEMPLATE = "Здравствуйте! У меня на экране написано: «{lines}». Помогите, пожалуйста, разобраться."
DEFAULT_UNREADABLE = "Здравствуйте! У меня проблема, но текст на скриншоте не читается. Помогите, пожалуйста."
#: fields of the spec all providers shared before each had its own; the OCR never used them
_EARLIER_FIELDS = ("base_url", "model", "api_key_env", "temperature", "max_tokens", "connect_timeout_s",
                   "max_retries", "retry_backoff_s", "max_retry_after_s", "stream", "system_prompt_as_user",
                   "launch", "preset", "base_urls")


def compose_request(lines: list[str], template: str = DEFAULT_TEMPLATE, unreadable: str = DEFAULT_UNREADABLE) -> str:
    """The request: ``template`` with ``{lines}`` = the first recognised lines joined by ``; ``."""
    if not lines:
        return unreadable
    return template.format(lines="; ".join(lines[:MAX_LINES]))


class OcrSpec(ModelSpec):
    """``provider: ocr`` — the Tesseract baseline; needs local image files (URLs are not fetched)."""

    provider: Literal["ocr"] = "ocr"
    lang: str = Field(default="rus+eng", pattern=r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$",
                      description="Tesseract languages joined by '+', e.g. rus+eng.")
    psm: int | None = Field(default=None, ge=0, le=13,
                            description="Tesseract page segmentation mode (--psm); default: Tesseract's own (3).")
    template: str = Field(default=DEFAULT_TEMPLATE, min_length=1,
                          description="The request; {lines}: the recognised lines (at most 12) joined by '; '.")
    unreadable: str = Field(default=DEFAULT_UNREADABLE, min_length=1,
                            description="The request when no text is recognised.")
    timeout_s: float = Field(default=120.0, gt=0, description="Limit on reading one screenshot.")

    no_server_reason: ClassVar[str] = "the OCR baseline runs on the CPU, without a server"

    @model_validator(mode="before")
    @classmethod
    def _earlier_shape(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "extra_body" not in data:
            return data
        extra = data["extra_body"] or {}
        if not isinstance(extra, dict):
            raise ValueError("extra_body: an earlier config's OCR options must be a mapping such as {lang: rus}")
        out = {k: v for k, v in data.items() if k not in (*_EARLIER_FIELDS, "extra_body")}
        if "lang" in extra:
            if "lang" in out and out["lang"] != extra["lang"]:
                raise ValueError(f"lang {out['lang']!r} and extra_body.lang {extra['lang']!r} disagree: keep lang")
            out["lang"] = extra["lang"]
        return out

    @field_validator("psm")
    @classmethod
    def _psm_reads_text(cls, psm: int | None) -> int | None:
        if psm in (0, 2):
            raise ValueError(f"psm {psm} reads no text (0: orientation and script detection only; 2: not "
                             f"implemented by Tesseract): use 1 or 3-13")
        return psm

    @field_validator("template")
    @classmethod
    def _template_fields(cls, template: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as err:
            raise ValueError(f"not a valid template ({err}); write {{{{ and }}}} for literal braces") from None
        if names != {"lines"}:
            unknown = sorted(names - {"lines"})
            raise ValueError("the template must contain {lines}, where the recognised text goes"
                             + (f", and no other placeholder (found {unknown}; write {{{{ and }}}} for literal "
                                f"braces)" if unknown else ""))
        return template

    def sampling_signature(self) -> dict[str, Any]:
        return {"provider": self.provider, "lang": self.lang, "psm": self.psm, "template": self.template,
                "unreadable": self.unreadable}

    def describe(self) -> str:
        psm = "Tesseract's default" if self.psm is None else str(self.psm)
        custom = self.template != DEFAULT_TEMPLATE or self.unreadable != DEFAULT_UNREADABLE
        return f"{self.provider} (Tesseract), lang {self.lang}, psm {psm}" + (", own template" if custom else "")


class OcrProvider:
    """Reads local image bytes with Tesseract; a failure on one image is that generation's error."""

    def __init__(self, spec: OcrSpec) -> None:
        self.spec = spec

    async def aclose(self) -> None:
        return None

    async def generate(self, request: Request) -> Generation:
        spec = self.spec
        ok, why = ocr_available(spec.lang)
        if not ok:
            return Generation(error=f"OCR unavailable: {why}", error_kind="unavailable")
        if request.image_bytes is None:
            return Generation(error="the OCR baseline needs a local image file, not a URL", error_kind="image")
        t0 = time.perf_counter()
        try:
            lines = await asyncio.wait_for(
                asyncio.to_thread(ocr_lines, request.image_bytes, spec.lang, spec.psm), timeout=spec.timeout_s
            )
        except TimeoutError:
            return Generation(error=f"OCR took longer than {spec.timeout_s:g} s", error_kind="timeout",
                              latency_s=time.perf_counter() - t0)
        except Exception as err:  # tesseract failure on one image must not stop the run
            return Generation(error=f"OCR failed: {err}"[:300], error_kind="ocr",
                              latency_s=time.perf_counter() - t0)
        text = compose_request(lines, spec.template, spec.unreadable)
        latency = time.perf_counter() - t0
        return Generation(text=text, latency_s=latency, extra={"ocr_lines": lines})


register_provider(OcrSpec, OcrProvider)
