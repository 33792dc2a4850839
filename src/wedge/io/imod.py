"""IMOD alignment files: linear transforms (``.xf``), applying them as ``newstack -xform``
does, aligned stacks (``.ali``), and their conversion to wedge's shifts and tilt-axis angle.

An ``.xf`` file holds one line per view, ``A11 A12 A21 A22 DX DY``, the transform

    X' = A11·X + A12·Y + DX,    Y' = A21·X + A22·Y + DY

from a position (X, Y) in the raw image to (X', Y') in the transformed (aligned) image,
both relative to their image centres. The centre, established from IMOD's documentation:

* ``xf2rotmagstr(1)`` (https://bio3d.colorado.edu/imod/betaDoc/man/xf2rotmagstr.html)
  writes the transform as ``x' = a11 (x − xci) + a12 (y − yci) + dx + xco`` with ``xci``,
  ``yci`` the centre of the input image and ``xco``, ``yco`` that of the output image;
* ``newstack`` transforms each section with IMOD's ``cubinterp`` (libcfshr), passing the
  input centre ``xci = nx/2, yci = ny/2`` and the section mean as fill value; that
  routine's documentation (revised 2007-10-12 "to rotate around center of image when input
  center is specified as nx/2") measures positions "from 0 at the left edge of the first
  pixel to nx at the right edge of the last pixel". The centre of 0-based pixel ``i`` is
  then at ``i + 0.5``, so ``nx/2`` is pixel index ``(nx − 1)/2``: wedge's centre, for even
  and odd sizes alike.

IMOD's X is the array column and Y the array row (``mrcfile``'s ``data[z, y, x]``), as in
wedge. Transforms that align a tilt series (``tiltxcorr``/``xftoxg`` and ``tiltalign``
products, combined by ``xfproduct``) map the raw image to one whose tilt axis is vertical.
Details and the tests that pin each rule: ``docs/alignment-files.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..tiltseries import TiltSeries
from .atomic import atomic_output
from .mrc import MRC_SUFFIXES, write_mrc

__all__ = [
    "read_xf",
    "write_xf",
    "invert_xf",
    "compose_xf",
    "apply_xf",
    "write_ali",
    "xf_from_alignment",
    "alignment_from_xf",
    "read_imod_alignment",
]

#: |det A| below this is a singular (non-invertible) matrix; the file stores A to 1e-7.
_MIN_DET = 1e-6
#: IMOD's field widths (``4f12.7, 2f12.3``) hold |A| < 1000 and |D| < 1e7 with a blank between.
_MAX_A, _MAX_D = 1000.0, 1e7


def _as_xf(xf: Any, what: str = "xf") -> np.ndarray:
    """``xf`` as float64 (n, 2, 3) ``[[A11, A12, DX], [A21, A22, DY]]``; refuses bad input."""
    arr = np.asarray(xf, dtype=np.float64)
    if arr.shape in ((6,), (2, 3)):
        arr = arr[None]
    if arr.ndim == 2 and arr.shape[1] == 6:  # rows as in the file
        a = arr
        arr = np.stack([a[:, [0, 1, 4]], a[:, [2, 3, 5]]], axis=1)
    if arr.ndim != 3 or arr.shape[1:] != (2, 3) or arr.shape[0] == 0:
        raise ValueError(
            f"{what} has shape {np.shape(xf)}; give transforms as (n, 2, 3) "
            "[[A11, A12, DX], [A21, A22, DY]] or (n, 6) rows A11 A12 A21 A22 DX DY."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or Inf; every transform must be finite.")
    det = np.linalg.det(arr[:, :, :2])
    bad = np.flatnonzero(np.abs(det) < _MIN_DET)
    if bad.size:
        raise ValueError(
            f"{what}: the matrix of view {bad[0]} is not invertible (determinant "
            f"{det[bad[0]]:.3g}); a transform must map the image onto an image, fix that line."
        )
    return arr


def read_xf(path: str | os.PathLike[str], n_views: int | None = None) -> np.ndarray:
    """Read an IMOD linear-transform file (``.xf``, ``.prexg``, ``.tltxf``, ...).

    Parameters
    ----------
    path : str or path-like
        One line per view: ``A11 A12 A21 A22 DX DY`` (blank lines are skipped).
    n_views : int, optional
        The number of views the file must describe (the stack's image count).

    Returns
    -------
    ndarray (n, 2, 3), float64
        ``[[A11, A12, DX], [A21, A22, DY]]`` per view; DX, DY in pixels. The transform maps
        a raw-image position (X, Y) relative to the centre, pixel index (N − 1)/2, to
        ``(A11 X + A12 Y + DX, A21 X + A22 Y + DY)`` in the transformed image.

    Raises
    ------
    ValueError
        A line without exactly six numbers (e.g. a warping transform file), non-finite
        values, a singular matrix, or a view count that differs from ``n_views``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"transform file {p} does not exist.")
    rows = []
    for i, raw in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise ValueError(
                f"{p}, line {i}: expected 6 numbers (A11 A12 A21 A22 DX DY), found "
                f"{len(parts)}; wedge reads linear .xf files only, not warping files."
            )
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise ValueError(f"{p}, line {i}: {raw.strip()!r} is not six numbers.") from None
    if not rows:
        raise ValueError(f"{p} holds no transforms; it should have one line per view.")
    if n_views is not None and len(rows) != n_views:
        raise ValueError(
            f"{p} has {len(rows)} transforms but the stack has {n_views} views; give the "
            ".xf file made for this stack (one line per view)."
        )
    return _as_xf(np.array(rows), what=str(p))


