"""Two slots, one switch: install into the inactive slot, count the new slot's boots, roll back by itself.

Layout under the root (ROOT, e.g. /opt/pos-terminal):

    ROOT/slots/a/, ROOT/slots/b/   one installed image each: manifest.json and manifest.sig (as
                                   signed), files/ (the image's files), site/ (its wheels unpacked)
    ROOT/slots/.b.partial/         a slot being written; never started, removed by the next install
    ROOT/current -> slots/a        the slot the kiosk starts; replaced only by rename (the switch)
    ROOT/trial.json                {"slot", "version", "boots", "max_boots", "fallback"}: the current
                                   slot is on trial until `mark_good`; stale when it names another slot
    ROOT/last_rollback.json        the last slot given up, and why
    DATA_DIR/update/anti_rollback.json   {"highest": version}: the highest version ever installed;
                                   outside the slots, never lowered

States of the current slot: GOOD (no trial for it) or TRIAL(boots/max_boots).

    install     GOOD(a) -> write slots/b, trial.json(b, 0), switch current -> b -> TRIAL(b, 0/N)
                (the very first install has nothing to fall back to: GOOD at once)
    boot        TRIAL(b, n/N), n < N -> TRIAL(b, n+1/N), start b
                TRIAL(b, N/N) -> last_rollback.json, switch current -> a, drop trial.json -> GOOD(a)
                GOOD(a) -> start a
    mark_good   TRIAL(b, n/N) -> drop trial.json -> GOOD(b); GOOD stays GOOD
    rollback    TRIAL(b, n/N) -> as boot at N/N; GOOD is refused (the other slot is older, and
                once a slot is marked good the way down is closed: install a newer image)

Crash safety: every step is one rename (or one unlink) followed by an fsync
of its directory, in an order that makes the `current` link the commit point
of an install and of a rollback. Killed before the switch, the old slot
starts and the stale trial.json or partial slot is cleaned up later; killed
after, the new slot starts on trial with the old one as its fallback. The
anti-rollback counter is raised after the switch, and `boot` raises it to
the current slot's version, so a kill between the two loses nothing. Every
operation holds the inter-process lock of ROOT/current.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from firmware.errors import ImageRefusedError, MalformedFileError, SlotError, StoreError
from firmware.store.atomic_file import fsync_dir, locked, write_atomically
from firmware.store.json_guard import load_json
from firmware.update.manifest import Manifest, Version, check_path, parse_manifest
from firmware.update.trust import TrustedKeys
from firmware.update.verify import Target, VerifiedImage, extract, verify_image

__all__ = [
    "DEFAULT_MAX_BOOTS",
    "SLOTS",
    "BootDecision",
    "InstallResult",
    "SlotInfo",
    "SlotStatus",
    "Trial",
    "boot",
    "highest_installed",
    "install",
    "mark_good",
    "rollback",
    "status",
]

SLOTS: Final = ("a", "b")
DEFAULT_MAX_BOOTS: Final = 3
_MAX_STATE_FILE: Final = 64 << 10


@dataclass(frozen=True)
class Trial:
    slot: str
    version: str
    boots: int
    max_boots: int
    fallback: str


@dataclass(frozen=True)
class SlotInfo:
    name: str
    version: Version | None  # None: empty, or not a complete slot
    manifest: Manifest | None


@dataclass(frozen=True)
class SlotStatus:
    current: str | None
    trial: Trial | None  # the current slot's trial, if it is on one
    slots: tuple[SlotInfo, ...]
    highest: Version | None
    last_rollback: dict[str, object] | None

    def slot(self, name: str) -> SlotInfo:
        return next(info for info in self.slots if info.name == name)


@dataclass(frozen=True)
class InstallResult:
    slot: str
    version: Version
    previous: str | None
    trial: Trial | None


@dataclass(frozen=True)
class BootDecision:
    slot: str
    directory: Path
    version: Version
    trial: Trial | None  # after this start was counted
    rolled_back: Trial | None  # the trial given up at this start


# --- small durable steps -------------------------------------------------------------------------


def _slots_dir(root: Path) -> Path:
    return root / "slots"


def _trial_path(root: Path) -> Path:
    return root / "trial.json"


def _counter_path(data_dir: Path) -> Path:
    return data_dir / "update" / "anti_rollback.json"


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_STATE_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    try:
        document = load_json(raw, str(path))
    except MalformedFileError:
        raise StoreError(f"{path} is not JSON") from None
    if not isinstance(document, dict):
        raise StoreError(f"{path} is not a JSON object")
    return document


def _write_json(path: Path, document: dict[str, object]) -> None:
    write_atomically(path, (json.dumps(document, sort_keys=True, indent=2) + "\n").encode("ascii"))


def _unlink_durably(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot remove {path}: {exc.strerror}") from None
    fsync_dir(path.parent)


def _current(root: Path) -> str | None:
    try:
        target = os.readlink(root / "current")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SlotError(f"{root / 'current'} is not a link to a slot ({exc.strerror})") from None
    name = PurePosixPath(target).name
    if target != f"slots/{name}" or name not in SLOTS:
        raise SlotError(f"{root / 'current'} points at {target!r}, not at a slot")
    return name


def _switch(root: Path, slot: str) -> None:
    """Point ROOT/current at `slot` in one rename, then make the rename durable."""
    temp = root / f".current.{secrets.token_hex(6)}.tmp"
    try:
        os.symlink(f"slots/{slot}", temp)
        os.rename(temp, root / "current")
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise StoreError(f"cannot switch {root / 'current'} to slot {slot}: {exc.strerror}") from None
    fsync_dir(root)


def _read_trial(root: Path) -> Trial | None:
    document = _read_json(_trial_path(root))
    if document is None:
        return None
    try:
        trial = Trial(
            str(document["slot"]),
            str(document["version"]),
            int(str(document["boots"])),
            int(str(document["max_boots"])),
            str(document["fallback"]),
        )
    except (KeyError, ValueError):
        raise StoreError(f"{_trial_path(root)} is damaged") from None
    if trial.slot not in SLOTS or trial.fallback not in SLOTS or trial.slot == trial.fallback:
        raise StoreError(f"{_trial_path(root)} names no pair of slots")
    return trial


def _write_trial(root: Path, trial: Trial) -> None:
    _write_json(
        _trial_path(root),
        {
            "slot": trial.slot,
            "version": trial.version,
            "boots": trial.boots,
            "max_boots": trial.max_boots,
            "fallback": trial.fallback,
        },
    )


def _remove_stale_temp_files(root: Path) -> None:
    for stale in root.glob(".trial.json.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)


def _slot_info(root: Path, name: str) -> SlotInfo:
    path = _slots_dir(root) / name / "manifest.json"
    try:
        with path.open("rb") as file:
            manifest = parse_manifest(file.read())
    except (OSError, ImageRefusedError):
        return SlotInfo(name, None, None)
    return SlotInfo(name, manifest.version, manifest)


def highest_installed(data_dir: Path) -> Version | None:
    """The anti-rollback counter: the highest version ever installed on this terminal."""
    document = _read_json(_counter_path(Path(data_dir)))
    if document is None:
        return None
    try:
        return Version.parse(str(document["highest"]))
    except (KeyError, ValueError):
        raise StoreError(f"{_counter_path(Path(data_dir))} is damaged") from None


def _raise_counter(data_dir: Path, version: Version) -> None:
    path = _counter_path(data_dir)
    with locked(path):
        highest = highest_installed(data_dir)
        if highest is None or version > highest:
            _write_json(path, {"highest": str(version)})


# --- writing a slot ------------------------------------------------------------------------------


def _rmtree(path: Path) -> None:
    if os.path.lexists(path):
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise StoreError(f"cannot remove {path}: {exc.strerror}") from None


def _fsync_tree(top: Path) -> None:
    for directory, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count(os.sep)):
        fsync_dir(Path(directory))


def _unpack_wheel(wheel: Path, site: Path) -> None:
    """Unpack one (already verified) wheel into `site`, as an installer would: purelib/platlib kept."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                name = info.filename
                parts = name.split("/")
                if parts[0].endswith(".data"):
                    if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                        continue  # scripts and headers have no place on a terminal
                    name = "/".join(parts[2:])
                check_path(name)
                target = site / name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
                mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
                try:
                    with archive.open(info) as source:
                        while chunk := source.read(1 << 16):
                            view = memoryview(chunk)
                            while view:
                                view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StoreError(f"cannot unpack {wheel.name}: {exc}") from None


