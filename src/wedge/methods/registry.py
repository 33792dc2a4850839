"""One registry of reconstruction methods, read by the API (:func:`wedge.reconstruct`) and the CLI.

A method is a function

    ``method(op, data, iterations, x0=None, callbacks=(), *, options, run) -> RunResult``

where ``op`` is a :class:`~wedge.projectors.Projector`, ``data`` the (n, Y, X) tensor,
``options`` an instance of the method's options dataclass and ``run`` the shared
:class:`~wedge.runner.RunOptions`. Direct methods (``bp``, ``fbp``) ignore ``iterations``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["MethodInfo", "METHODS", "register_method", "methods", "get_method"]


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, options type and one-line summary."""

    name: str
    function: Callable[..., Any]
    options: type
    summary: str
    iterative: bool
    default_iterations: int = 1
    #: projector model the method uses unless the user picks one ("ray", "voxel", "fourier")
    default_model: str = "ray"


#: name → :class:`MethodInfo`
METHODS: dict[str, MethodInfo] = {}


def register_method(
    name: str,
    options: type,
    summary: str,
    *,
    iterative: bool = True,
    default_iterations: int = 1,
    default_model: str = "ray",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a method function under ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is already registered.")
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"options of method {name!r} must be a dataclass type.")
        METHODS[name] = MethodInfo(
            name, fn, options, summary, iterative, default_iterations, default_model
        )
        return fn

    return deco


def methods() -> list[str]:
    """Names of the registered reconstruction methods, sorted."""
    return sorted(METHODS)


def get_method(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of ``name``; a clear error listing the known names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; known methods: {', '.join(methods())}."
        ) from None


def build_options(info: MethodInfo, given: dict[str, Any]) -> Any:
    """Instantiate ``info.options`` from keyword options, rejecting unknown names."""
    fields = {f.name for f in dataclasses.fields(info.options)}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise ValueError(
            f"method {info.name!r} has no option {', '.join(map(repr, unknown))}; its options "
            f"are: {', '.join(sorted(fields)) or '(none)'}."
        )
    return info.options(**given)
