"""Helpers shared by the preprocessing steps: input checks, image views, provenance text."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..tiltseries import TiltSeries


def check_series(series: Any, step: str) -> TiltSeries:
    """Refuse anything but a :class:`~wedge.TiltSeries` (steps map series to series)."""
    if not isinstance(series, TiltSeries):
        raise TypeError(
            f"{step} takes a wedge.TiltSeries, got {type(series).__name__}; wrap arrays with "
            "wedge.TiltSeries(images, angles, pixel_size=...) or read one with "
            "wedge.read_tiltseries."
        )
    return series


def flat_images(series: TiltSeries) -> np.ndarray:
    """The images as float64 (m, Y, X): (n, Y, X), or (n·k, Y, X) for a focal series.

    Always a new array, so a step may work on it in place without touching the series.
    """
    ny, nx = series.image_shape
    return series.images.reshape(-1, ny, nx).astype(np.float64)


def as_series_images(series: TiltSeries, flat: np.ndarray) -> np.ndarray:
    """(m, Y', X') back to the series' leading axes, as float32."""
    lead = series.images.shape[:-2]
    return np.ascontiguousarray(flat.reshape(*lead, *flat.shape[-2:]), dtype=np.float32)


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``; booleans and fractional numbers are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or int(value) != value
        or value < minimum
    ):
        raise ValueError(f"{name} must be a whole number ≥ {minimum}, got {value!r}.")
    return int(value)


def positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (≥ 0 with ``allow_zero``)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and np.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


def shape_pair(name: str, value: Any) -> tuple[int, int]:
    """An int or a (Y, X) pair of ints ≥ 1 as a (Y, X) tuple."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        v = positive_int(name, value)
        return v, v
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a (Y, X) pair of ints, got {value!r}.")
    return positive_int(f"{name}[0]", items[0]), positive_int(f"{name}[1]", items[1])


def shifts_or_zeros(series: TiltSeries) -> np.ndarray:
    """The series' (n, 2) (dx, dy) shifts in pixels, zeros where none were set (a copy)."""
    if series.shifts is None:
        return np.zeros((series.n_tilts, 2))
    return series.shifts.copy()


def describe(step: str, **params: Any) -> str:
    """One provenance line: ``step(name=value, ...)`` with floats in short form."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.6g}"
        if isinstance(v, tuple):
            return "(" + ", ".join(fmt(x) for x in v) + ")"
        return str(v)

    return f"{step}(" + ", ".join(f"{k}={fmt(v)}" for k, v in params.items()) + ")"
