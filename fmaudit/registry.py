"""One registry for every kind of pluggable component: data stages, engines, scorers, model stages, audits,
CLI areas and demo steps.

A registry maps names to objects (usually classes). Built-ins are listed by module path (a module that
registers its component when imported, ``"module:attr"``, or a module that is the component, such as a
CLI area) and imported only when asked for, so checking a policy imports no heavy library; other packages add components through an
entry-point group of their own (``fmaudit.stages``, ``fmaudit.audits``, ...) or with the decorator::

    AUDITS = Registry("audit", group="fmaudit.audits", builtins={"perplexity": "fmaudit.audits.perplexity"})

    @AUDITS.register
    class Perplexity(Audit):
        name = "perplexity"

Components declare the optional packages they need as ``requires = {"fairlearn": "fairness"}`` (import
name -> extra of fmaudit); :func:`check_requires` turns a missing one into an input error (exit 2) that
says what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import lru_cache
from typing import Any, Generic, Iterable, Mapping, Optional, TypeVar

from fmaudit.errors import InputError

T = TypeVar("T")


class UnknownName(InputError, KeyError):
    """A name no registry entry has; the message lists the available names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Name -> component, with lazy built-ins, entry-point plug-ins and a duplicate guard."""

    def __init__(self, kind: str, group: Optional[str] = None, builtins: Optional[Mapping[str, str]] = None):
        self.kind = kind
        self.group = group
        self.builtins: dict[str, str] = dict(builtins or {})
        self._items: dict[str, T] = {}

    def register(self, obj: Optional[T] = None, *, name: Optional[str] = None) -> Any:
        """Decorator (bare or with ``name=``): add ``obj`` under ``name`` or its ``name`` attribute."""

        def add(o: T) -> T:
            key = name or getattr(o, "name", None)
            if not isinstance(key, str) or not key:
                raise TypeError(f"a registered {self.kind} needs a name (a 'name' attribute or name=...)")
            existing = self._items.get(key)
            if existing is not None and existing is not o:
                where = getattr(existing, "__module__", "?")
                raise ValueError(f"{self.kind} name {key!r} is already registered by {where}")
            self._items[key] = o
            return o

        return add if obj is None else add(obj)

    def names(self) -> list[str]:
        """Every name that :meth:`get` can resolve (built-ins, registered, plug-ins), sorted."""
        found = set(self.builtins) | set(self._items)
        found |= {ep.name for ep in self._entry_points()}
        return sorted(found)

    def get(self, name: str) -> T:
        """The component registered as ``name``; :class:`UnknownName` listing the available ones otherwise."""
        if name not in self._items:
            if name in self.builtins:
                module, _, attr = self.builtins[name].partition(":")
                loaded = importlib.import_module(module)
                if name not in self._items:  # "module:attr", or a module that is itself the component
                    self.register(getattr(loaded, attr) if attr else loaded, name=name)
            else:
                for ep in self._entry_points():
                    if ep.name == name:
                        loaded = ep.load()
                        if name not in self._items:  # the plug-in module may have registered itself
                            self.register(loaded, name=name)
                        break
        if name not in self._items:
            raise UnknownName(f"unknown {self.kind} {name!r}; available: {', '.join(self.names()) or 'none'}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        """Whether :meth:`get` can resolve ``name``; plug-ins are looked up only for a name that is not built in
        or registered (the scan of the installed packages costs a job's start-up a few hundredths of a second)."""
        return isinstance(name, str) and (name in self.builtins or name in self._items or name in self.names())

    def items(self) -> Iterable[tuple[str, T]]:
        """Every component, loading all built-ins and plug-ins (for listings such as ``policy schema``)."""
        return [(n, self.get(n)) for n in self.names()]

    def _entry_points(self):
        return _all_entry_points(tuple(sys.path)).select(group=self.group) if self.group else ()


@lru_cache(maxsize=4)
def _all_entry_points(search_path: tuple[str, ...]):
    """Every installed entry point, found in one scan of the installed packages per ``sys.path`` (each
    registry's group is picked from it; a scan per group cost a few hundredths of a second at start-up)."""
    from importlib.metadata import entry_points

    return entry_points()


def missing_requirements(component: Any) -> list[tuple[str, str]]:
    """``(package, extra)`` for each package in ``component.requires`` that cannot be imported."""
    requires: Mapping[str, str] = getattr(component, "requires", None) or {}
    return [(pkg, extra) for pkg, extra in requires.items() if importlib.util.find_spec(pkg) is None]


def check_requires(component: Any, what: Optional[str] = None) -> None:
    """Raise :class:`InputError` (exit 2) naming the extra to install when a package ``component`` needs is missing."""
    missing = missing_requirements(component)
    if missing:
        label = what or f"{getattr(component, 'kind', '')} {getattr(component, 'name', component)!r}".strip()
        extras = sorted({extra for _, extra in missing})
        raise InputError(f"{label} needs the package{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(repr(p) for p, _ in missing)}: "
                         f"pip install 'fmaudit[{','.join(extras)}]'")
