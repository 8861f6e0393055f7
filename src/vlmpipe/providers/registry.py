"""The provider registry: each provider module registers its spec class and its implementation here.

A provider is one module that, when imported, calls :func:`register_provider` with

* its **spec class**: a :class:`vlmpipe.core.modelspec.ModelSpec` subclass with
  ``provider: Literal["NAME"] = "NAME"`` and its own fields (pydantic, unknown keys forbidden). The config's model
  entries with ``provider: NAME`` are validated by it;
* its **factory**: ``spec -> Provider`` (:class:`vlmpipe.providers.base.Provider`), called once per model and
  stage; it may choose among implementations (the ``openai`` factory returns the replica provider for a spec
  with ``base_urls``).

The built-ins (``openai``, ``ocr``) are registered by importing :mod:`vlmpipe.providers`; third-party providers
by an entry point of the group ``vlmpipe.providers`` naming their module (``docs/extending.md``). Both are
loaded on first use by the registry in ``core`` (:data:`vlmpipe.core.modelspec.PROVIDERS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from vlmpipe.core.modelspec import PROVIDERS, ModelSpec, ProviderEntry, provider_name
from vlmpipe.providers.base import Provider

S = TypeVar("S", bound=ModelSpec)


def register_provider(spec: type[S], factory: Callable[[S], Provider]) -> type[S]:
    """Register a provider: its spec class and the factory making its implementation. Returns ``spec``."""
    PROVIDERS.register(provider_name(spec), ProviderEntry(spec, cast(Callable[[Any], Any], factory)))
    return spec


def make_provider(spec: ModelSpec) -> Provider:
    """The implementation serving ``spec``, from its provider's registered factory."""
    entry = PROVIDERS.get(spec.provider)
    if not isinstance(spec, entry.spec):
        raise TypeError(f"model {spec.name!r}: a {type(spec).__name__} is not a spec of provider {spec.provider!r} "
                        f"({entry.spec.__name__})")
    return cast(Provider, entry.factory(spec))


def provider_names() -> list[str]:
    """Every known provider: the built-ins and the entry points of the group ``vlmpipe.providers``."""
    return PROVIDERS.names()
