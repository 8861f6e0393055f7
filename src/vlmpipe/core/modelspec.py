"""A model entry of the config (``models[i]``, ``references.model``, ``judge.model``), typed by its provider.

Every provider has its own spec class: a subclass of :class:`ModelSpec` that declares
``provider: Literal["<name>"] = "<name>"``, forbids unknown keys and validates its own fields. The provider's
module registers that class together with its implementation in :data:`PROVIDERS`
(:func:`vlmpipe.providers.registry.register_provider`). :data:`AnyModelSpec` is the config's field type: a
discriminated union on ``provider`` (default ``openai``) that is open to plugins — when a model entry is
validated, the class is looked up in the registry by the entry's ``provider`` (loading the built-in providers or
the plugin's entry point on first use; see :mod:`vlmpipe.core.registry` for why ``core`` loads them by name),
and the entry is validated by that class. So every error is found when the config is loaded, before anything
is sent: an unknown provider lists the known ones (``models.0.provider: unknown provider 'x'; known: ocr,
openai``), a field of another provider is an unknown key naming this provider's fields.

The rest of vlmpipe asks the spec, never its provider's name: what changes the text it produces
(:meth:`ModelSpec.sampling_signature`), how the report shows it (:meth:`~ModelSpec.describe`), which environment
variables must hold a key (:meth:`~ModelSpec.key_env_vars`), whether ``vlmpipe bench`` can measure it
(:meth:`~ModelSpec.bench_skip_reason`), whether it can be the judge (:attr:`~ModelSpec.can_judge`). Models served
over HTTP (a ``base_url``, replicas, a launched server) are :class:`vlmpipe.providers.http.HttpModelSpec`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, SerializeAsAny, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from vlmpipe.core.registry import Registry, RegistryError

DEFAULT_PROVIDER = "openai"


class ModelSpec(BaseModel):
    """The fields every model has; a provider's spec class adds its own (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Display name; the key of the model in every table.")
    provider: str = Field(description="The provider serving the model; each spec class fixes it to its name.")
    concurrency: int | None = Field(default=None, gt=0, description="Overrides the run's concurrency.")

    #: whether the judge stage (an OpenAI-compatible chat API with a JSON schema) can use this model
    can_judge: ClassVar[bool] = False
    #: why GPU memory and server gauges are not measured for a model that has no server
    no_server_reason: ClassVar[str] = "the provider runs in vlmpipe's process, without a server"

    def model_post_init(self, context: Any, /) -> None:
        if type(self) is ModelSpec:
            raise TypeError("ModelSpec is the base of the providers' spec classes: use a provider's class, or "
                            "parse_model_spec() to pick it from a mapping's 'provider'")

    @property
    def model_id(self) -> str:
        """What the provider is asked for (the spec's name unless the provider has a ``model`` field)."""
        return self.name

    def sampling_signature(self) -> dict[str, Any]:
        """What changes the text the model produces; part of every generation's key (``stages.plan``).

        Changing it makes new generations instead of reusing stored ones, so keep it stable across versions."""
        raise NotImplementedError(f"{type(self).__name__} must define sampling_signature()")

    def describe(self) -> str:
        """One line for the report's settings: provider, model and what changes its output."""
        return f"{self.provider} {self.model_id}"

    def address(self) -> str | None:
        """Where requests go, for messages (a URL); ``None`` when the model runs in vlmpipe's process."""
        return None

    def key_env_vars(self) -> dict[str, str]:
        """``{field: variable}``: environment variables naming a secret that must be set before anything is sent.

        The stages refuse to start when one is unset (``core.keys``) and the run's log masks their values."""
        return {}

    def record(self) -> dict[str, Any]:
        """The spec as stored with the run's models (``run.sqlite``); a spec may leave out values here."""
        return self.model_dump(mode="json")

    def bench_skip_reason(self) -> str | None:
        """Why ``vlmpipe bench`` (streamed requests to a server: TTFT, TPOT, ITL) cannot measure this model;
        ``None`` when it can."""
        return f"bench measures model servers, and provider {self.provider!r} has none: {self.no_server_reason}"

    def for_bench(self) -> Self:
        """The spec as ``vlmpipe bench`` sends it (e.g. streaming on, retries off)."""
        return self


