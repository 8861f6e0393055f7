"""Model providers behind one small async interface."""

from vlmpipe.providers.base import Generation, Provider, Request
from vlmpipe.providers.registry import make_provider

__all__ = ["Generation", "Provider", "Request", "make_provider"]
