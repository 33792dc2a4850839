"""In-plane image rotation shared by the API, the report and the geometry tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rotate_images", "rotate_shifts"]


def rotate_images(images: torch.Tensor, tilt_axis_angle: Any) -> torch.Tensor:
    """Rotate every image so that a tilt axis at ``tilt_axis_angle`` lies along Y.

    ``images`` (n, Y, X); the angle is in degrees, counter-clockwise from image Y (IMOD's
    rotation angle): one number for all images, or one per image (n,) for a series whose
    images do not share one axis (interleaved acquisitions, each with its own axis).
    Output pixel ``p`` (relative to the image centre (N−1)/2, as (x, y)) takes the bilinear
    sample of the input at ``Z(α) p``; pixels that come from outside the input are zero.
    This undoes the in-plane rotation that the Euler angle φ = α applies to a projection.
    """
    n, ny, nx = images.shape
    dev, dt = images.device, images.dtype
    a = torch.deg2rad(torch.as_tensor(np.asarray(tilt_axis_angle, np.float64), device=dev))
    if a.ndim not in (0, 1) or (a.ndim == 1 and a.shape[0] != n):
        raise ValueError(
            f"tilt_axis_angle must be one angle or one per image ({n}), got shape {tuple(a.shape)}."
        )
    c = torch.cos(a).to(dt).reshape(-1, 1, 1)
    s = torch.sin(a).to(dt).reshape(-1, 1, 1)
    y = torch.arange(ny, device=dev, dtype=dt) - (ny - 1) / 2
    x = torch.arange(nx, device=dev, dtype=dt) - (nx - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    xs, ys = c * xx - s * yy, s * xx + c * yy
    grid = torch.stack([2 * xs / nx, 2 * ys / ny], dim=-1)  # align_corners=False
    out = F.grid_sample(
        images[:, None],
        grid.expand(n, -1, -1, -1),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out[:, 0]


def rotate_shifts(shifts: np.ndarray, tilt_axis_angle: float) -> np.ndarray:
    """``Z(−α) s`` for shifts (n, 2) as (dx, dy) pixels: the shifts of images after
    :func:`rotate_images` by the same ``tilt_axis_angle`` α (degrees). A measured image is
    the ideal one moved by ``s``; rotated by −α, it is the rotated ideal moved by Z(−α) s.
    ``rotate_shifts(s, -α)`` maps back. α is one angle or one per image (n,)."""
    a = np.deg2rad(np.asarray(tilt_axis_angle, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    sh = np.asarray(shifts, dtype=np.float64)
    return np.stack([c * sh[:, 0] + s * sh[:, 1], -s * sh[:, 0] + c * sh[:, 1]], 1)
