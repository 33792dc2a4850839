"""Typed options: check a value against a dataclass field's annotation.

Used by the method registry (``--set KEY=VALUE`` and keyword options), the runner's options
and the projector options, so that ``positivity="maybe"`` or ``tol="abc"`` fail with one
sentence before any work instead of a raw Python message part-way.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

__all__ = ["option_fields", "coerce_field", "describe_options"]


def option_fields(cls: type) -> dict[str, tuple[Any, Any]]:
    """``{name: (type, default)}`` of a dataclass, with the annotations resolved."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        out[f.name] = (hints.get(f.name, Any), default)
    return out


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits ``tp`` (bool, int, float, str, Literal, Optional/Union, tuple);
    returns the value converted where the conversion is lossless (int → float)."""
    if tp is Any or tp is object:
        return True, value
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value in typing.get_args(tp), value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, conv = _matches(value, arg)
            if ok:
                return True, conv
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, value
        return True, float(value)
    if tp is str:
        return isinstance(value, str), value
    if origin is tuple or tp is tuple:
        return isinstance(value, tuple | list), tuple(value) if isinstance(value, list) else value
    return True, value  # arrays, paths and other objects are checked by the dataclass itself


def coerce_field(owner: str, name: str, tp: Any, value: Any) -> Any:
    """``value`` checked against the annotation ``tp`` of field ``name`` of ``owner``.

    Raises
    ------
    ValueError
        One sentence naming the option, the expected type and the value given.
    """
    ok, conv = _matches(value, tp)
    if not ok:
        raise ValueError(
            f"{owner} option {name} must be {_type_name(tp)}, got {value!r}"
            + (" (True or False)" if tp is bool else "")
            + "."
        )
    return conv


def describe_options(cls: type) -> list[str]:
    """One ``name: type = default`` line per field of an options dataclass."""
    lines = []
    for name, (tp, default) in option_fields(cls).items():
        shown = "None" if default is None else repr(default)
        lines.append(f"{name}: {_type_name(tp)} = {shown}")
    return lines
