"""Crash-safe file writes: every file a run, report or export writes goes through here.

A write goes to a temporary file in the target's folder (``.<name>.<pid>.tmp``), is
flushed and ``fsync``-ed, then renamed over the target with :func:`os.replace` (atomic on
POSIX), and the folder is ``fsync``-ed so the rename itself survives a power cut. A reader
therefore sees the old file or the new one, never a torn one, whatever moment the writer is
killed at; at worst a temporary file is left behind, which :func:`clean_stale_temps`
removes (only those of processes no longer alive).

A write that fails for space (``ENOSPC``, ``EDQUOT``) removes its temporary file and
raises :class:`mast.errors.UserError` naming the path; the previous file is untouched.

Contract for callers: build the whole content first (or write it through the file object
:func:`atomic_open` yields), never open the target itself for writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mast.errors import UserError

__all__ = [
    "DiskFullError",
    "atomic_open",
    "clean_stale_temps",
    "save_with",
    "write_bytes",
    "write_text",
]

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


class DiskFullError(UserError):
    """A write failed for lack of space; the message names the file."""


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` over ``path`` (one function, so tests can kill a process here)."""
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    Parameters
    ----------
    path:
        The target file; its folder is created if missing.
    mode:
        ``"wb"`` or ``"w"`` (text; ``kwargs`` such as ``newline`` go to :func:`open`).

    Raises
    ------
    DiskFullError
        The disk (or quota) was full; the target is unchanged and no temporary file is left.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno in _SPACE_ERRNOS:
            raise DiskFullError(f"no space left on device writing {str(path)!r}") from None
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns ``path``."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`); returns ``path``."""
    return write_bytes(path, text.encode(encoding))


def save_with(path: str | Path, save) -> Path:
    """Atomically write what ``save(file_object)`` writes (``np.savez``, ``torch.save``,
    ``fig.savefig`` ...) to ``path``; returns ``path``."""
    with atomic_open(path, "wb") as fh:
        save(fh)
    return Path(path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Remove temporary files of writers that died before renaming them.

    Only files named like this module's temporaries (``.<name>.<pid>.tmp``) whose process
    is gone are removed. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
        m = _TEMP.match(p.name)
        if m and p.is_file() and not _alive(int(m["pid"])):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            removed.append(p)
    return removed
