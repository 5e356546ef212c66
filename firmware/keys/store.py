"""The key store: named keys at rest, each sealed under the device key.

One small JSON file (`keystore.json`, mode 0600) holds every entry. Each key
is sealed with AES-256-GCM under the device key; the entry's name, kind,
version, KCV (and TR-31 key block version, when it has one) are the GCM
associated data, so an entry cannot be renamed,
relabelled or swapped with another without the store noticing. (AES-GCM is
preferred to RFC 3394/5649 key wrap because it authenticates that metadata.)

Every change rewrites the whole file crash-safely (temp, fsync, rename,
fsync dir), so `replace_atomically` gives all-or-nothing for several keys;
the read-modify-write holds the file's inter-process lock, so a change made
by another process (the terminal's sign-on, `pos-keys load-tmk`) is never lost.
Clear key bytes exist only in the values `get` returns.

Anti-rollback (`firmware.keys.monotonic`): every write goes through the
record's guarded step, with the facts that must survive the file, per key
name: the highest `version.NAME` and the last `block_version.NAME` stored.
Every read checks the file against the record first: an older copy put back,
an edited file (an entry cut out) or a missing one is a KeyStoreError naming
the file; an entry that fails authentication is named as such before that.
`highest` tells a loader the versions a key has had, even once removed.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag

from firmware.errors import CryptoError, KeyStoreError, MalformedFileError, RolledBackError, StoreError
from firmware.keys.device import DeviceKey
from firmware.keys.kcv import KEY_KINDS, kcv_for
from firmware.keys.monotonic import MonotonicRecord
from firmware.randomness import Rng
from firmware.store.atomic_file import locked
from firmware.store.json_guard import load_json, read_bounded

__all__ = [
    "STORE_FILE_NAME",
    "STORE_RECORD_NAME",
    "KeyChange",
    "KeyInfo",
    "KeyStore",
    "KeyVersions",
    "NewKey",
]

log = logging.getLogger(__name__)

STORE_FILE_NAME = "keystore.json"
STORE_RECORD_NAME = "keystore"  # its name in the anti-rollback record
_FORMAT = "pos-keystore-1"
# A key file holds a few dozen small entries: a larger one is not a key file of this terminal.
MAX_KEY_FILE_BYTES = 1 << 20
_NONCE_LENGTH = 12
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its bytes."""

    name: str
    kind: str
    version: int
    kcv: str
    block_version: str = ""  # TR-31 key version number of the block it came in; "" if none


class NewKey(NamedTuple):
    """A key to put with `replace_atomically`."""

    key: bytes
    kind: str
    version: int
    block_version: str = ""


class KeyChange(NamedTuple):
    """What one `KeyStore.update` writes: keys to add or replace, names to remove (absent ones ignored)."""

    put: Mapping[str, NewKey | tuple[bytes, str, int]]
    remove: frozenset[str] = frozenset()


KeyChangeRule = Callable[[Mapping[str, KeyInfo]], KeyChange]


class KeyVersions(NamedTuple):
    """The highest local version a key name has had, and the last key block version it came in."""

    version: int
    block_version: str


def _aad(name: str, kind: str, version: int, kcv: str, block_version: str = "") -> bytes:
    fields: list[str | int] = [_FORMAT, name, kind, version, kcv]
    if block_version:  # entries without one keep the associated data they were sealed with
        fields.append(block_version)
    return json.dumps(fields, separators=(",", ":")).encode()


def _info(name: str, entry: Mapping[str, Any]) -> KeyInfo:
    return KeyInfo(name, entry["kind"], entry["version"], entry["kcv"], entry.get("block_version", ""))


