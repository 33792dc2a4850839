"""Simulated tilt series: ideal projections of a known volume, with the errors of a real one.

:func:`simulate_tiltseries` projects a volume at the tilts of :func:`tilt_angles` and then
spoils the result the way an acquisition does: per-image shifts, an in-plane tilt-axis
rotation, errors in the recorded tilt angles and shot noise at a given dose. It returns the
series a user would see (recorded angles, no shifts, nominal tilt axis) together with the
truth, so alignment and reconstruction methods can be scored against it.

Conventions are wedge's (see :mod:`wedge.geometry`): angles in degrees, shifts (dx, dy) in
pixels with the measured image the ideal projection translated by (+dx, +dy), the in-plane
tilt-axis rotation as Euler φ (counter-clockwise from image Y), rotation centre at index
(N - 1)/2.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .tiltseries import TiltSeries

__all__ = [
    "SimulationOptions",
    "SimulationResult",
    "add_poisson_noise",
    "draw_acquisition",
    "save_simulation",
    "simulate_tiltseries",
    "tilt_angles",
]

_MODELS = ("ray", "voxel", "fourier")


def _known_models() -> tuple[str, ...]:
    """The projector models :func:`wedge.projectors.project` accepts."""
    try:
        from .projectors import PROJECTORS
    except ImportError:  # the projector package is optional until simulate_tiltseries runs
        return _MODELS
    return tuple(dict.fromkeys([*_MODELS, *sorted(PROJECTORS)]))


# ----------------------------------------------------------------------------- tilt angles
def _check_tilt_range(tilt_range: Any, step: Any) -> tuple[float, float, float]:
    try:
        lo, hi = (float(v) for v in tilt_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"tilt_range must be two numbers (first, last) in degrees, got {tilt_range!r}."
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tilt_range must be finite degrees, got {tilt_range!r}.")
    if hi < lo:
        raise ValueError(
            f"tilt_range {tilt_range!r} is reversed; give it as (lowest, highest), e.g. "
            f"({hi:g}, {lo:g})."
        )
    try:
        st = float(step)
    except (TypeError, ValueError):
        raise ValueError(f"step must be a positive number of degrees, got {step!r}.") from None
    if not (math.isfinite(st) and st > 0):
        raise ValueError(f"step must be a positive number of degrees, got {step!r}.")
    return lo, hi, st


def tilt_angles(tilt_range: tuple[float, float] = (-60.0, 60.0), step: float = 2.0) -> np.ndarray:
    """Evenly spaced tilt angles from ``tilt_range[0]`` in increments of ``step``, degrees.

    Parameters
    ----------
    tilt_range : (first, last), degrees
        Lowest and highest tilt, ``first <= last`` (e.g. (-60, 60), or (0, 180) for a
        full half-turn).
    step : float, degrees
        Increment, > 0.

    Returns
    -------
    ndarray, float64, (n,)
        ``first + k · step`` for k = 0, 1, ... up to ``last``; ``last`` itself is included
        when ``(last - first) / step`` is a whole number (to 1e-9 relative), otherwise the
        series stops at the last angle below it. ``first == last`` gives one angle.
    """
    lo, hi, st = _check_tilt_range(tilt_range, step)
    span = (hi - lo) / st
    n = math.floor(span + 1e-9 * max(1.0, span)) + 1
    angles = lo + st * np.arange(n, dtype=np.float64)
    if abs(angles[-1] - hi) <= 1e-9 * max(1.0, abs(hi)):
        angles[-1] = hi  # land exactly on the end despite rounding
    return angles


# ----------------------------------------------------------------------------- options
@dataclasses.dataclass(frozen=True)
class SimulationOptions:
    """How to acquire a simulated tilt series.

    Parameters
    ----------
    tilt_range : (first, last), degrees
        Tilt range (see :func:`tilt_angles`).
    step : float, degrees
        Tilt increment.
    dose : float or None
        Electrons per pixel per image; None gives noiseless images. See
        :func:`add_poisson_noise` for how image values turn into counts.
    shift_sigma : float, pixels
        Standard deviation of the random per-image shifts (dx, dy), drawn independently
        for each image and axis from N(0, shift_sigma²).
    tilt_axis_error : float, degrees
        In-plane rotation of the true tilt axis, counter-clockwise from image Y, applied to
        every simulated image as Euler φ; the recorded series claims 0.
    angle_sigma : float, degrees
        Standard deviation of the Gaussian errors of the recorded tilt angles:
        recorded = true + N(0, angle_sigma²), the true angles being the even grid.
    model : str
        Projector model for :func:`wedge.projectors.project`: "ray", "voxel", "fourier" or
        a registered projector name.
    seed : int or None
        Seeds every random draw; None draws fresh entropy. Angles, shifts and noise use
        independent streams spawned from it, so turning one error on or off does not change
        the others.
    """

    tilt_range: tuple[float, float] = (-60.0, 60.0)
    step: float = 2.0
    dose: float | None = None
    shift_sigma: float = 0.0
    tilt_axis_error: float = 0.0
    angle_sigma: float = 0.0
    model: str = "ray"
    seed: int | None = 0

    def __post_init__(self) -> None:
        lo, hi, _ = _check_tilt_range(self.tilt_range, self.step)
        object.__setattr__(self, "tilt_range", (lo, hi))
        object.__setattr__(self, "step", float(self.step))
        if self.dose is not None:
            if not (math.isfinite(self.dose) and self.dose > 0):
                raise ValueError(
                    f"dose must be a positive number of electrons per pixel per image, or None "
                    f"for noiseless images; got {self.dose!r}."
                )
            object.__setattr__(self, "dose", float(self.dose))
        for name in ("shift_sigma", "angle_sigma"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a non-negative standard deviation, got {v!r}.")
            object.__setattr__(self, name, float(v))
        if not math.isfinite(self.tilt_axis_error):
            raise ValueError(
                f"tilt_axis_error must be finite degrees, got {self.tilt_axis_error!r}."
            )
        object.__setattr__(self, "tilt_axis_error", float(self.tilt_axis_error))
        known = _known_models()
        if self.model not in known:
            raise ValueError(
                f"unknown projector model {self.model!r}; choose one of: {', '.join(known)}."
            )
        if self.seed is not None and (int(self.seed) != self.seed or int(self.seed) < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {self.seed!r}.")


@dataclasses.dataclass(frozen=True, eq=False)
class SimulationResult:
    """A simulated tilt series and the truth behind it.

    Attributes
    ----------
    series : TiltSeries
        What a user would see: the images with the *recorded* angles, no shifts and a tilt
        axis angle of 0.
    true_angles : ndarray (n,), degrees
        The tilt angles the images were really taken at.
    true_shifts : ndarray (n, 2), pixels
        The (dx, dy) by which each image is translated against its ideal projection.
    true_tilt_axis_angle : float, degrees
        The real in-plane tilt-axis angle (Euler φ of every image).
    volume : ndarray (Z, Y, X), float32
        The volume that was projected.
    options : SimulationOptions
        The options used.
    """

    series: TiltSeries
    true_angles: np.ndarray
    true_shifts: np.ndarray
    true_tilt_axis_angle: float
    volume: np.ndarray
    options: SimulationOptions

    @property
    def true_euler(self) -> np.ndarray:
        """True (φ, θ, ψ) per image, degrees, shape (n, 3)."""
        e = np.zeros((self.true_angles.size, 3))
        e[:, 0] = self.true_tilt_axis_angle
        e[:, 1] = self.true_angles
        return e


# ----------------------------------------------------------------------------- random parts
def _streams(seed: int | None) -> tuple[np.random.Generator, ...]:
    """Independent generators for (angles, shifts, noise)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def draw_acquisition(options: SimulationOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random acquisition errors of a simulation, without projecting anything.

    Parameters
    ----------
    options : SimulationOptions

    Returns
    -------
    true_angles : ndarray (n,), degrees
        The even grid :func:`tilt_angles` (``options.tilt_range``, ``options.step``).
    recorded_angles : ndarray (n,), degrees
        ``true_angles + N(0, angle_sigma²)``, independently per image.
    true_shifts : ndarray (n, 2), pixels
        (dx, dy) drawn independently from N(0, shift_sigma²).

    Draws are the same as :func:`simulate_tiltseries` makes for the same options.
    """
    rng_angles, rng_shifts, _ = _streams(options.seed)
    return _draw(options, rng_angles, rng_shifts)


def _draw(
    options: SimulationOptions, rng_angles: np.random.Generator, rng_shifts: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true = tilt_angles(options.tilt_range, options.step)
    recorded = true + rng_angles.normal(0.0, 1.0, size=true.shape) * options.angle_sigma
    shifts = rng_shifts.normal(0.0, 1.0, size=(true.size, 2)) * options.shift_sigma
    return true, recorded, shifts


def add_poisson_noise(
    images: np.ndarray, dose: float, *, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Shot noise at ``dose``: ``Poisson(clip(images, 0) · dose) / dose``.

    Image values are taken as expected counts per unit dose: a pixel of value v receives on
    average ``v · dose`` electrons (``dose`` electrons per pixel per image for v = 1), and
    the count is divided by ``dose`` again so the noisy image keeps the clean one's scale.
    Hence mean = v and variance = v / dose: the relative noise falls as 1/sqrt(v · dose).
    Negative values (projector ringing) count as 0.

    Parameters
    ----------
    images : ndarray
        Clean images (any shape), in projection units.
    dose : float
        Electrons per pixel per image, > 0.
    rng : Generator, int or None
        Random generator or seed.

    Returns
    -------
    ndarray, float32, same shape as ``images``
    """
    if not (np.isfinite(dose) and dose > 0):
        raise ValueError(f"dose must be a positive number of electrons per pixel, got {dose!r}.")
    img = np.asarray(images, dtype=np.float64)
    if not np.all(np.isfinite(img)):
        raise ValueError("images contain NaN or Inf; shot noise needs finite expected counts.")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    counts = gen.poisson(np.clip(img, 0.0, None) * dose)
    return (counts / dose).astype(np.float32)


# ----------------------------------------------------------------------------- simulation
def _check_volume(volume: Any) -> np.ndarray:
    if hasattr(volume, "detach"):  # a torch tensor
        volume = volume.detach().cpu().numpy()
    vol = np.asarray(volume)
    if vol.ndim != 3 or min(vol.shape) < 1:
        raise ValueError(
            f"volume must be a 3D (Z, Y, X) array, got shape {vol.shape}; build one with "
            "wedge.phantoms.make_phantom."
        )
    if not np.issubdtype(vol.dtype, np.number) or np.iscomplexobj(vol):
        raise ValueError(f"volume must hold real numbers, got dtype {vol.dtype}.")
    vol = np.ascontiguousarray(vol, dtype=np.float32)
    if not np.all(np.isfinite(vol)):
        raise ValueError("volume contains NaN or Inf; replace them before simulating.")
    return vol


def simulate_tiltseries(
    volume: Any, options: SimulationOptions | None = None, *, pixel_size: float = 1.0
) -> SimulationResult:
    """Simulate a single-axis tilt series of ``volume`` with acquisition errors.

    Steps: (1) the true tilt angles are the grid :func:`tilt_angles`; recorded angles and
    per-image shifts are drawn by :func:`draw_acquisition`. (2) Clean images are the line
    integrals ``wedge.projectors.project(volume, true_angles, shifts=true_shifts,
    euler=(tilt_axis_error, θ, 0), model=options.model)`` on a detector of the volume's
    (Y, X) size, so image i is the ideal projection at orientation
    ``R = Z(φ) Y(θ_i)`` translated by (+dx_i, +dy_i). (3) With a dose, shot noise by
    :func:`add_poisson_noise`.

    Parameters
    ----------
    volume : array (Z, Y, X)
        The object, in density per voxel (NumPy or torch; copied to float32 NumPy).
    options : SimulationOptions, optional
        Defaults to ``SimulationOptions()`` (±60° every 2°, noiseless, no errors).
    pixel_size : float, Å
        Voxel and pixel size recorded in the series.

    Returns
    -------
    SimulationResult
        ``series`` carries the recorded angles only (no shifts, tilt axis angle 0), as read
        from a microscope; the truth sits beside it.
    """
    opts = SimulationOptions() if options is None else options
    if not isinstance(opts, SimulationOptions):
        raise ValueError("options must be a wedge.simulate.SimulationOptions instance.")
    vol = _check_volume(volume)
    if not (np.isfinite(pixel_size) and pixel_size > 0):
        raise ValueError(f"pixel_size must be a positive number of Å, got {pixel_size!r}.")

    from .projectors import project  # the geometry core; imported late (heavy, optional here)

    rng_angles, rng_shifts, rng_noise = _streams(opts.seed)
    true_angles, recorded, shifts = _draw(opts, rng_angles, rng_shifts)
    euler = None
    if opts.tilt_axis_error != 0.0:
        euler = np.zeros((true_angles.size, 3))
        euler[:, 0] = opts.tilt_axis_error
        euler[:, 1] = true_angles
    has_shifts = bool(np.any(shifts))
    clean = project(
        vol,
        true_angles,
        shifts=shifts if has_shifts else None,
        euler=euler,
        detector_shape=vol.shape[1:],
        model=opts.model,
    )
    images = np.asarray(clean, dtype=np.float32)
    if opts.dose is not None:
        images = add_poisson_noise(images, opts.dose, rng=rng_noise)
    series = TiltSeries(
        images,
        recorded,
        pixel_size=pixel_size,
        source=f"wedge.simulate (model={opts.model}, seed={opts.seed})",
    )
    return SimulationResult(
        series=series,
        true_angles=true_angles,
        true_shifts=shifts,
        true_tilt_axis_angle=opts.tilt_axis_error,
        volume=vol,
        options=opts,
    )


# ----------------------------------------------------------------------------- saving
def save_simulation(
    result: SimulationResult, out_dir: str | Path, stem: str = "sim"
) -> dict[str, Path]:
    """Write a simulation to ``out_dir``: the series, its angles and the truth.

    Files: ``<stem>.mrc`` (the image stack) and ``<stem>.tlt`` (recorded angles, one per
    line, written beside the stack by :func:`wedge.io.write_tiltseries`),
    ``<stem>_truth.mrc`` (the volume, :func:`wedge.io.write_volume`) and
    ``<stem>_truth.json`` (true angles, shifts and tilt-axis angle, the recorded angles and
    the options). Every file is written atomically.

    Returns
    -------
    dict
        ``{"tiltseries", "tlt", "volume", "truth"}`` → the paths written.
    """
    from .io import atomic_output, write_tiltseries, write_volume

    if not isinstance(result, SimulationResult):
        raise ValueError("result must be a SimulationResult from simulate_tiltseries.")
    if not stem or Path(stem).name != stem:
        raise ValueError(f"stem must be a plain file-name stem without folders, got {stem!r}.")
    out = Path(out_dir)
    if not out.is_dir():
        raise ValueError(f"out_dir {out} is not an existing directory; create it first.")
    paths = {
        "tiltseries": out / f"{stem}.mrc",
        "tlt": out / f"{stem}.tlt",
        "volume": out / f"{stem}_truth.mrc",
        "truth": out / f"{stem}_truth.json",
    }
    write_tiltseries(paths["tiltseries"], result.series)
    write_volume(paths["volume"], result.volume, voxel_size=result.series.pixel_size)
    meta = {
        "true_angles_deg": result.true_angles.tolist(),
        "recorded_angles_deg": result.series.angles.tolist(),
        "true_shifts_px": result.true_shifts.tolist(),
        "true_tilt_axis_angle_deg": result.true_tilt_axis_angle,
        "pixel_size_A": result.series.pixel_size,
        "conventions": "shifts (dx, dy): measured image = ideal projection translated by "
        "(+dx, +dy); tilt axis angle CCW from image Y (Euler phi); rotation centre (N-1)/2",
        "options": dataclasses.asdict(result.options),
    }
    with atomic_output(paths["truth"]) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return paths


# HRTEM tilt + focal series (multislice) live in wedge.hrtem; re-exported here so that
# every simulator is reachable as wedge.simulate.*
from .hrtem import hrtem_tilt_series, write_hrtem_series  # noqa: E402

__all__ += ["hrtem_tilt_series", "write_hrtem_series"]
