"""Atomic file output: write to a temporary file beside the target, then rename onto it.

Every writer in wedge (volumes, stacks, angle files, checkpoints, reports) goes through
:func:`atomic_output`, so a crash or an exception part-way never leaves a truncated file
under the final name, and readers never see a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output"]


def _default_mode() -> int:
    """Permission bits a plain ``open(path, "w")`` would give: 0o666 less the umask."""
    try:  # Linux: read the umask without changing it (os.umask is process-wide, not thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open directories; durability is best effort there
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically.

    The temporary file is created (empty) in the same directory as ``path``, named
    ``.<name>.tmp-XXXXXXXX<suffix>`` so that writers choosing a format by suffix
    (``.mrc``, ``.h5``, ``.npy``, ...) still see the right one. Writers must open it for
    writing with truncation/overwrite (e.g. ``mrcfile.new(tmp, overwrite=True)``).

    On a clean exit the file is flushed to disk (``fsync``), given the permissions a newly
    created file would have (or those of the file it replaces), and renamed onto ``path``
    with :func:`os.replace`, which is atomic on POSIX and Windows within one file system;
    the directory entry is then fsynced (best effort). If the body raises (including
    ``KeyboardInterrupt``), the temporary file is deleted and the exception propagates;
    ``path`` is left untouched.

    Parameters
    ----------
    path : str or path-like
        Final destination. Its directory must already exist.

    Yields
    ------
    pathlib.Path
        The temporary file to write.

    Raises
    ------
    FileNotFoundError
        If the destination directory does not exist.
    ValueError
        If ``path`` names an existing directory.
    """
    final = Path(path)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {final}: the directory {parent} does not exist; create it first."
        )
    if final.is_dir():
        raise ValueError(f"cannot write {final}: it is a directory; give a file name.")
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{final.name}.tmp-", suffix=final.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        mode = final.stat().st_mode & 0o7777 if final.exists() else _default_mode()
        os.chmod(tmp, mode)
        _fsync_path(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_path(parent, directory=True)
