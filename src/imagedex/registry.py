"""One way to choose things by name: analyzers, stores, queues, indexes, notify targets, jobs, CLI
groups.

A `Registry` maps a name (or a URL scheme) to a dotted reference, `"package.module:attribute"`,
imported only when that name is asked for, so enabling one analyzer never loads another's model.
Installed packages add entries through entry points in the registry's group (for analyzers,
`imagedex.analyzers`; for notify targets, `imagedex.notify_targets`):

    [project.entry-points."imagedex.analyzers"]
    my-analyzer = "my_package.analyzer:factory"

An unknown name is answered with the valid ones and the nearest match.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from imagedex.errors import ConfigError

T = TypeVar("T")


class UnknownNameError(ConfigError):
    """A name no registry entry answers to; the message lists the valid names."""


def import_reference(reference: str) -> Any:
    """The object a `"package.module:attribute"` reference names."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


class Registry(Generic[T]):
    """Names resolved lazily to objects of type T (classes, factories, command groups)."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._references: dict[str, str | T] = {}
        self._resolved: dict[str, T] = {}
        self._entry_points_loaded = entry_point_group is None
        self._lock = threading.Lock()

    def register(self, name: str, target: str | T) -> None:
        """Add (or replace) `name`; `target` is the object or a `"module:attribute"` string."""
        with self._lock:
            self._references[name] = target
            self._resolved.pop(name, None)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._references.pop(name, None)
            self._resolved.pop(name, None)

    def names(self) -> list[str]:
        self._load_entry_points()
        return list(self._references)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def resolve(self, name: str) -> T:
        """The object registered as `name`, imported on first use."""
        self._load_entry_points()
        with self._lock:
            if name in self._resolved:
                return self._resolved[name]
            target = self._references.get(name)
        if target is None:
            raise self.unknown(name)
        value: T = import_reference(target) if isinstance(target, str) else target
        with self._lock:
            self._resolved[name] = value
        return value

    def unknown(self, name: str) -> UnknownNameError:
        """The error for a name nothing is registered under."""
        valid = self.names()
        nearest = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hint = f" (did you mean {nearest[0]!r}?)" if nearest else ""
        return UnknownNameError(
            f"unknown {self.kind} {name!r}{hint}; choose from {', '.join(valid) or '(none)'}"
        )

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        with self._lock:
            if self._entry_points_loaded:
                return
            assert self.entry_point_group is not None
            for point in entry_points(group=self.entry_point_group):
                self._references.setdefault(point.name, point.value)
            self._entry_points_loaded = True