def write_xf(path: str | os.PathLike[str], xf: Any) -> Path:
    """Write transforms as an IMOD ``.xf`` file, atomically, in IMOD's own layout.

    Each line is ``A11 A12 A21 A22 DX DY`` with the matrix to 7 decimals and the shifts to
    3 decimals in 12-character fields (IMOD's ``4f12.7, 2f12.3``), so a file written here
    reads back to within 5e-8 (matrix) and 5e-4 pixel (shifts).

    Parameters
    ----------
    path : str or path-like
    xf : array (n, 2, 3) or (n, 6)
        As returned by :func:`read_xf`.

    Raises
    ------
    ValueError
        Malformed, non-finite or singular transforms, or values too large for IMOD's
        fields (|A| ≥ 1000 or |D| ≥ 1e7).
    """
    t = _as_xf(xf)
    if np.abs(t[:, :, :2]).max() >= _MAX_A or np.abs(t[:, :, 2]).max() >= _MAX_D:
        raise ValueError(
            "a transform has |A| ≥ 1000 or a shift ≥ 1e7 pixels, too large for IMOD's .xf "
            "fields; check the transforms (an alignment matrix is close to a rotation)."
        )
    lines = [
        "".join(f"{v:12.7f}" for v in (a[0, 0], a[0, 1], a[1, 0], a[1, 1]))
        + "".join(f"{v:12.3f}" for v in (a[0, 2], a[1, 2]))
        for a in t
    ]
    final = Path(path)
    with atomic_output(final) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return final


def invert_xf(xf: Any) -> np.ndarray:
    """The inverse transforms: ``A⁻¹`` and ``−A⁻¹ D`` per view (IMOD's ``xfinverse``).

    Returns
    -------
    ndarray (n, 2, 3), float64
    """
    t = _as_xf(xf)
    inv = np.linalg.inv(t[:, :, :2])
    return np.concatenate([inv, -(inv @ t[:, :, 2:])], axis=2)


def compose_xf(first: Any, second: Any) -> np.ndarray:
    """Apply ``first`` then ``second``, as ``xfproduct first second`` does.

    A single transform in either argument is used for every view of the other.

    Returns
    -------
    ndarray (n, 2, 3), float64
        ``A = A2 A1`` and ``D = A2 D1 + D2`` per view.
    """
    t1, t2 = _as_xf(first, "first"), _as_xf(second, "second")
    if t1.shape[0] != t2.shape[0] and 1 not in (t1.shape[0], t2.shape[0]):
        raise ValueError(
            f"first has {t1.shape[0]} transforms and second {t2.shape[0]}; give the same "
            "number, or a single transform for all views."
        )
    a = t2[:, :, :2] @ t1[:, :, :2]
    d = t2[:, :, :2] @ t1[:, :, 2:] + t2[:, :, 2:]
    return np.concatenate([a, d], axis=2)


