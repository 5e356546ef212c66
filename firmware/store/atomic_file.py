"""Crash-safe small-file writes: temp file, fsync, rename over, fsync the directory.

After a power cut at any point the path holds either the old content or the
new content, never a mix, and never a second name for it: the temp file
(`.NAME.<random>.tmp`, created O_EXCL in the same directory, mode 0600) is
renamed over the target, so there is no moment with two links to one key.
A cut before the rename can leave a temp file; the next writer of that path
removes it when it takes the path's lock.

`locked(path)` is the inter-process lock of one file (flock on `.NAME.lock`
in the same directory). Every writer of a path holds it: a read-modify-write
of the file, so two processes (the terminal and `pos-keys`) cannot overwrite
each other's change, and an exclusive create, so the "does it exist" check
and the rename are one step.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from firmware.errors import StoreError

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "ensure_private_dir",
    "fsync_dir",
    "locked",
    "tighten_private_dir",
    "write_atomically",
]

DEFAULT_LOCK_TIMEOUT: Final = 10.0
_LOCK_POLL_SECONDS: Final = 0.01

log = logging.getLogger(__name__)


def fsync_dir(directory: Path) -> None:
    """Make a rename, creation or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(directory: Path) -> None:
    """Create `directory` (and parents) with mode 0700 if it does not exist.

    Each new level is made durable in its parent (fsync of the parent), so a
    file fsynced inside it cannot vanish with its directory after a power cut.
    """
    directory = Path(directory)
    missing = []
    level = directory
    while not level.is_dir():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    try:
        for new in reversed(missing):
            try:
                new.mkdir(mode=0o700)
            except FileExistsError:
                if not new.is_dir():
                    raise
            fsync_dir(new.parent)
    except OSError as exc:
        raise StoreError(f"cannot create directory {directory}: {exc.strerror}") from exc


def tighten_private_dir(directory: Path) -> bool:
    """Make an existing private directory (the data or key directory) mode 0700; True if it was looser.

    A directory that group or others may read, write or enter is changed and
    a warning logged: files in it are 0600, but a loose directory still lets
    another local user list, rename or delete them. A missing directory is
    left alone (it is created 0700 when first written).
    """
    directory = Path(directory)
    try:
        mode = stat.S_IMODE(os.stat(directory).st_mode)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"cannot read the mode of {directory}: {exc.strerror}") from exc
    if not mode & 0o077:
        return False
    try:
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise StoreError(f"{directory} is mode {mode:04o} and cannot be made 0700: {exc.strerror}") from exc
    log.warning("%s was mode %04o, open to other local users: made 0700", directory, mode)
    return True


@contextlib.contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the inter-process lock of `path` while the block runs (StoreError after `timeout` s).

    Every writer of `path` takes this lock, so no change is lost between
    processes; once it is held, temp files a power cut left for `path` are
    removed. Not re-entrant: a holder must not take it again (nor call
    `write_atomically(..., exclusive=True)` on the same path).
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    lock_file = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {lock_file}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{path} is being changed by another process (still locked after {timeout:.0f} s)"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        _remove_stale_temp_files(path)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _temp_name(name: str, suffix: str) -> str:
    return f".{name}.{suffix}.tmp"


def _remove_stale_temp_files(path: Path) -> None:
    """Remove what a power cut before the rename left for `path` (only under its lock)."""
    stale = glob.glob(str(path.parent / _temp_name(glob.escape(path.name), "*")), include_hidden=True)
    try:
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        if stale:
            fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"cannot remove the stale temp files of {path}: {exc.strerror}") from exc


def _write_and_rename(path: Path, data: bytes) -> None:
    temp = path.with_name(_temp_name(path.name, secrets.token_hex(6)))
    renamed = False
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
        renamed = True
        fsync_dir(path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def write_atomically(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Replace `path` with `data` in one step; `exclusive` refuses to replace an existing file.

    A plain replace is made by a caller holding `locked(path)` when it read the
    file first; an exclusive one takes the lock itself.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    if not exclusive:
        _write_and_rename(path, data)
        return
    with locked(path):
        if os.path.lexists(path):
            raise StoreError(f"{path} already exists; refusing to overwrite it")
        _write_and_rename(path, data)
