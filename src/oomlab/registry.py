"""Name -> class registries, so adding a strategy/backend/task/scorer is one file that registers itself."""

from __future__ import annotations

import collections.abc
import difflib
import functools
import importlib
import inspect
import math
import os
import pkgutil
import types
import typing
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from oomlab.errors import ConfigError, UnknownNameError

T = TypeVar("T")

_plugins_loaded = False


class Registry(Generic[T]):
    """A named collection of classes; `get` on an unknown name lists the valid ones."""

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package  # builtins live as modules of this package
        self._items: dict[str, T] = {}
        self._loaded = False

    def unregister(self, name: str) -> None:
        """Forget `name` (a test's own strategy, say, once the test is done)."""
        self._items.pop(name, None)

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return decorate

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{self.package}.{mod.name}")
        load_plugins()

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise UnknownNameError(self.kind, name, self.names())
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())


def load_plugins() -> None:
    """Import third-party modules declared under the `oomlab.plugins` entry-point group."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="oomlab.plugins"):
        ep.load()


# -- options: checked against the constructor, so a new class needs no schema of its own -------------------

def constructor_options(cls: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """A class's keyword options: {name: parameter}, their resolved type hints, whether it takes **kwargs."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin or C class: nothing to check against
        return {}, {}, True
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    extra = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    init = getattr(cls, "__init__", cls)
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an annotation that names something only a type checker imports: hint by hint
        hints = {}
        for n in named:
            try:
                hints[n] = typing.get_type_hints(_Annotated(init, n))[n]
            except Exception:
                pass
    return named, {n: h for n, h in hints.items() if n in named}, extra


class _Annotated:
    """One parameter's annotation on its own, so an unresolvable neighbour does not hide it."""

    def __init__(self, func: Any, name: str):
        self.__annotations__ = {name: getattr(func, "__annotations__", {}).get(name, Any)}
        self.__globals__ = getattr(func, "__globals__", {})
        self.__module__ = getattr(func, "__module__", None)


def check_options(kind: str, name: str, cls: Any, options: dict[str, Any], *, passthrough: str | None = None,
                  prefix: str = "") -> dict[str, Any]:
    """`options` checked against the keywords `cls` takes, with values coerced to their declared types.

    An unknown key is a ConfigError naming the valid ones and the nearest (`-T difficuly=3`: did you
    mean difficulty?); a value of the wrong type says what the option takes (`temperature=hot`: a
    number). A class taking **kwargs accepts any key starting with `passthrough` (a strategy's
    `scorer_*` settings), or, without one, any key at all. `prefix` is put before each key in messages.
    Returns the options with plain values coerced ('0.7' -> 0.7 for a float, 3 -> '3' for text).
    """
    named, hints, extra = constructor_options(cls)
    out = dict(options)
    for key, value in options.items():
        if key not in named:
            if extra and (passthrough is None or key.startswith(passthrough)):
                continue
            valid = sorted(named) + ([f"{passthrough}*"] if extra and passthrough else [])
            near = difflib.get_close_matches(key, list(named), n=1, cutoff=0.6)
            nearest = f" (did you mean '{prefix}{near[0]}'?)" if near else ""
            raise ConfigError(f"{kind} '{name}': unknown option '{prefix}{key}'{nearest}; valid options: "
                              f"{', '.join(prefix + v for v in valid) or '(none)'}")
        if key in hints:
            out[key] = coerce(hints[key], value, f"{kind} '{name}': option {prefix}{key}")
    return out


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    """A value a person typed (YAML, TOML, key=value): scalars, and lists and mappings of them."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


@functools.lru_cache(maxsize=512)
def _adapter(hint: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(hint, config=ConfigDict(coerce_numbers_to_str=True))


def _takes_bool(hint: Any) -> bool:
    if hint is bool or hint is Any or hint is object:
        return True
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and any(map(_takes_bool, typing.get_args(hint)))


def coerce(hint: Any, value: Any, what: str) -> Any:
    """`value` as type `hint` (pydantic, lax: '3' is a number, 3 is text; never a bool for a number,
    never NaN); a ConfigError starting with `what` when it is not one. Values that are not plain data
    (objects passed from Python) and hints pydantic cannot check are let through as they are."""
    if not _plain(value):
        return value
    try:
        adapter = _adapter(hint)
    except Exception:  # unhashable or unsupported hint (an arbitrary class): nothing to check against
        return value
    from pydantic import ValidationError

    if (isinstance(value, bool) and not _takes_bool(hint)) or (isinstance(value, float) and math.isnan(value)):
        raise ConfigError(f"{what} takes {describe(hint)}, got {show(value)}")  # lax mode would read true as 1
    try:
        result = adapter.validate_python(value)
    except ValidationError:
        raise ConfigError(f"{what} takes {describe(hint)}, got {show(value)}") from None
    # only a change of kind a person would expect is kept: '3' -> 3, 2.0 -> 2, 3 -> '3' (an int stays an int for a float)
    if isinstance(value, _PLAIN) and isinstance(result, _PLAIN) and type(result) is not type(value):
        if not (isinstance(value, int) and not isinstance(value, bool) and type(result) is float):
            return result
    return value


def describe(hint: Any) -> str:
    """What a type hint takes, in words: 'a number', 'a whole number or none', 'a list of numbers'."""
    if hint is Any:
        return "anything"
    if hint is type(None) or hint is None:
        return "none"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        return " or ".join(dict.fromkeys(parts)) + (" (or none)" if optional else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
    if hint in words:
        return words[hint]
    if origin is not None:
        args = typing.get_args(hint)
        if isinstance(origin, type) and issubclass(origin, dict) or origin is collections.abc.Mapping:
            return "a mapping (key: value)"
        if isinstance(origin, type) and issubclass(origin, (list, tuple, set, collections.abc.Sequence)):
            inner = f" of {_plural(describe(args[0]))}" if args and args[0] is not Any else ""
            return "a list" + inner
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return "a path"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    return {"a number": "numbers", "a whole number": "whole numbers", "text": "text",
            "true or false": "true/false values"}.get(words, words)


def show(value: Any) -> str:
    """A value as a person wrote it: true, 'abc', 1.5, [1, 'a']."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(show, value)) + "]"
    return repr(value)
