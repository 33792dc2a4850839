"""In-plane image rotation shared by the API, the report and the geometry tests."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["rotate_images"]


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