class KeyStore:
    """Named keys wrapped under a device key, in `directory/keystore.json`."""

    def __init__(
        self,
        directory: Path,
        device_key: DeviceKey,
        rng: Rng = os.urandom,
        *,
        record: MonotonicRecord | None = None,
    ) -> None:
        self._path = Path(directory) / STORE_FILE_NAME
        self._device_key = device_key
        self._rng = rng
        record = record or MonotonicRecord.beside(Path(directory), device_key)
        self._guard = record.guard(STORE_RECORD_NAME, self._path)

    @property
    def path(self) -> Path:
        return self._path

    # ----- reading -------------------------------------------------------------------

    def _load(self, *, holding_lock: bool = False) -> dict[str, dict[str, Any]]:
        try:
            raw = read_bounded(self._path, MAX_KEY_FILE_BYTES)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise KeyStoreError(f"cannot read key store {self._path}: {exc.strerror}") from exc
        except MalformedFileError as exc:
            raise KeyStoreError(f"key store {self._path} is damaged: {exc}") from exc
        try:
            self._guard.verify(raw, holding_lock=holding_lock)
        except RolledBackError as exc:
            if raw is not None:  # an entry that fails authentication is named as such first
                for name, entry in self._parse(raw).items():
                    self._open_entry(name, entry)
            if holding_lock:
                raise KeyStoreError(str(exc)) from exc
            try:
                raw = self._guard.read(holding_lock=False)  # again, under the lock
            except RolledBackError as again:
                raise KeyStoreError(str(again)) from again
        except StoreError as exc:
            raise KeyStoreError(str(exc)) from exc
        return {} if raw is None else self._parse(raw)

    def _parse(self, raw: bytes) -> dict[str, dict[str, Any]]:
        try:
            document = load_json(raw, str(self._path))
        except MalformedFileError as exc:
            raise KeyStoreError(f"key store {self._path} is damaged: not valid JSON ({exc})") from exc
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise KeyStoreError(f"key store {self._path} is damaged: unknown format")
        owner = document.get("device_key_id")
        if owner != self._device_key.key_id:
            raise KeyStoreError(
                f"key store {self._path} was written under another device key "
                f"(store {owner}, this device {self._device_key.key_id}): wrong device key"
            )
        entries = document.get("keys")
        if not isinstance(entries, dict):
            raise KeyStoreError(f"key store {self._path} is damaged: field 'keys' missing")
        for name, entry in entries.items():
            self._check_entry_shape(name, entry)
        return entries

    def _check_entry_shape(self, name: str, entry: object) -> None:
        expected = {"kind": str, "version": int, "kcv": str, "nonce": str, "sealed": str}
        if not isinstance(entry, dict):
            raise KeyStoreError(f"key store {self._path} is damaged: entry {name!r} is not an object")
        for field, field_type in expected.items():
            if not isinstance(entry.get(field), field_type):
                raise KeyStoreError(f"key store {self._path} is damaged: entry {name!r} field {field!r}")
        if not isinstance(entry.get("block_version", ""), str):
            raise KeyStoreError(f"key store {self._path} is damaged: entry {name!r} field 'block_version'")

    def _open_entry(self, name: str, entry: Mapping[str, Any]) -> bytes:
        aad = _aad(name, entry["kind"], entry["version"], entry["kcv"], entry.get("block_version", ""))
        try:
            key = self._device_key.open(bytes.fromhex(entry["sealed"]), aad, bytes.fromhex(entry["nonce"]))
        except (ValueError, InvalidTag) as exc:
            raise KeyStoreError(
                f"key store {self._path}: entry {name!r} fails authentication (file tampered or damaged)"
            ) from exc
        try:
            kcv = kcv_for(entry["kind"], key).hex().upper()
        except CryptoError as exc:
            raise KeyStoreError(f"key store {self._path}: entry {name!r} is unusable: {exc}") from exc
        if kcv != entry["kcv"]:
            raise KeyStoreError(f"key store {self._path}: entry {name!r} does not match its check value")
        return key

    def get(self, name: str) -> bytes:
        """The clear key bytes of `name`; KeyStoreError if absent or damaged."""
        entries = self._load()
        entry = entries.get(name)
        if entry is None:
            raise KeyStoreError(f"no key named {name!r} in the key store")
        return self._open_entry(name, entry)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._load()

    def info(self, name: str) -> KeyInfo:
        """Name, kind, version and KCV of `name`, after checking the entry opens."""
        entries = self._load()
        entry = entries.get(name)
        if entry is None:
            raise KeyStoreError(f"no key named {name!r} in the key store")
        return self._checked_info(name, entry)

    def _checked_info(self, name: str, entry: Mapping[str, Any]) -> KeyInfo:
        self._open_entry(name, entry)
        return _info(name, entry)

    def kcv(self, name: str) -> str:
        return self.info(name).kcv

    def list(self) -> list[KeyInfo]:
        """Every key (sorted by name), each checked against the device key and its KCV."""
        entries = self._load()
        return [self._checked_info(name, entries[name]) for name in sorted(entries)]

    # ----- writing -------------------------------------------------------------------

    def _seal(self, name: str, new: NewKey) -> dict[str, Any]:
        if not _NAME.match(name):
            raise KeyStoreError(f"key name {name!r} is not allowed (A-Z, 0-9, _; starts with a letter)")
        if new.kind not in KEY_KINDS:
            raise KeyStoreError(f"key {name!r}: unknown kind {new.kind!r}")
        if isinstance(new.version, bool) or not isinstance(new.version, int) or new.version < 0:
            raise KeyStoreError(f"key {name!r}: version must be a non-negative integer")
        if new.block_version and not (len(new.block_version) == 2 and new.block_version.isalnum()):
            raise KeyStoreError(f"key {name!r}: key block version must be 2 letters or digits")
        try:
            kcv = kcv_for(new.kind, new.key).hex().upper()
        except CryptoError as exc:
            raise KeyStoreError(f"key {name!r}: {exc}") from exc
        nonce = self._rng(_NONCE_LENGTH)
        if len(nonce) != _NONCE_LENGTH:
            raise KeyStoreError("random source returned too few bytes for a nonce")
        aad = _aad(name, new.kind, new.version, kcv, new.block_version)
        sealed = self._device_key.seal(new.key, aad, nonce)
        entry: dict[str, Any] = {
            "kind": new.kind,
            "version": new.version,
            "kcv": kcv,
            "nonce": nonce.hex(),
            "sealed": sealed.hex(),
        }
        if new.block_version:
            entry["block_version"] = new.block_version
        return entry

    def _write(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        document = {"format": _FORMAT, "device_key_id": self._device_key.key_id, "keys": dict(entries)}
        facts: dict[str, object] = {}
        for name, entry in entries.items():
            facts[f"version.{name}"] = entry["version"]
            facts[f"block_version.{name}"] = entry.get("block_version") or None
        try:
            self._guard.write(json.dumps(document, sort_keys=True, indent=1).encode(), facts)
        except RolledBackError as exc:
            raise KeyStoreError(str(exc)) from exc

    def highest(self, name: str) -> KeyVersions | None:
        """The versions key `name` has had here (kept when it is removed); None if never stored."""
        try:
            facts = self._guard.facts()
        except StoreError as exc:
            raise KeyStoreError(str(exc)) from exc
        version = facts.get(f"version.{name}")
        if not isinstance(version, int):
            return None
        block_version = facts.get(f"block_version.{name}")
        return KeyVersions(version, block_version if isinstance(block_version, str) else "")

    def put(self, name: str, key_bytes: bytes, kind: str, version: int) -> KeyInfo:
        """Add or replace one key."""
        return self.replace_atomically({name: NewKey(key_bytes, kind, version)})[0]

    def replace_atomically(
        self, keys: Mapping[str, NewKey | tuple[bytes, str, int]]
    ) -> builtins.list[KeyInfo]:
        """Add or replace several keys in one file write: after a crash all or none are there."""
        if not keys:
            raise KeyStoreError("nothing to store: no keys given")
        return self.update(lambda current: KeyChange(keys))

    def update(self, rule: KeyChangeRule) -> builtins.list[KeyInfo]:
        """One read-modify-write under the store's inter-process lock, written all or nothing.

        `rule` gets the info of every key now in the store (each entry checked)
        and says what to put and remove; whatever it raises aborts the update
        with nothing written. Returns the infos of the keys put.
        """
        with locked(self._path):
            entries = dict(self._load(holding_lock=True))
            current = {name: self._checked_info(name, entry) for name, entry in entries.items()}
            change = rule(current)
            sealed = {name: self._seal(name, NewKey(*new)) for name, new in change.put.items()}
            removed = sorted(name for name in change.remove if name in entries and name not in sealed)
            if not sealed and not removed:
                return []
            for name in removed:
                del entries[name]
            entries.update(sealed)
            self._write(entries)
        infos = [_info(name, entry) for name, entry in sealed.items()]
        if infos:
            log.info("stored keys %s", ", ".join(f"{i.name} v{i.version} KCV {i.kcv}" for i in infos))
        if removed:
            log.info("removed keys %s", ", ".join(removed))
        return infos

    def remove(self, name: str) -> None:
        def remove_existing(current: Mapping[str, KeyInfo]) -> KeyChange:
            if name not in current:
                raise KeyStoreError(f"no key named {name!r} in the key store")
            return KeyChange({}, frozenset({name}))

        self.update(remove_existing)
