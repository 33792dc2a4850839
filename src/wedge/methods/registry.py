"""One registry of reconstruction methods, read by the API (:func:`wedge.reconstruct`) and the CLI.

Two kinds of method share the registry, the runner and the API.

``kind="linear"`` — a method on a linear projector with a tested adjoint::

    method(op, data, iterations, x0=None, callbacks=(), *, options, run) -> RunResult

``op`` is a :class:`~wedge.projectors.Projector`, ``data`` the (n, Y, X) tensor, ``options``
an instance of the method's options dataclass and ``run`` the shared
:class:`~wedge.runner.RunOptions`. Direct methods (``bp``, ``fbp``) ignore ``iterations``.

``kind="model"`` — a method with a nonlinear or learned forward model (multislice phase
retrieval, implicit neural representations, joint alignment)::

    method(problem, iterations, x0=None, callbacks=(), *, options, run) -> RunResult

``problem`` is a :class:`~wedge.problem.Problem`: the whole :class:`~wedge.TiltSeries`
(images of any rank, defocus, microscope), the volume shape, the device, the typed
projector options and the names of the acquisition parameters to refine. The method
returns a :class:`~wedge.runner.RunResult` whose ``parameters`` holds the refined
acquisition parameters (:class:`~wedge.parameters.AcquisitionParameters`), if any.
docs/nonlinear.md has the contract and a worked example.

Method option names never repeat a :func:`wedge.reconstruct` parameter or a
:class:`~wedge.runner.RunOptions` field (checked at registration), so every option can be
passed as a keyword (and as ``--set KEY=VALUE``) without ambiguity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from numbers import Integral
from typing import Any, Literal

from .._options import coerce_field, describe_options, option_fields

__all__ = [
    "MethodInfo",
    "METHODS",
    "register_method",
    "list_methods",
    "get_method",
    "build_options",
    "resolve_iterations",
    "coerce_field",
    "describe_options",
    "option_fields",
    "RESERVED_NAMES",
]

#: parameters of :func:`wedge.reconstruct` and fields of :class:`~wedge.runner.RunOptions`:
#: no method option may use one of these names.
RESERVED_NAMES = frozenset(
    {
        # wedge.reconstruct
        "series", "method", "thickness", "volume_shape", "iterations", "model", "device",
        "x0", "callbacks", "projector", "refine", "memory", "out",
        # wedge.runner.RunOptions
        "progress", "tol", "holdout", "patience", "checkpoint", "checkpoint_every",
        "reference", "reference_every", "seed", "identity",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, options type, one-line summary and cost model.

    ``work_volumes`` and ``work_images`` are the method's working memory in volume-sized
    and tilt-series-sized float32 arrays (the input images and the projector excluded);
    :func:`wedge.memory.estimate_memory` uses them to refuse a run that cannot fit.
    """

    name: str
    function: Callable[..., Any]
    options: type
    summary: str
    iterative: bool
    default_iterations: int = 1
    #: projector model the method uses unless the user picks one ("ray", "voxel", "fourier")
    default_model: str = "ray"
    kind: Literal["linear", "model"] = "linear"
    work_volumes: float = 2.0
    work_images: float = 1.0
    #: ``extra_bytes(volume_shape, options) -> int``: memory beyond the arrays above
    extra_bytes: Callable[[tuple[int, int, int], Any], int] | None = None


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
    kind: Literal["linear", "model"] = "linear",
    work_volumes: float = 2.0,
    work_images: float = 1.0,
    extra_bytes: Callable[[tuple[int, int, int], Any], int] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a method function under ``name``.

    Raises
    ------
    ValueError
        The name is taken, ``kind`` is unknown, or an option field uses a reserved name
        (a :func:`wedge.reconstruct` parameter or a runner option).
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in METHODS:
            raise ValueError(f"a method named {name!r} is already registered.")
        if not dataclasses.is_dataclass(options):
            raise TypeError(f"options of method {name!r} must be a dataclass type.")
        if kind not in ("linear", "model"):
            raise ValueError(f"kind must be 'linear' or 'model', got {kind!r}.")
        clash = sorted({f.name for f in dataclasses.fields(options)} & RESERVED_NAMES)
        if clash:
            raise ValueError(
                f"method {name!r} has option(s) {', '.join(clash)} that clash with "
                "wedge.reconstruct parameters or runner options; rename them."
            )
        METHODS[name] = MethodInfo(
            name,
            fn,
            options,
            summary,
            iterative,
            default_iterations,
            default_model,
            kind,
            work_volumes,
            work_images,
            extra_bytes,
        )
        return fn

    return deco


def list_methods() -> list[str]:
    """Names of the registered reconstruction methods, sorted (``wedge methods`` on the CLI)."""
    return sorted(METHODS)


def get_method(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of ``name``; a clear error listing the known names otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; known methods: {', '.join(list_methods())}."
        ) from None


def build_options(info: MethodInfo, given: dict[str, Any]) -> Any:
    """Instantiate ``info.options`` from keyword options, rejecting unknown names and values of
    the wrong type (so that ``positivity="maybe"`` fails before any work)."""
    fields = option_fields(info.options)
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ValueError(
            f"method {info.name!r} has no option {', '.join(map(repr, unknown))}; its options "
            f"are: {', '.join(sorted(fields)) or '(none)'}."
        )
    checked = {
        k: coerce_field(f"method {info.name!r}", k, fields[k][0], v) for k, v in given.items()
    }
    return info.options(**checked)


def resolve_iterations(info: MethodInfo, iterations: Any) -> int:
    """The iteration count of a run: the method's default when None; a positive integer
    for iterative methods (direct methods ignore it)."""
    if iterations is None:
        return info.default_iterations
    if info.iterative and (
        isinstance(iterations, bool) or not isinstance(iterations, Integral) or iterations < 1
    ):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}.")
    return iterations
