"""Crash-safe small-file writes: temp file, fsync, rename over, fsync the directory.

After a power cut at any point the path holds either the old content or the
new content, never a mix. Files are created with mode 0600 (owner only).

`locked(path)` is the inter-process lock of one file (flock on `.NAME.lock`
in the same directory): a read-modify-write of the file holds it, so two
processes (the terminal and `pos-keys`) cannot overwrite each other's change.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from firmware.errors import KeyStoreError

__all__ = ["DEFAULT_LOCK_TIMEOUT", "ensure_private_dir", "locked", "write_atomically"]

DEFAULT_LOCK_TIMEOUT: Final = 10.0
_LOCK_POLL_SECONDS: Final = 0.01


def _fsync_dir(directory: Path) -> None:
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
            _fsync_dir(new.parent)
    except OSError as exc:
        raise KeyStoreError(f"cannot create directory {directory}: {exc.strerror}") from exc


@contextlib.contextmanager
def locked(path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the inter-process lock of `path` while the block runs (KeyStoreError after `timeout` s).

    Every writer of `path` that reads it first takes this lock, so no change is
    lost between processes. Not re-entrant: a holder must not take it again.
    """
    path = Path(path)
    ensure_private_dir(path.parent)
    lock_file = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeyStoreError(f"cannot open lock file {lock_file}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KeyStoreError(
                        f"{path} is being changed by another process (still locked after {timeout:.0f} s)"
                    ) from None
                time.sleep(_LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock

def write_atomically(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Replace `path` with `data` in one step; `exclusive` refuses to replace an existing file."""
    ensure_private_dir(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            # link() fails if the target exists: no window where an existing file is replaced.
            os.link(temp, path)
            os.unlink(temp)
        else:
            os.replace(temp, path)
        _fsync_dir(path.parent)
    except FileExistsError as exc:
        raise KeyStoreError(f"{path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
