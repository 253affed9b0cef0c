"""The shared base of latentbench's packages: the input error, registries and argument checks.

``models`` imports nothing else of latentbench, so ``metrics`` and ``benchmarks`` build on this
module (``reports`` imports no other package and keeps its own errors).

- :class:`InputError`: unusable input from a user; the CLI prints it on one line and exits 2.
- :class:`Registry`: a small dict filled by a decorator (the stylegan2-ada ``metric_main``
  pattern): code looks names up instead of branching on them, and an unknown name is an
  :class:`InputError` whose message lists what is allowed.
- :func:`check_int` and :func:`check_number`: the one way a count or a number is validated at
  a boundary, with a message that names the field and what is allowed.
"""

from __future__ import annotations

import difflib
import importlib
import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """Unusable input from a user (suite file, CLI argument, config): exit code 2, one line."""


def _bound(value: float) -> str:
    """A bound in a message: an integer exactly (``:g`` would print 2**63 − 1 as 9.22337e+18)."""
    return str(value) if isinstance(value, numbers.Integral) else f"{value:g}"


def _allowed(kind: str, minimum: float | None, maximum: float | None, above: bool) -> str:
    """What a check allows, in words: ``a positive integer``, ``a number > 0``, ..."""
    if minimum is not None and maximum is not None:
        return f"{kind} in {'(' if above else '['}{_bound(minimum)}, {_bound(maximum)}]"
    if minimum is not None:
        if kind == "an integer" and minimum == 1:
            return "a positive integer"
        return f"{kind} {'>' if above else '>='} {_bound(minimum)}"
    if maximum is not None:
        return f"{kind} <= {_bound(maximum)}"
    return "a finite number" if kind == "a number" else kind


def check_int(value: object, field: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (Python's or numpy's, never a bool) within
    ``[minimum, maximum]``.

    Args:
        value: what the user gave.
        field: its name in messages (``"eval.iwae_k"``, ``"k"``).
        minimum, maximum: inclusive bounds; ``None`` for none.

    Raises:
        InputError: ``"<field>: must be an integer >= 1, got 0"`` (a ``ValueError``).
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)):
        raise InputError(f"{field}: must be {_allowed('an integer', minimum, maximum, False)}, "
                         f"got {value!r}")
    return int(value)


def check_number(value: object, field: str, *, minimum: float | None = None,
                 maximum: float | None = None, above: bool = False) -> float:
    """``value`` as a ``float`` if it is a finite real number (never a bool) within the bounds.

    Args:
        value: what the user gave.
        field: its name in messages.
        minimum, maximum: bounds; ``None`` for none. ``maximum`` is inclusive.
        above: ``minimum`` is exclusive (``value > minimum``), as for a learning rate.

    Raises:
        InputError: ``"<field>: must be a number > 0, got nan"``. NaN and infinities are
            refused: TOML has both, and neither is a usable setting.
    """
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value)
          and (minimum is None or (value > minimum if above else value >= minimum))
          and (maximum is None or value <= maximum))
    if not ok:
        raise InputError(f"{field}: must be {_allowed('a number', minimum, maximum, above)}, "
                         f"got {value!r}")
    return float(value)  # type: ignore[arg-type]


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
