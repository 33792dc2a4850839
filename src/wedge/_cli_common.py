"""Argument helpers shared by the ``wedge`` subcommands (:mod:`wedge.cli` and the
subcommands that live beside their package, e.g. :mod:`wedge.average.cli`)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A command-line mistake (reported like any other bad input)."""


def _parse_set(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is read as a Python literal when it is one, else a string.

    The values are checked against the option's declared type by the API
    (:func:`wedge.methods.registry.build_options`), so ``positivity=maybe`` is refused there.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"{flag} expects KEY=VALUE (e.g. relaxation=0.5), got {item!r}.")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (existing files compared by inode, others by path)."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _refuse_overwrite(outputs: dict[str, str | None], inputs: dict[str, str | Path | None]) -> None:
    """Refuse, before any work, an output path that names one of the command's inputs."""
    for out_label, out in outputs.items():
        if out is None:
            continue
        for in_label, inp in inputs.items():
            if inp is not None and _same_file(Path(out), Path(inp)):
                raise UsageError(
                    f"the {out_label} {out} is the {in_label}; wedge never writes over its "
                    "inputs: choose another output path."
                )


def _stack_inputs(stack: str, angles: str | None) -> dict[str, str | Path | None]:
    """The files a stack read may use: the stack, the angle file, and those found beside."""
    from .io.angles import find_mdoc, find_sidecar_angles

    p = Path(stack)
    side = find_sidecar_angles(p) if p.exists() else None
    return {
        "input stack": stack,
        "angle file": angles,
        "angle file found beside the stack": None if side is None else side.path,
        "SerialEM .mdoc beside the stack": find_mdoc(p) if p.exists() else None,
    }