def _write_slot(root: Path, name: str, verified: VerifiedImage) -> None:
    """Fill ROOT/slots/.NAME.partial, then rename it to ROOT/slots/NAME (the old content removed first)."""
    slots = _slots_dir(root)
    partial = slots / f".{name}.partial"
    old = slots / f".{name}.old"
    _rmtree(partial)
    _rmtree(old)
    try:
        partial.mkdir(mode=0o755)
        (partial / "files").mkdir(mode=0o755)
    except OSError as exc:
        raise StoreError(f"cannot create {partial}: {exc.strerror}") from None
    extract(verified, partial / "files")
    write_atomically(partial / "manifest.sig", verified.signature)
    write_atomically(partial / "manifest.json", verified.manifest_bytes)
    site = partial / "site"
    try:
        site.mkdir(mode=0o755)
    except OSError as exc:
        raise StoreError(f"cannot create {site}: {exc.strerror}") from None
    for entry in verified.manifest.files:
        if entry.path.startswith("wheels/") and entry.path.endswith(".whl"):
            _unpack_wheel(partial / "files" / entry.path, site)
    _fsync_tree(partial)
    try:
        if os.path.lexists(slots / name):
            os.rename(slots / name, old)
            fsync_dir(slots)
            _rmtree(old)
        os.rename(partial, slots / name)
    except OSError as exc:
        raise StoreError(f"cannot put slot {name} in place: {exc.strerror}") from None
    fsync_dir(slots)