def _as_images(images: Any) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.size == 0:
        raise ValueError(
            f"images must be a stack (n, Y, X) or one image (Y, X), got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"images must be real numbers, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("the images contain NaN or Inf; replace them before transforming.")
    return arr


def apply_xf(images: Any, xf: Any, *, order: int = 1, fill: float | None = None) -> np.ndarray:
    """Transform each image by its ``.xf`` line, as ``newstack -xform`` does.

    Output pixel ``p'`` (x, y relative to the centre, index (N − 1)/2) takes the input
    interpolated at ``A⁻¹ (p' − D)``; the output has the input's size (newstack's default).

    Parameters
    ----------
    images : array (n, Y, X) or (Y, X)
        Any real dtype; not modified.
    xf : array (n, 2, 3) or (n, 6), or a single transform for all images
    order : {0, 1, 3}
        Interpolation: nearest, bilinear (as ``newstack -linear``) or cubic B-spline.
        newstack's default is cubic convolution, a different kernel from ``order=3``.
    fill : float, optional
        Value for output pixels that map outside the input; default each image's mean, as
        newstack fills them (it passes the section mean to ``cubinterp``).

    Returns
    -------
    ndarray (n, Y, X), float32

    Raises
    ------
    ValueError
        Malformed transforms, a count of transforms that is neither 1 nor n, an order
        other than 0, 1 or 3, or non-finite images.
    """
    imgs = _as_images(images)
    t = _as_xf(xf)
    n, ny, nx = imgs.shape
    if t.shape[0] not in (1, n):
        raise ValueError(
            f"{t.shape[0]} transforms were given for {n} images; give one transform per "
            "image (or one for all)."
        )
    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0, 1 or 3 (interpolation degree), got {order!r}.")
    t = np.broadcast_to(t, (n, 2, 3))
    inv = np.linalg.inv(t[:, :, :2])  # (n, 2, 2)
    y = np.arange(ny) - (ny - 1) / 2
    x = np.arange(nx) - (nx - 1) / 2
    out = np.empty((n, ny, nx), dtype=np.float32)
    for i in range(n):
        px = x[None, :] - t[i, 0, 2]
        py = y[:, None] - t[i, 1, 2]
        qx = inv[i, 0, 0] * px + inv[i, 0, 1] * py + (nx - 1) / 2
        qy = inv[i, 1, 0] * px + inv[i, 1, 1] * py + (ny - 1) / 2
        img = imgs[i].astype(np.float64)
        cval = float(img.mean()) if fill is None else float(fill)
        out[i] = ndimage.map_coordinates(img, [qy, qx], order=order, mode="constant", cval=cval)
    return out


def write_ali(
    path: str | os.PathLike[str],
    images: Any,
    xf: Any,
    *,
    pixel_size: float | None = None,
    order: int = 1,
    fill: float | None = None,
) -> Path:
    """Write the aligned stack (IMOD's ``.ali``) as ``newstack -xform`` makes it, atomically.

    Parameters
    ----------
    path : str or path-like
        An MRC name (``.ali``, ``.mrc``, ``.st``, ...).
    images : TiltSeries or array (n, Y, X)
        A series gives its images and pixel size.
    xf : array (n, 2, 3) or (n, 6)
        One transform per image (see :func:`apply_xf`).
    pixel_size : float, Å, optional
        Required for an array; overrides a series' pixel size.
    order, fill
        As :func:`apply_xf`.

    Returns
    -------
    pathlib.Path
        The file written: float32 MRC image stack with the pixel size as voxel size.
    """
    p = Path(path)
    if p.suffix.lower() not in MRC_SUFFIXES:
        raise ValueError(
            f"{p.name}: an aligned stack is written as MRC; use one of "
            f"{', '.join(MRC_SUFFIXES)} (IMOD names it .ali)."
        )
    if isinstance(images, TiltSeries):
        if images.is_focal_series:
            raise ValueError("a focal series (4D images) has no IMOD aligned-stack form.")
        data = images.images
        px = images.pixel_size if pixel_size is None else pixel_size
    else:
        data = images
        if pixel_size is None:
            raise ValueError("give pixel_size= (Å) when writing an array as an aligned stack.")
        px = pixel_size
    if not (np.isfinite(px) and px > 0):
        raise ValueError(f"pixel_size must be a positive number of Å, got {px}.")
    aligned = apply_xf(data, xf, order=order, fill=fill)
    return write_mrc(p, aligned, float(px), image_stack=True)


def _rotation(angle_deg: np.ndarray) -> np.ndarray:
    """Counter-clockwise rotation matrices (..., 2, 2) acting on (x, y) columns."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _check_shape(image_shape: Any) -> tuple[int, int]:
    try:
        ny, nx = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (Y, X) pixels, got {image_shape!r}.") from None
    if ny < 1 or nx < 1 or (ny, nx) != tuple(image_shape):
        raise ValueError(f"image_shape must be two positive whole numbers, got {image_shape!r}.")
    return ny, nx


def xf_from_alignment(shifts: Any, tilt_axis_angle: Any, image_shape: Any = None) -> np.ndarray:
    """The IMOD ``.xf`` transforms that align raw images with wedge's shifts and axis angle.

    wedge's model of a raw image (docs/conventions.md): an ideal single-axis projection,
    rotated by ``Z(α)`` (counter-clockwise, α = ``tilt_axis_angle``) and translated by
    ``s = (dx, dy)``; so a raw position is ``X = Z(α) X' + s`` for the aligned position
    ``X'``. The aligning transform is therefore ``A = Z(−α)``, ``D = −Z(−α) s``: applied
    by :func:`apply_xf` (or ``newstack -xform``) it gives images whose tilt axis is along
    Y and which wedge reconstructs with ``tilt_axis_angle = 0`` and no shifts.

    Parameters
    ----------
    shifts : array (n, 2), pixels
        (dx, dy) per image, as ``TiltSeries.shifts``.
    tilt_axis_angle : float or array (n,), degrees
        Counter-clockwise from image Y (IMOD's rotation angle); one per view for a series
        whose acquisition subsets have their own axes.
    image_shape : (Y, X), optional
        When given, shifts as large as the image are refused (they are not pixels).

    Returns
    -------
    ndarray (n, 2, 3), float64
    """
    s = np.asarray(shifts, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape[0] == 0:
        raise ValueError(f"shifts must have shape (n, 2) as (dx, dy) pixels, got {s.shape}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("the shifts contain NaN or Inf.")
    alpha = np.asarray(tilt_axis_angle, dtype=np.float64)
    if alpha.shape not in ((), (s.shape[0],)) or not np.all(np.isfinite(alpha)):
        raise ValueError(
            "tilt_axis_angle must be a finite number of degrees, or one per view "
            f"({s.shape[0]}); got shape {alpha.shape}."
        )
    if image_shape is not None:
        ny, nx = _check_shape(image_shape)
        if np.any(np.abs(s[:, 0]) >= nx) or np.any(np.abs(s[:, 1]) >= ny):
            raise ValueError(
                f"a shift of {np.abs(s).max():g} reaches beyond the {ny}×{nx} image; shifts "
                "must be in pixels of this image (not Å, not another binning)."
            )
    a = np.broadcast_to(_rotation(-alpha), (s.shape[0], 2, 2))
    d = -np.einsum("nij,nj->ni", a, s)
    return np.concatenate([a, d[:, :, None]], axis=2)


def alignment_from_xf(
    xf: Any, image_shape: Any, *, max_error: float = 0.5
) -> tuple[np.ndarray, float]:
    """wedge's shifts and tilt-axis angle from aligning ``.xf`` transforms.

    The inverse of :func:`xf_from_alignment`. Each matrix must be a rotation by one common
    angle −α: the best-fitting α is the circular mean of the per-view angles
    ``atan2(A12 − A21, A11 + A22)``, and the shift of view i is ``s = −A⁻¹ D`` (where the
    aligned image's centre lies in the raw image). What that cannot represent (per-view
    rotations, magnification, stretch, a mirror) moves some image corner by
    ``|(A⁻¹ − Z(α)) c|``; more than ``max_error`` pixels is refused.

    Parameters
    ----------
    xf : array (n, 2, 3) or (n, 6)
    image_shape : (Y, X)
        Size of the raw images (the corners where the error is measured).
    max_error : float, pixels
        Largest displacement, at any image corner, allowed between the transform and the
        (shift, common rotation) that replaces it. The default, half a pixel, is below the
        image's own sampling.

    Returns
    -------
    shifts : ndarray (n, 2), pixels
    tilt_axis_angle : float, degrees
        In (−180, 180], counter-clockwise from image Y.

    Raises
    ------
    ValueError
        A mirror (negative determinant), or a transform that differs from a rotation by
        the common angle by more than ``max_error`` pixels at an image corner.
    """
    t = _as_xf(xf)
    ny, nx = _check_shape(image_shape)
    if not (np.isfinite(max_error) and max_error > 0):
        raise ValueError(f"max_error must be a positive number of pixels, got {max_error}.")
    a, d = t[:, :, :2], t[:, :, 2]
    det = np.linalg.det(a)
    if np.any(det < 0):
        k = int(np.flatnonzero(det < 0)[0])
        raise ValueError(
            f"the transform of view {k} mirrors the image (negative determinant); a tilt-axis "
            "rotation cannot represent it: flip the stack first or apply the .xf with apply_xf."
        )
    per_view = np.arctan2(a[:, 0, 1] - a[:, 1, 0], a[:, 0, 0] + a[:, 1, 1])
    alpha = float(np.degrees(np.arctan2(np.sin(per_view).sum(), np.cos(per_view).sum())))
    inv = np.linalg.inv(a)
    shifts = -np.einsum("nij,nj->ni", inv, d)
    hx, hy = (nx - 1) / 2, (ny - 1) / 2
    corners = np.array([[hx, hy], [hx, -hy], [-hx, hy], [-hx, -hy]])  # (4, 2) as (x, y)
    residual = inv - _rotation(np.asarray(alpha))[None]
    err = np.linalg.norm(np.einsum("nij,kj->nki", residual, corners), axis=-1).max(axis=1)
    worst = int(np.argmax(err))
    if err[worst] > max_error:
        view_angle = float(np.degrees(per_view[worst]))
        raise ValueError(
            f"the transform of view {worst} is not a rotation by the common tilt-axis angle "
            f"{alpha:.3f}° (its own rotation is {view_angle:.3f}°; with any scaling or skew it "
            f"moves an image corner {err[worst]:.2f} pixels away, more than max_error="
            f"{max_error:g}): apply it with apply_xf/write_ali and reconstruct the aligned "
            "stack with tilt_axis_angle=0 instead."
        )
    return shifts, alpha


def read_imod_alignment(
    stack: str | os.PathLike[str],
    xf: str | os.PathLike[str],
    tlt: str | os.PathLike[str],
    *,
    pixel_size: float | None = None,
    max_error: float = 0.5,
) -> TiltSeries:
    """Read a raw stack with its IMOD alignment: ``.xf`` transforms and ``.tlt`` angles.

    Parameters
    ----------
    stack : str or path-like
        The raw (unaligned) stack the ``.xf`` was made for, e.g. ``name.st``.
    xf : str or path-like
        Aligning transforms, one per view (``name.xf``: raw → aligned).
    tlt : str or path-like
        Tilt angles in degrees, one per view (``name.tlt``).
    pixel_size : float, Å, optional
        Overrides the pixel size found with the stack.
    max_error : float, pixels
        As :func:`alignment_from_xf`.

    Returns
    -------
    TiltSeries
        The raw images with ``shifts`` and ``tilt_axis_angle`` from the ``.xf``; wedge
        reconstructs it with the alignment applied (no resampling of the images).
    """
    from .stacks import read_tiltseries

    series = read_tiltseries(stack, angles=tlt, pixel_size=pixel_size)
    if series.is_focal_series or series.euler is not None:
        raise ValueError(
            f"{Path(stack).name} carries Euler angles or a focal series; an IMOD alignment "
            "describes a plain single-axis stack."
        )
    transforms = read_xf(xf, n_views=series.n_tilts)
    shifts, alpha = alignment_from_xf(transforms, series.image_shape, max_error=max_error)
    source = f"{series.source} Shifts and tilt-axis angle {alpha:.3f}° from {xf}."
    return series.replace(shifts=shifts, tilt_axis_angle=alpha, source=source)
