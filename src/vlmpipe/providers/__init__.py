"""Model providers behind one small async interface. Importing this package registers the built-in providers.

``openai`` (any OpenAI-compatible server; replicas) and ``ocr`` (the Tesseract baseline). Third-party providers
register through the entry-point group ``vlmpipe.providers`` (docs/extending.md).
"""

from vlmpipe.providers import ocr, openai_compat  # noqa: F401  (register the built-in providers)
from vlmpipe.providers.base import Generation, Provider, Request
from vlmpipe.providers.registry import make_provider, provider_names, register_provider

__all__ = ["Generation", "Provider", "Request", "make_provider", "provider_names", "register_provider"]