# --- the operations ------------------------------------------------------------------------------


def status(root: Path, data_dir: Path) -> SlotStatus:
    root, data_dir = Path(root), Path(data_dir)
    current = _current(root)
    trial = _read_trial(root)
    if trial is not None and trial.slot != current:
        trial = None  # stale: written by an install killed before its switch, or by a rollback
    last = _read_json(root / "last_rollback.json")
    slots = tuple(_slot_info(root, name) for name in SLOTS)
    return SlotStatus(current, trial, slots, highest_installed(data_dir), last)


def install(
    image: Path,
    root: Path,
    data_dir: Path,
    trusted: TrustedKeys,
    target: Target,
    *,
    max_boots: int = DEFAULT_MAX_BOOTS,
) -> InstallResult:
    """Verify `image` and install it into the inactive slot, then switch to it on trial.

    Raises ImageRefusedError (nothing was written), SlotError (the current slot
    is on trial: mark it good or roll it back first), StoreError.
    """
    if max_boots < 1:
        raise SlotError("max_boots must be at least 1")
    root, data_dir = Path(root), Path(data_dir)
    _slots_dir(root).mkdir(mode=0o755, parents=True, exist_ok=True)
    with locked(root / "current"):
        _remove_stale_temp_files(root)
        current = _current(root)
        trial = _read_trial(root)
        if trial is not None and trial.slot == current:
            raise SlotError(
                f"slot {current} ({trial.version}) is on trial: mark it good or roll it back first"
            )
        installed = _slot_info(root, current).version if current else None
        verified = verify_image(image, trusted, target, installed, highest_installed(data_dir))
        slot = "a" if current in (None, "b") else "b"
        _write_slot(root, slot, verified)
        version = verified.manifest.version
        if current is None:
            _switch(root, slot)
            _raise_counter(data_dir, version)
            return InstallResult(slot, version, None, None)
        new_trial = Trial(slot, str(version), 0, max_boots, current)
        _write_trial(root, new_trial)
        _switch(root, slot)  # the commit point
        _raise_counter(data_dir, version)
        return InstallResult(slot, version, current, new_trial)


def _give_up(root: Path, trial: Trial, why: str) -> None:
    _write_json(
        root / "last_rollback.json",
        {"slot": trial.slot, "version": trial.version, "boots": trial.boots, "why": why},
    )
    _switch(root, trial.fallback)  # the commit point
    _unlink_durably(_trial_path(root))


def boot(root: Path, data_dir: Path) -> BootDecision:
    """At each start, before the kiosk: count a trial, give it up after its last boot; say what to start.

    Raises SlotError when no slot is installed or the one to start is damaged
    with nothing to fall back to.
    """
    root, data_dir = Path(root), Path(data_dir)
    with locked(root / "current"):
        _remove_stale_temp_files(root)
        current = _current(root)
        if current is None:
            raise SlotError(f"no slot is installed under {root}")
        trial = _read_trial(root)
        if trial is not None and trial.slot != current:
            _unlink_durably(_trial_path(root))
            trial = None
        rolled_back = None
        if trial is not None:
            damaged = _slot_info(root, current).version is None
            if trial.boots >= trial.max_boots or damaged:
                why = "damaged slot" if damaged else f"{trial.boots} starts without mark-good"
                _give_up(root, trial, why)
                rolled_back, current, trial = trial, trial.fallback, None
            else:
                trial = Trial(trial.slot, trial.version, trial.boots + 1, trial.max_boots, trial.fallback)
                _write_trial(root, trial)
        info = _slot_info(root, current)
        if info.version is None:
            raise SlotError(f"slot {current} is damaged (no readable manifest) and has no fallback")
        _raise_counter(data_dir, info.version)
        return BootDecision(current, _slots_dir(root) / current, info.version, trial, rolled_back)


def mark_good(root: Path) -> tuple[str, Trial | None]:
    """The kiosk is healthy on the current slot: end its trial. Returns the slot and the trial ended."""
    root = Path(root)
    with locked(root / "current"):
        current = _current(root)
        if current is None:
            raise SlotError(f"no slot is installed under {root}")
        trial = _read_trial(root)
        if trial is None or trial.slot != current:
            return current, None
        _unlink_durably(_trial_path(root))
        return current, trial


def rollback(root: Path) -> Trial:
    """Give up the current slot's trial now and go back to its fallback (the technician's choice)."""
    root = Path(root)
    with locked(root / "current"):
        current = _current(root)
        if current is None:
            raise SlotError(f"no slot is installed under {root}")
        trial = _read_trial(root)
        if trial is None or trial.slot != current:
            raise SlotError(
                f"slot {current} is marked good: going back would lower the version; install a newer image"
            )
        if _slot_info(root, trial.fallback).version is None:
            raise SlotError(f"slot {trial.fallback} holds no complete image to go back to")
        _give_up(root, trial, "rollback by the technician")
        return trial
