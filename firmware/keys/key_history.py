"""The working-key sets installed before: a sign-on answer that brings one again is a replay.

The 0810 sign-on answer carries no MAC: someone on the line who kept an old
answer can send it back with the new request's STAN, and its field 62 (whose
check values are right under the TMK) would put back an earlier session's
PIK and MAK. The terminal therefore keeps the fingerprint of each working-key
set it installed (the 8-byte check values of its keys, by name) and refuses a
set it has seen, or a single key it has seen, among the last `KEPT_SETS`.

One small file (`DIR/working_key_history.json`, mode 0600) sealed under the
device key (AES-256-GCM): an edited file is refused (KeyStoreError), never
read as "no history". Its read-modify-write runs inside the key store's
update, under the key store's lock, and is written before the new keys are:
after a crash in between, the set counts as used and a new sign-on is needed.
Deleting the file (or putting back an old copy) forgets the history; that is
the anti-rollback record's part.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag

from firmware.errors import KeyStoreError, MalformedFileError, VerificationError
from firmware.keys.device import DeviceKey, sealed_document
from firmware.keys.kcv import KIND_TDES, kcv_for
from firmware.randomness import Rng
from firmware.store.atomic_file import write_atomically
from firmware.store.json_guard import load_json, read_bounded

__all__ = ["HISTORY_FILE_NAME", "KEPT_SETS", "WorkingKeyHistory", "key_fingerprint"]

HISTORY_FILE_NAME: Final = "working_key_history.json"
KEPT_SETS: Final = 64
_FORMAT: Final = "pos-working-key-history-1"
_MAX_FILE_BYTES: Final = 256 * 1024
_FIELDS: Final = frozenset({"format", "device_key_id", "nonce", "sealed"})


def key_fingerprint(key: bytes) -> str:
    """A key's full 8-byte TDES check value, as hex: what the history keeps of it."""
    return kcv_for(KIND_TDES, key, 8).hex().upper()


class WorkingKeyHistory:
    """The fingerprints of the working-key sets installed on this terminal, newest last."""

    def __init__(self, directory: Path, device_key: DeviceKey, rng: Rng = os.urandom) -> None:
        self._path = Path(directory) / HISTORY_FILE_NAME
        self._device_key = device_key
        self._rng = rng

    @property
    def path(self) -> Path:
        return self._path

    def _aad(self) -> bytes:
        return f"{_FORMAT}\x00{self._device_key.key_id}".encode("ascii")

    def _load(self) -> list[dict[str, str]]:
        try:
            raw = read_bounded(self._path, _MAX_FILE_BYTES)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreError(f"cannot read {self._path}: {exc.strerror}") from exc
        except MalformedFileError as exc:
            raise KeyStoreError(f"{self._path} is damaged: {exc}") from exc
        try:
            document = load_json(raw, str(self._path))
            if not isinstance(document, dict) or set(document) != _FIELDS or document["format"] != _FORMAT:
                raise KeyStoreError(f"{self._path} is damaged: unknown format")
            if document["device_key_id"] != self._device_key.key_id:
                raise KeyStoreError(f"{self._path} was sealed under another device key")
            plain = self._device_key.open(
                bytes.fromhex(document["sealed"]), self._aad(), bytes.fromhex(document["nonce"])
            )
            sets = load_json(plain, str(self._path))["sets"]
        except (MalformedFileError, KeyError, TypeError, ValueError, InvalidTag) as exc:
            raise KeyStoreError(f"{self._path} fails authentication (file tampered or damaged)") from exc
        if not isinstance(sets, list) or not all(
            isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values()) for entry in sets
        ):
            raise KeyStoreError(f"{self._path} is damaged: field 'sets'")
        return sets

    def _save(self, sets: list[dict[str, str]]) -> None:
        plain = json.dumps({"sets": sets}, sort_keys=True).encode()
        document = sealed_document(self._device_key, self._rng, _FORMAT, plain, self._aad())
        write_atomically(self._path, json.dumps(document, sort_keys=True, indent=1).encode())

    def record_new_set(self, keys: Mapping[str, bytes]) -> None:
        """Add this set, or raise VerificationError if it (or one of its keys) was installed before.

        Call it under the key store's lock (inside `KeyStore.update`), before the keys are written.
        """
        fingerprints = {name: key_fingerprint(key) for name, key in keys.items()}
        sets = self._load()
        seen = {value for entry in sets for value in entry.values()}
        reused = sorted(name for name, value in fingerprints.items() if value in seen)
        if reused:
            raise VerificationError(
                f"sign-on answer brings back working key(s) {', '.join(reused)} of an earlier session "
                "(a replayed answer?): keeping the current working keys"
            )
        self._save([*sets, fingerprints][-KEPT_SETS:])
