"""Atomic writes: ``wedge trace`` output, stale temporary files of killed writers, permissions."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from wedge.atoms import trace_file
from wedge.io import atomic_output


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "tmp" in p.name)


def test_trace_with_one_species_keeps_old_xyz_when_the_write_fails(tmp_path, monkeypatch):
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in (15, 16, 17)], indexing="ij"), -1)
    vol = np.zeros((15, 16, 17), np.float32)
    for centre in ([7.0, 8.0, 5.0], [7.0, 8.0, 11.0]):  # two atoms of unknown species "X"
        vol += 4.0 * np.exp(-0.5 * ((grid - centre) ** 2).sum(-1)).astype(np.float32)
    src = tmp_path / "v.npy"
    np.save(src, vol)
    out = tmp_path / "atoms.xyz"
    out.write_text("old\n")

    def half_then_fail(self, data, *args, **kwargs):
        with open(self, "w") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError("no space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="no space left"):
        trace_file(src, out, voxel_size=0.5)
    monkeypatch.undo()
    assert out.read_text() == "old\n"
    assert _temporaries(tmp_path) == []


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from wedge.io import atomic_output
    with atomic_output(sys.argv[1]) as tmp:
        tmp.write_bytes(b"x" * 4096)
        print(tmp, flush=True)
        time.sleep(600)
    """
)


def test_atomic_write_removes_temporaries_of_killed_writers_only(tmp_path):
    target = tmp_path / "vol.mrc"
    foreign = [tmp_path / ".vol.mrc.tmp-abc123.mrc", tmp_path / ".vol.mrc.wedge-tmp-x.mrc"]
    for f in foreign:  # not wedge's naming: other programs' files, never touched
        f.write_text("keep")
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stale = Path(child.stdout.readline().strip())
    finally:
        child.kill()  # SIGKILL: no chance to clean up
        _, err = child.communicate()
    assert stale.is_file(), f"the writer did not start: {err}"
    with atomic_output(target) as live:  # this (live) process's own temporary file
        live.write_bytes(b"live")
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"new")
        assert not stale.exists()
        assert live.read_bytes() == b"live"
    assert target.read_bytes() == b"live"
    assert all(f.read_text() == "keep" for f in foreign)
    assert _temporaries(tmp_path) == sorted(f.name for f in foreign)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores directory permissions (covered by the monkeypatched tests below)",
)
def test_atomic_write_into_read_only_directory_names_the_target(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    target = ro / "vol.npy"
    try:
        with pytest.raises(PermissionError, match=rf"cannot write {re.escape(str(target))}:"):
            with atomic_output(target) as tmp:
                tmp.write_bytes(b"x")
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


def test_permission_error_creating_the_temporary_file_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "vol.npy"

    def denied(*, dir, prefix, suffix):
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}abc{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(
        PermissionError,
        match=rf"cannot write {re.escape(str(target))}: permission denied.*writable directory",
    ):
        with atomic_output(target):
            pass


def test_permission_error_renaming_onto_the_target_names_it_and_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "vol.npy"

    def denied(src, dst):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(PermissionError, match=rf"cannot write {re.escape(str(target))}: "):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