@dataclass(frozen=True)
class ProviderEntry:
    """A registered provider: its spec class and the factory making its implementation from a spec.

    ``factory`` returns a :class:`vlmpipe.providers.base.Provider`; ``core`` only keeps it."""

    spec: type[ModelSpec]
    factory: Callable[[Any], Any]

    @property
    def name(self) -> str:
        return provider_name(self.spec)


def provider_name(spec: type[ModelSpec]) -> str:
    """The provider a spec class serves: the default of its ``provider`` field."""
    field = spec.model_fields.get("provider")
    name = field.default if field is not None else None
    if not isinstance(name, str) or not name or spec is ModelSpec:
        raise TypeError(f"{spec.__name__} must declare its provider's name: provider: Literal['NAME'] = 'NAME'")
    return name


#: every provider: the built-ins (``vlmpipe.providers``) and the entry points of the group ``vlmpipe.providers``
PROVIDERS: Registry[ProviderEntry] = Registry("provider", group="vlmpipe.providers", builtins="vlmpipe.providers",
                                              same=operator.eq)


def _message(kind: str, text: str) -> PydanticCustomError:
    return PydanticCustomError(kind, "{message}", {"message": text})


def _provider_error(kind: str, text: str, value: Any) -> ValidationError:
    line: InitErrorDetails = {"type": _message(kind, text), "loc": ("provider",), "input": value}
    return ValidationError.from_exception_data("ModelSpec", [line])


def _name_foreign_keys(err: ValidationError, spec: type[ModelSpec]) -> ValidationError:
    """``err`` with every unknown key of the entry itself (not of a nested mapping such as ``launch``) explained:
    not a field of this provider, and which fields it has."""
    errors = err.errors()
    if not any(_own_unknown_key(e) for e in errors):
        return err
    fields = ", ".join(spec.model_fields)
    lines: list[InitErrorDetails] = []
    for e in errors:
        if _own_unknown_key(e):
            text = (f"unknown key for provider {provider_name(spec)!r} (check the spelling, and the provider: "
                    f"its keys are {fields})")
            lines.append({"type": _message("unknown_key", text), "loc": e["loc"], "input": e["input"]})
        else:
            lines.append({"type": _message(e["type"], e["msg"]), "loc": e["loc"], "input": e["input"]})
    return ValidationError.from_exception_data(err.title, lines)


def _own_unknown_key(error: ErrorDetails) -> bool:
    return error["type"] == "extra_forbidden" and len(error["loc"]) == 1


def _validate(value: Any) -> ModelSpec:
    """Validate one model entry with the spec class its ``provider`` names (see the module docstring)."""
    if isinstance(value, ModelSpec):
        return value
    if not isinstance(value, Mapping):
        raise _message("model_type", f"a model entry must be a mapping of keys to values (name, provider, ...), "
                                     f"got {type(value).__name__}")
    name = value.get("provider", DEFAULT_PROVIDER)
    if not isinstance(name, str):
        raise _provider_error("provider_type", f"must be a provider's name such as {DEFAULT_PROVIDER!r}", name)
    try:
        entry = PROVIDERS.get(name)
    except RegistryError as err:
        raise _provider_error("unknown_provider", str(err), name) from None
    try:
        return entry.spec.model_validate(dict(value))
    except ValidationError as err:
        raise _name_foreign_keys(err, entry.spec) from None


#: the config's type of a model entry: the spec class of the entry's ``provider``, saved with all its fields
AnyModelSpec = Annotated[SerializeAsAny[ModelSpec], PlainValidator(_validate)]

_ADAPTER: TypeAdapter[ModelSpec] = TypeAdapter(AnyModelSpec)


def parse_model_spec(data: Any) -> ModelSpec:
    """A model entry (a mapping, as in the YAML) as its provider's spec; raises pydantic's ``ValidationError``."""
    return _ADAPTER.validate_python(data)
