"""A registry of named plugins: the built-ins of a package, and third-party ones found through entry points.

One :class:`Registry` holds ``name → value`` for one kind of plugin (providers: ``vlmpipe.providers``). It is
filled by the modules that implement the plugins, which call :meth:`Registry.register` when they are imported.
The registry imports them itself, by name, the first time a name is asked for:

* the **built-ins**: the package named ``builtins`` (``vlmpipe.providers``), whose ``__init__`` imports its
  plugin modules. This does not depend on package metadata, so the built-ins work when vlmpipe runs from a
  source checkout (``PYTHONPATH=src``) as well as installed;
* **plugins**: the entry points of the group ``group`` (``[project.entry-points."vlmpipe.providers"]`` in a
  plugin's ``pyproject.toml``): ``NAME = "module"``. An entry point is loaded (its module imported) only when
  its name is asked for, so a broken plugin breaks only the configs that use it, with a message naming it.
  Its module must register a plugin named ``NAME``.

Why by name: the registry lives in ``core`` (the config, in ``core``, asks it which spec class a model entry
has), and the plugins live in a higher layer that imports ``core``. ``core`` never imports them in code (no
``import`` statement, so ``lint-imports`` sees no upward edge and there is no import cycle): the registry loads
them at run time from names that are data — an entry point's value, or the built-ins' package name given by the
code that creates the registry — the same way any plugin is loaded.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(LookupError):
    """A name that is not registered, a plugin that cannot be loaded, or two plugins claiming one name."""


class Registry(Generic[T]):
    """``name → T`` for one kind of plugin; see the module docstring for how it is filled."""

    def __init__(self, kind: str, *, group: str, builtins: str | None = None,
                 same: Callable[[T, T], bool] | None = None) -> None:
        """``kind``: what a plugin is, for messages ("provider"); ``group``: the entry-point group;
        ``builtins``: the package that registers the built-in plugins when imported; ``same``: whether a second
        registration of a name is the first one again (default: the same object), which is then a no-op."""
        self.kind = kind
        self.group = group
        self.builtins = builtins
        self._same = same or (lambda a, b: a is b)
        self._entries: dict[str, T] = {}
        self._entry_points: dict[str, list[EntryPoint]] | None = None
        self._lock = threading.Lock()  # guards the dicts; never held while importing
        self._builtins_loaded = builtins is None

    # --- filling -----------------------------------------------------------------------------------------
    def register(self, name: str, value: T) -> T:
        """Add ``name``; registering it again with the same value is a no-op, with another one an error."""
        with self._lock:
            existing = self._entries.get(name)
            if existing is not None and not self._same(existing, value):
                raise RegistryError(f"{self.kind} {name!r} is registered twice: {existing!r} and {value!r}")
            self._entries[name] = value
        return value

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests; a plugin being reloaded). Its entry point, if any, is loaded again on demand."""
        with self._lock:
            self._entries.pop(name, None)

    def refresh(self) -> None:
        """Read the entry points again (after a distribution was installed, or a ``*.dist-info`` added to
        ``sys.path``, in this process)."""
        with self._lock:
            self._entry_points = None

    # --- reading -----------------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The plugin ``name``, loading the built-ins or its entry point first when needed.

        Raises :class:`RegistryError` naming the known plugins when there is none, or saying why its entry
        point could not be loaded.
        """
        self._load_builtins()
        if name in self._entries:
            return self._entries[name]
        points = self._points().get(name)
        if not points:
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        values = sorted({p.value for p in points})
        if len(values) > 1:
            raise RegistryError(f"{self.kind} {name!r} is claimed by several entry points of {self.group!r}: "
                                f"{', '.join(values)}")
        try:
            points[0].load()  # imports the module, which registers the plugin (Python's import lock serialises)
        except Exception as err:  # a broken plugin must say so, not crash whoever asked
            raise RegistryError(f"the {self.kind} plugin {name!r} (entry point {name} = {values[0]!r}) could "
                                f"not be loaded: {type(err).__name__}: {err}") from err
        if name not in self._entries:
            raise RegistryError(f"the {self.kind} plugin {name!r} (entry point {name} = {values[0]!r}) was "
                                f"loaded but registered no {self.kind} named {name!r}")
        return self._entries[name]

    def names(self) -> list[str]:
        """Every known name, sorted: registered ones and entry points not loaded yet."""
        self._load_builtins()
        return sorted(set(self._entries) | set(self._points()))

    def loaded(self) -> dict[str, T]:
        """The plugins registered so far (entry points not asked for are not loaded)."""
        self._load_builtins()
        with self._lock:
            return dict(self._entries)

    # --- loading -----------------------------------------------------------------------------------------
    # Imports run outside the lock: the imported module calls register(), possibly from another thread that
    # imported it first (holding Python's import lock), which must not wait for a lock held here.
    def _load_builtins(self) -> None:
        if not self._builtins_loaded and self.builtins is not None:
            importlib.import_module(self.builtins)  # a module being imported is returned as is: no recursion
            self._builtins_loaded = True

    def _points(self) -> dict[str, list[EntryPoint]]:
        with self._lock:
            if self._entry_points is None:
                found: dict[str, list[EntryPoint]] = {}
                for point in entry_points(group=self.group):
                    found.setdefault(point.name, []).append(point)
                self._entry_points = found
            return self._entry_points
