"""Alignment of tilt series: angular (and shift) refinement by re-projection matching."""

from .refine import RefineOptions, RefineResult, refine_angles, refine_angles_file, score_images

__all__ = ["RefineOptions", "RefineResult", "refine_angles", "refine_angles_file", "score_images"]
