"""Name → object registries shared by every part of latentbench.

A registry is a small dict filled by a decorator (the stylegan2-ada ``metric_main`` pattern): code
looks names up instead of branching on them, and an unknown name is an :class:`InputError` whose
message lists what is allowed, so the CLI can print it on one line and exit 2.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """Unusable input from a user (suite file, CLI argument, config): exit code 2, one line."""


class Registry(Generic[T]):
    """A named dict of ``T`` with a registering decorator and a helpful lookup.

    Args:
        kind: what the entries are (``"model"``, ``"decoder"``, ...); used in error messages.
        field: the config field users set to pick an entry (``"model.name"``); used in errors.
    """

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind
        self.field = field
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: store the decorated object under ``name`` and return it unchanged."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Return the entry called ``name``.

        Raises:
            InputError: ``name`` is not registered; the message names the field, the closest
                names (a typo is the usual cause) and the choices.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a hand-built config
            choices = ", ".join(sorted(self._entries))
            raise InputError(
                f"{self.field}: unknown {self.kind} {name!r}{self.did_you_mean(name)}; "
                f"choose one of: {choices}"
            ) from None

    def did_you_mean(self, name: object) -> str:
        """`` (did you mean 'x'?)`` for the registered names closest to ``name``, else ``""``."""
        return did_you_mean(name, self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` naming the ``choices`` closest to ``name`` (a typo is the usual
    cause of an unknown name), or ``""`` when none is close."""
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(dict.fromkeys(choices)), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def import_attribute(name: str, field: str) -> Any:
    """The object a plug-in name ``"package.module:Attr"`` points at.

    Shared by every registry that accepts plug-ins (models, feature extractors), so that they all
    fail the same way.

    Args:
        name: ``"package.module:Attr"``; the module must be importable (installed or on
            ``PYTHONPATH``).
        field: the config field the name came from, for the error message.

    Raises:
        InputError: no ``:``, an unimportable module, or a module without ``Attr``.
    """
    module_name, colon, attribute = name.partition(":")
    if not colon or not module_name or not attribute:
        raise InputError(f"{field}: {name!r} is not of the form 'package.module:Attr'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InputError(f"{field}: cannot import {module_name!r} ({err}); is it on "
                         f"PYTHONPATH or installed?") from None
    if not hasattr(module, attribute):
        raise InputError(f"{field}: module {module_name!r} has no {attribute!r}")
    return getattr(module, attribute)
