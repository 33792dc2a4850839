"""Alignment of tilt series: angular (and shift) refinement by re-projection matching."""

from .axis import common_line_score, estimate_tilt_axis
from .coarse import (
    AlignmentResult,
    centre_shifts,
    coarse_align,
    com_shifts,
    interleaved_subsets,
    xcorr_shifts,
)
from .refine import RefineOptions, RefineResult, refine_angles, refine_angles_file, score_images

__all__ = ["RefineOptions", "RefineResult", "refine_angles", "refine_angles_file", "score_images"]
__all__ += [
    "AlignmentResult",
    "centre_shifts",
    "coarse_align",
    "com_shifts",
    "common_line_score",
    "estimate_tilt_axis",
    "interleaved_subsets",
    "xcorr_shifts",
]
from .fine import align, joint_refinement, projection_matching, register_shifts  # noqa: E402

__all__ += ["align", "joint_refinement", "projection_matching", "register_shifts"]
