"""Image signing keys: the build machine's private key, the terminal's trusted public keys.

Build side. The signing key is an Ed25519 private key, as PEM (PKCS#8, what
`openssl genpkey -algorithm ed25519` writes) or as 64 hex digits (the raw
32-byte seed), read from a file or from an environment variable. Without
one, a development key is made on demand (`development_key`) and every image
it signs says so in its manifest.

Terminal side. DATA_DIR/update/trusted_keys.json:

    {"accept_development": false,
     "keys": [{"id": "<16 hex>", "public_key": "<64 hex>", "development": false, "name": "..."}]}

A key's id is the first 8 bytes of the SHA-256 of its raw public key, in hex.
A terminal with no such file trusts no key and refuses every image. A
production terminal (accept_development false) refuses an image whose key
is a development key, by the manifest's label or by its own record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from firmware.errors import ConfigError, CryptoError, MalformedFileError, StoreError
from firmware.store.atomic_file import locked, write_atomically
from firmware.store.json_guard import load_json

__all__ = [
    "TRUSTED_KEYS_FILE",
    "SigningKey",
    "TrustedKey",
    "TrustedKeys",
    "development_key",
    "development_key_path",
    "key_id",
    "load_trusted_keys",
    "public_key_bytes",
    "set_production",
    "signing_key_from_text",
    "trust_key",
    "trusted_keys_path",
]

TRUSTED_KEYS_FILE: Final = "trusted_keys.json"
_MAX_KEY_FILE = 64 << 10
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: bytes) -> str:
    return hashlib.sha256(public_key).digest()[:8].hex()


@dataclass(frozen=True)
class SigningKey:
    """A private key for signing images, and whether it is a development key."""

    private: Ed25519PrivateKey
    development: bool

    @property
    def id(self) -> str:
        return key_id(public_key_bytes(self.private))

    @property
    def public_hex(self) -> str:
        return public_key_bytes(self.private).hex()


def signing_key_from_text(text: bytes, origin: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in `text` (PEM or 64 hex digits). Raises CryptoError naming `origin`."""
    stripped = text.strip()
    if _HEX.fullmatch(stripped.decode("ascii", "replace")):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stripped.decode("ascii")))
    try:
        key = load_pem_private_key(stripped, password=None)
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"{origin}: not an Ed25519 private key (PEM or 64 hex digits)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CryptoError(f"{origin}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def development_key(path: Path) -> Ed25519PrivateKey:
    """The development key kept at `path`, made (0600) the first time it is asked for."""
    path = Path(path)
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            write_atomically(path, pem, exclusive=True)
        except StoreError:
            if not path.exists():  # another build made it at the same moment: use theirs
                raise
    with path.open("rb") as file:
        return signing_key_from_text(file.read(_MAX_KEY_FILE), str(path))


@dataclass(frozen=True)
class TrustedKey:
    id: str
    public_key: Ed25519PublicKey
    development: bool
    name: str


@dataclass(frozen=True)
class TrustedKeys:
    accept_development: bool
    keys: tuple[TrustedKey, ...]

    def find(self, wanted: str) -> TrustedKey | None:
        return next((key for key in self.keys if key.id == wanted), None)


def trusted_keys_path(data_dir: Path) -> Path:
    return Path(data_dir) / "update" / TRUSTED_KEYS_FILE


def _parse(raw: bytes, label: str) -> TrustedKeys:
    try:
        document = load_json(raw, label)
        accept = document["accept_development"]
        keys = []
        for entry in document["keys"]:
            public = bytes.fromhex(entry["public_key"])
            if len(public) != 32 or not isinstance(entry["development"], bool):
                raise ValueError
            name = str(entry.get("name", ""))
            public_key = Ed25519PublicKey.from_public_bytes(public)
            keys.append(TrustedKey(key_id(public), public_key, entry["development"], name))
        if not isinstance(accept, bool):
            raise ValueError
    except (MalformedFileError, ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{label}: not a list of trusted image keys") from None
    return TrustedKeys(accept, tuple(keys))


def load_trusted_keys(data_dir: Path) -> TrustedKeys:
    """The terminal's trusted image keys (none when the file does not exist). Raises ConfigError."""
    path = trusted_keys_path(data_dir)
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError:
        return TrustedKeys(False, ())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > _MAX_KEY_FILE:
        raise ConfigError(f"{path}: larger than {_MAX_KEY_FILE} bytes")
    return _parse(raw, str(path))


def _document(trusted: TrustedKeys) -> bytes:
    keys = [
        {
            "id": key.id,
            "public_key": public_key_bytes(key.public_key).hex(),
            "development": key.development,
            "name": key.name,
        }
        for key in trusted.keys
    ]
    text = json.dumps({"accept_development": trusted.accept_development, "keys": keys}, indent=2)
    return (text + "\n").encode("ascii")


def trust_key(data_dir: Path, public_key: bytes, *, development: bool, name: str = "") -> TrustedKeys:
    """Add `public_key` to the trusted keys (kept once). A development key turns on accept_development.

    A production key never turns it off: a terminal leaves development by
    `set_production`. Raises CryptoError for a key that is not 32 bytes.
    """
    if len(public_key) != 32:
        raise CryptoError(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    path = trusted_keys_path(data_dir)
    with locked(path):
        current = load_trusted_keys(data_dir)
        public = Ed25519PublicKey.from_public_bytes(public_key)
        new = TrustedKey(key_id(public_key), public, development, name)
        keys = (*(key for key in current.keys if key.id != new.id), new)
        trusted = TrustedKeys(current.accept_development or development, keys)
        write_atomically(path, _document(trusted))
    return trusted


def set_production(data_dir: Path) -> TrustedKeys:
    """Stop accepting development keys and forget them (a terminal going to a merchant)."""
    path = trusted_keys_path(data_dir)
    with locked(path):
        current = load_trusted_keys(data_dir)
        trusted = TrustedKeys(False, tuple(k for k in current.keys if not k.development))
        write_atomically(path, _document(trusted))
    return trusted


def development_key_path(root: Path) -> Path:
    """Where the build machine keeps its development key: var/image-dev-key.pem under the source tree."""
    return Path(root) / "var" / "image-dev-key.pem"
