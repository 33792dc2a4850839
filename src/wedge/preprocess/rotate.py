"""In-plane image rotation shared by the API, the report and the geometry tests."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["rotate_images", "rotate_shifts"]


def rotate_images(images: torch.Tensor, tilt_axis_angle: float) -> torch.Tensor:
    """Rotate every image so that a tilt axis at ``tilt_axis_angle`` lies along Y.

    ``images`` (n, Y, X); the angle is in degrees, counter-clockwise from image Y (IMOD's
    rotation angle). Output pixel ``p`` (relative to the image centre (N−1)/2, as (x, y))
    takes the bilinear sample of the input at ``Z(α) p``; pixels that come from outside
    the input are zero. This undoes the in-plane rotation that the Euler angle φ = α
    applies to a projection.
    """
    n, ny, nx = images.shape
    a = math.radians(tilt_axis_angle)
    c, s = math.cos(a), math.sin(a)
    dev, dt = images.device, images.dtype
    y = torch.arange(ny, device=dev, dtype=dt) - (ny - 1) / 2
    x = torch.arange(nx, device=dev, dtype=dt) - (nx - 1) / 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    xs, ys = c * xx - s * yy, s * xx + c * yy
    grid = torch.stack([2 * xs / nx, 2 * ys / ny], dim=-1)  # align_corners=False
    out = F.grid_sample(
        images[:, None],
        grid[None].expand(n, -1, -1, -1),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out[:, 0]


def rotate_shifts(shifts: np.ndarray, tilt_axis_angle: float) -> np.ndarray:
    """``Z(−α) s`` for shifts (n, 2) as (dx, dy) pixels: the shifts of images after
    :func:`rotate_images` by the same ``tilt_axis_angle`` α (degrees). A measured image is
    the ideal one moved by ``s``; rotated by −α, it is the rotated ideal moved by Z(−α) s.
    ``rotate_shifts(s, -α)`` maps back."""
    a = math.radians(tilt_axis_angle)
    c, s = math.cos(a), math.sin(a)
    sh = np.asarray(shifts, dtype=np.float64)
    return np.stack([c * sh[:, 0] + s * sh[:, 1], -s * sh[:, 0] + c * sh[:, 1]], 1)
