"""Model providers behind one small async interface."""

from .base import Generation, Provider, Request, make_provider

__all__ = ["Generation", "Provider", "Request", "make_provider"]
