"""Typed projector options, reachable from :func:`wedge.reconstruct` and the CLI.

``reconstruct(series, "sirt", projector=ProjectorOptions(n_sub=1))`` or
``wedge reconstruct … --projector n_sub=1``. Each field applies to some projectors only;
giving one that the chosen projector does not use is an error, not a silent no-op.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._options import coerce_field, option_fields

__all__ = ["ProjectorOptions", "projector_name"]

#: which registered projectors take each option, and under which constructor keyword
_APPLIES: dict[str, tuple[tuple[str, ...], str]] = {
    "n_sub": (("ray-sparse", "voxel-sparse"), "n_sub"),
    "ray_step": (("ray-3d",), "step"),
    "oversampling": (("fourier",), "oversampling"),
}


@dataclasses.dataclass(frozen=True)
class ProjectorOptions:
    """Numerical options of the projectors (None: the projector's default).

    Parameters
    ----------
    n_sub : int, optional
        ``ray-sparse``: samples per voxel along the ray (default 3; 1 is Joseph's method,
        ASTRA's ``linear``). ``voxel-sparse``: sub-voxels per axis (default 2).
    ray_step : float, optional
        ``ray-3d``: sampling step along each ray in voxels (default 0.5).
    oversampling : float, optional
        ``fourier``: zero-padding factor of the 3D spectrum (default 3, RESIRE's).
    """

    n_sub: int | None = None
    ray_step: float | None = None
    oversampling: float | None = None

    def __post_init__(self) -> None:
        for name, (tp, _) in option_fields(type(self)).items():
            object.__setattr__(self, name, coerce_field("projector", name, tp, getattr(self, name)))
        if self.n_sub is not None and self.n_sub < 1:
            raise ValueError(f"projector option n_sub must be ≥ 1, got {self.n_sub}.")
        if self.ray_step is not None and not self.ray_step > 0:
            raise ValueError(f"projector option ray_step must be > 0 voxels, got {self.ray_step}.")
        if self.oversampling is not None and not self.oversampling >= 1:
            raise ValueError(f"projector option oversampling must be ≥ 1, got {self.oversampling}.")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ProjectorOptions:
        """From ``{name: value}`` (e.g. the CLI's ``--projector n_sub=1``), names checked."""
        known = set(option_fields(cls))
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown projector option {', '.join(map(repr, unknown))}; the options are: "
                f"{', '.join(sorted(known))}."
            )
        return cls(**values)

    def kwargs_for(self, name: str) -> dict[str, Any]:
        """Constructor keywords for the registered projector ``name``.

        Raises
        ------
        ValueError
            An option is set that projector ``name`` does not take.
        """
        out = {}
        for field, (takers, keyword) in _APPLIES.items():
            value = getattr(self, field)
            if value is None:
                continue
            if name not in takers:
                raise ValueError(
                    f"projector option {field} applies to {' and '.join(takers)}, but this "
                    f"reconstruction uses the {name!r} projector; drop it or choose a model "
                    "that takes it."
                )
            out[keyword] = value
        return out


def projector_name(model: str, single_axis: bool) -> str:
    """The registered projector that ``model`` ("ray", "voxel", "fourier" or a name) selects."""
    if model == "ray":
        return "ray-sparse" if single_axis else "ray-3d"
    if model == "voxel":
        return "voxel-sparse"
    return model
