"""The device key: the one AES-256 key that wraps every other key at rest.

On a production terminal it would live in the secure element; here it is a
small file (mode 0600) whose path the composition root chooses, so it can sit
on another partition than the key store it protects.

File format: 8-byte magic `POS-DK1\\0` followed by the 32 key bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firmware.errors import KeyStoreError, MalformedFileError
from firmware.randomness import Rng
from firmware.store.atomic_file import write_atomically
from firmware.store.json_guard import read_bounded

__all__ = [
    "DEVICE_KEY_LENGTH",
    "SEALED_NONCE_LENGTH",
    "DeviceKey",
    "load_device_key",
    "provision_device_key",
    "sealed_document",
]

DEVICE_KEY_LENGTH = 32
SEALED_NONCE_LENGTH = 12
_MAGIC = b"POS-DK1\x00"


class DeviceKey:
    """Holds the device key; seals and opens data with AES-256-GCM."""

    __slots__ = ("_aead", "_key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != DEVICE_KEY_LENGTH:
            raise KeyStoreError(f"device key must be {DEVICE_KEY_LENGTH} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        # A short, one-way identifier so a store can say "written under another device key".
        self._key_id = hashlib.sha256(b"pos device key id\x00" + key).hexdigest()[:8].upper()

    @property
    def key_id(self) -> str:
        return self._key_id

    def seal(self, plaintext: bytes, aad: bytes, nonce: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes, nonce: bytes) -> bytes:
        """Raises cryptography's InvalidTag when the data or its metadata were altered."""
        return self._aead.decrypt(nonce, sealed, aad)

    def __repr__(self) -> str:
        return f"DeviceKey(id={self._key_id})"


def load_device_key(path: Path) -> DeviceKey:
    """Read the device key file; a missing or malformed file is a KeyStoreError saying what to do."""
    try:
        raw = read_bounded(path, len(_MAGIC) + DEVICE_KEY_LENGTH)
    except MalformedFileError as exc:
        raise KeyStoreError(f"device key file {path} is damaged (wrong size or header)") from exc
    except FileNotFoundError as exc:
        raise KeyStoreError(
            f"device key not found at {path}: this terminal is not provisioned (run `pos-keys provision`)"
        ) from exc
    except OSError as exc:
        raise KeyStoreError(f"cannot read device key {path}: {exc.strerror}") from exc
    if len(raw) != len(_MAGIC) + DEVICE_KEY_LENGTH or not raw.startswith(_MAGIC):
        raise KeyStoreError(f"device key file {path} is damaged (wrong size or header)")
    return DeviceKey(raw[len(_MAGIC) :])


def provision_device_key(path: Path, rng: Rng) -> DeviceKey:
    """Create a new random device key at `path`; refuses to overwrite an existing one."""
    if path.exists():
        raise KeyStoreError(f"device key already exists at {path}; refusing to overwrite it")
    key = rng(DEVICE_KEY_LENGTH)
    if len(key) != DEVICE_KEY_LENGTH:
        raise KeyStoreError("random source returned too few bytes for the device key")
    write_atomically(path, _MAGIC + key, exclusive=True)
    return DeviceKey(key)


def sealed_document(
    device_key: DeviceKey, rng: Rng, file_format: str, plain: bytes, aad: bytes
) -> dict[str, str]:
    """A whole file's content sealed under the device key: its format, the key's id, a fresh nonce, the
    sealed bytes (the sealed password and key-history files)."""
    nonce = rng(SEALED_NONCE_LENGTH)
    if len(nonce) != SEALED_NONCE_LENGTH:
        raise KeyStoreError("random source returned too few bytes for a nonce")
    return {
        "format": file_format,
        "device_key_id": device_key.key_id,
        "nonce": nonce.hex(),
        "sealed": device_key.seal(plain, aad, nonce).hex(),
    }
