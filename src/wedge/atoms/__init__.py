"""Atomic models: potentials from atom positions, XYZ files, atom tracing and evaluation."""
