"""Atomic file output: write to a temporary file beside the target, then rename onto it.

Every writer in wedge (volumes, stacks, angle files, XYZ files, checkpoints, reports) goes
through :func:`atomic_output`, so a crash or an exception part-way never leaves a truncated
file under the final name, and readers never see a half-written file.

Temporary files are named ``.<name>.wedge-tmp-<pid>-<host>-<random><suffix>``: ``<pid>`` is
the writing process and ``<host>`` a short hash of its host name. A process killed outright
(``kill -9``, out of memory) cannot delete its temporary file; the next atomic write to the
same target from the same host removes such leftovers once their process is gone. Files of
live processes, of other hosts (a shared file system) and of other programs are never
touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import socket
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output"]

_TAG = "wedge-tmp"


def _host_tag() -> str:
    """Eight hex digits identifying this host (temporary-file names stay plain ASCII)."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (True when unsure)."""
    if pid <= 0:
        return True
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to another user
        return True
    return True


def _remove_stale_temporaries(final: Path, parent: Path) -> None:
    """Delete this host's leftover temporary files for ``final`` whose process has died."""
    pattern = re.compile(
        rf"^\.{re.escape(final.name)}\.{_TAG}-(\d+)-{_host_tag()}-[A-Za-z0-9_]+"
        rf"{re.escape(final.suffix)}$"
    )
    try:
        candidates = list(parent.glob(f".{glob.escape(final.name)}.{_TAG}-*"))
    except OSError:
        return
    for candidate in candidates:
        m = pattern.match(candidate.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):  # cleaning up is best effort, never a failure
            candidate.unlink()


def _permission_error(final: Path, parent: Path) -> PermissionError:
    """The error to raise instead of one that names the temporary file."""
    return PermissionError(
        f"cannot write {final}: permission denied in {parent}; choose a writable directory "
        "(or fix its permissions)."
    )


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
    ``.<name>.wedge-tmp-<pid>-<host>-XXXXXXXX<suffix>`` so that writers choosing a format
    by suffix (``.mrc``, ``.h5``, ``.npy``, ...) still see the right one, and so that a
    later write can recognise and remove it (see the module docstring) should this process
    be killed before it can clean up. Writers must open it for
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
    PermissionError
        If the directory (or the target) is not writable; the message names ``path``.
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
    _remove_stale_temporaries(final, parent)
    prefix = f".{final.name}.{_TAG}-{os.getpid()}-{_host_tag()}-"
    try:
        fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=final.suffix)
    except PermissionError as exc:
        raise _permission_error(final, parent) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        mode = final.stat().st_mode & 0o7777 if final.exists() else _default_mode()
        os.chmod(tmp, mode)
        _fsync_path(tmp)
        try:
            os.replace(tmp, final)
        except PermissionError as exc:
            raise _permission_error(final, parent) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_path(parent, directory=True)
