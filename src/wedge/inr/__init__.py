"""Implicit-neural-representation tomography (the ``inr`` method): field, rays, training,
rendering and data-parallel helpers. See docs/inr.md and :mod:`wedge.methods.inr`."""

from .distributed import Ranks, init_from_env, local_device
from .field import HSiren
from .rays import Pose, RayGeometry, line_integrals, matrix_to_euler, n_samples
from .render import render_bytes, render_checkpoint, render_volume

__all__ = [
    "HSiren",
    "Pose",
    "RayGeometry",
    "Ranks",
    "init_from_env",
    "line_integrals",
    "local_device",
    "matrix_to_euler",
    "n_samples",
    "render_bytes",
    "render_checkpoint",
    "render_volume",
]
