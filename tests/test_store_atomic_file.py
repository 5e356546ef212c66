"""Crash-safe small-file writes: what reaches the disk, in which order, and what a power cut leaves."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from firmware.errors import StoreError
from firmware.store.atomic_file import ensure_private_dir, locked, write_atomically


class DiskEvents:
    """Records mkdir and fsync calls (fsync by the inode it flushed) in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, int]] = []
        real_mkdir, real_fsync = os.mkdir, os.fsync

        def mkdir(path: str | os.PathLike[str], mode: int = 0o777, *args: object, **kwargs: object) -> None:
            real_mkdir(path, mode)
            self.events.append(("mkdir", os.stat(path).st_ino))

        def fsync(fd: int) -> None:
            real_fsync(fd)
            self.events.append(("fsync", os.fstat(fd).st_ino))

        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "fsync", fsync)

    def fsynced_after(self, created: Path, flushed: Path) -> bool:
        """Whether `flushed` was fsynced after `created` was made."""
        made = self.events.index(("mkdir", created.stat().st_ino))
        return ("fsync", flushed.stat().st_ino) in self.events[made + 1 :]


def test_each_new_directory_is_fsynced_in_its_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = DiskEvents(monkeypatch)
    target = tmp_path / "data" / "keys" / "keystore.json"
    write_atomically(target, b"{}")
    for created in (tmp_path / "data", tmp_path / "data" / "keys"):
        assert disk.fsynced_after(created, created.parent), f"{created.name} not made durable in its parent"
        assert stat.S_IMODE(created.stat().st_mode) == 0o700
    assert target.read_bytes() == b"{}"


def test_ensure_private_dir_leaves_existing_directories_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir(mode=0o755)
    disk = DiskEvents(monkeypatch)
    ensure_private_dir(tmp_path / "data" / "keys")
    assert disk.fsynced_after(tmp_path / "data" / "keys", tmp_path / "data")
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o755
    ensure_private_dir(tmp_path / "data" / "keys")  # already there: nothing to do, no error


def test_a_held_lock_is_waited_for_then_reported_not_hung_on(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "keystore.json"
    with locked(target):
        with pytest.raises(StoreError, match="another process"):
            with locked(target, timeout=0.2):
                pass
    with locked(target, timeout=0.2):  # released when the first holder is done
        write_atomically(target, b"{}")
    assert stat.S_IMODE((tmp_path / "keys" / ".keystore.json.lock").stat().st_mode) == 0o600


def test_temp_files_a_power_cut_left_are_removed_by_the_next_writer(tmp_path: Path) -> None:
    target = tmp_path / "device.key"
    stale = tmp_path / ".device.key.0123456789ab.tmp"
    other = tmp_path / ".passwords.json.0123456789ab.tmp"
    for path in (stale, other):
        path.write_bytes(b"clear key bytes a cut left behind")
    write_atomically(target, b"new", exclusive=True)
    assert not stale.exists() and other.exists()  # only the temp files of the path written
    assert target.read_bytes() == b"new" and target.stat().st_nlink == 1
    with pytest.raises(StoreError, match="refusing to overwrite"):
        write_atomically(target, b"other", exclusive=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".device.key.lock", other.name, "device.key"]
