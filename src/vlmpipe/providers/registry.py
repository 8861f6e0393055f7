"""Which provider serves a model spec."""

from __future__ import annotations

from vlmpipe.core.config import ModelSpec
from vlmpipe.providers.base import Provider
from vlmpipe.providers.ocr import OcrProvider
from vlmpipe.providers.openai_compat import OpenAICompatProvider
from vlmpipe.providers.replicas import ReplicaProvider


def make_provider(spec: ModelSpec) -> Provider:
    """The provider for a model spec (``openai``: any OpenAI-compatible server; ``ocr``: Tesseract)."""
    if spec.provider == "ocr":
        return OcrProvider(spec)
    if spec.base_urls:
        return ReplicaProvider(spec)
    return OpenAICompatProvider(spec)
