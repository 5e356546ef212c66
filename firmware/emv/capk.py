"""Certification Authority public keys (EMV Book 2 section 11.2) and their revocation list.

The keys live in a JSON file (`firmware/data/capk.json`). Each entry carries
RID, index, modulus, exponent, hash and key algorithm indicators, the SHA-1
checksum over RID || index || modulus || exponent, and the terminal-side
withdrawal date. The checksum is recomputed when the file is loaded: a key
whose checksum does not match is refused with a ConfigError that names the
RID and index, so a mistyped modulus never reaches a transaction.

The revocation list holds (RID, CA index, certificate serial number) triples
of issuer public key certificates the terminal must no longer accept
(Book 2 section 5.3 step 10).

    store = load_capk_store()                      # the shipped file
    key = store.get(rid, index, today)             # None: missing or withdrawn
    store.is_revoked(rid, index, serial)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from firmware.errors import ConfigError

__all__ = [
    "DEFAULT_CAPK_PATH",
    "HASH_SHA1",
    "KEY_RSA",
    "CaPublicKey",
    "CapkStore",
    "Revocation",
    "capk_checksum",
    "load_capk_store",
    "parse_capk_document",
]

DEFAULT_CAPK_PATH = Path(__file__).resolve().parent.parent / "data" / "capk.json"

HASH_SHA1 = 0x01
KEY_RSA = 0x01
_RID_LENGTH = 5
_SERIAL_LENGTH = 3
_MIN_MODULUS = 64  # 512 bits
_MAX_MODULUS = 248  # 1984 bits, the largest a short READ RECORD can carry
_ALLOWED_EXPONENTS = (b"\x03", b"\x01\x00\x01")


def capk_checksum(rid: bytes, index: int, modulus: bytes, exponent: bytes) -> bytes:
    """SHA-1 over RID || index || modulus || exponent (Book 2 section 11.2.2)."""
    return hashlib.sha1(rid + bytes([index]) + modulus + exponent, usedforsecurity=False).digest()


@dataclass(frozen=True)
class CaPublicKey:
    rid: bytes
    index: int
    modulus: bytes
    exponent: bytes
    expiry: date
    hash_algorithm: int = HASH_SHA1
    key_algorithm: int = KEY_RSA
    checksum: bytes = b""
    scheme: str = ""
    kind: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return f"RID {self.rid.hex().upper()} index {self.index:02X}"

    @property
    def length(self) -> int:
        """N_CA, the modulus length in bytes."""
        return len(self.modulus)

    def checksum_matches(self) -> bool:
        return capk_checksum(self.rid, self.index, self.modulus, self.exponent) == self.checksum

    def in_force(self, today: date) -> bool:
        return today <= self.expiry


@dataclass(frozen=True)
class Revocation:
    rid: bytes
    index: int
    serial: bytes
    note: str = ""


@dataclass(frozen=True)
class CapkStore:
    """Keys by (RID, index), plus the revocation list. Built only from checked keys."""

    keys: Mapping[tuple[bytes, int], CaPublicKey]
    revocations: frozenset[tuple[bytes, int, bytes]] = field(default_factory=frozenset)

    @classmethod
    def of(cls, keys: Iterable[CaPublicKey], revocations: Iterable[Revocation] = ()) -> CapkStore:
        """A store of `keys`, each checked (checksum, lengths, algorithms) like a loaded file."""
        table: dict[tuple[bytes, int], CaPublicKey] = {}
        for key in keys:
            _check_key(key)
            if (key.rid, key.index) in table:
                raise ConfigError(f"CA public key {key.name} is listed twice")
            table[(key.rid, key.index)] = key
        revoked = frozenset((r.rid, r.index, r.serial) for r in revocations)
        return cls(keys=table, revocations=revoked)

    def get(self, rid: bytes, index: int, today: date | None = None) -> CaPublicKey | None:
        """The key, or None when it is not held or (given `today`) past its withdrawal date."""
        key = self.keys.get((bytes(rid), index))
        if key is None or (today is not None and not key.in_force(today)):
            return None
        return key

    def is_revoked(self, rid: bytes, index: int, serial: bytes) -> bool:
        return (bytes(rid), index, bytes(serial)) in self.revocations

    def __len__(self) -> int:
        return len(self.keys)


def _check_key(key: CaPublicKey) -> None:
    where = f"CA public key {key.rid.hex().upper()}/{key.index:02X}"
    if len(key.rid) != _RID_LENGTH:
        raise ConfigError(f"{where}: RID must be {_RID_LENGTH} bytes")
    if not 0 <= key.index <= 0xFF:
        raise ConfigError(f"{where}: index must be one byte")
    if not _MIN_MODULUS <= len(key.modulus) <= _MAX_MODULUS or key.modulus[0] == 0:
        raise ConfigError(f"{where}: modulus of {len(key.modulus)} bytes is not a valid CA key length")
    if key.exponent not in _ALLOWED_EXPONENTS:
        raise ConfigError(f"{where}: exponent {key.exponent.hex().upper()} is not 03 or 010001")
    if key.hash_algorithm != HASH_SHA1:
        raise ConfigError(f"{where}: hash algorithm {key.hash_algorithm:02X} is not 01 (SHA-1)")
    if key.key_algorithm != KEY_RSA:
        raise ConfigError(f"{where}: key algorithm {key.key_algorithm:02X} is not 01 (RSA)")
    if not key.checksum_matches():
        raise ConfigError(
            f"{where}: checksum {key.checksum.hex().upper()} does not match SHA-1 of "
            "RID || index || modulus || exponent; the key is refused"
        )


def _hex_field(entry: Mapping[str, object], name: str, where: str, length: int | None = None) -> bytes:
    value = entry.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: field '{name}' missing or not a hex string")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{where}: field '{name}' is not hex") from None
    if length is not None and len(data) != length:
        raise ConfigError(f"{where}: field '{name}' must be {length} bytes, got {len(data)}")
    return data


def _text_field(entry: Mapping[str, object], name: str) -> str:
    value = entry.get(name, "")
    return value if isinstance(value, str) else ""


def _date_field(entry: Mapping[str, object], name: str, where: str) -> date:
    value = entry.get(name)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: field '{name}' missing (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{where}: field '{name}' is not a YYYY-MM-DD date: {value!r}") from None


def _parse_key(entry: object, position: int) -> CaPublicKey:
    if not isinstance(entry, dict):
        raise ConfigError(f"capk keys[{position}] is not an object")
    where = f"capk keys[{position}]"
    rid = _hex_field(entry, "rid", where, _RID_LENGTH)
    index = _hex_field(entry, "index", where, 1)[0]
    where = f"CA public key {rid.hex().upper()}/{index:02X}"
    modulus = _hex_field(entry, "modulus", where)
    bits = entry.get("bits")
    if bits is not None and bits != len(modulus) * 8:
        raise ConfigError(f"{where}: 'bits' says {bits} but the modulus has {len(modulus) * 8}")
    return CaPublicKey(
        rid=rid,
        index=index,
        modulus=modulus,
        exponent=_hex_field(entry, "exponent", where),
        expiry=_date_field(entry, "expiry", where),
        hash_algorithm=_hex_field(entry, "hash_algorithm", where, 1)[0],
        key_algorithm=_hex_field(entry, "key_algorithm", where, 1)[0],
        checksum=_hex_field(entry, "checksum", where, 20),
        scheme=_text_field(entry, "scheme"),
        kind=_text_field(entry, "kind"),
        source=_text_field(entry, "source"),
    )


def _parse_revocation(entry: object, position: int) -> Revocation:
    if not isinstance(entry, dict):
        raise ConfigError(f"capk revocations[{position}] is not an object")
    where = f"capk revocations[{position}]"
    return Revocation(
        rid=_hex_field(entry, "rid", where, _RID_LENGTH),
        index=_hex_field(entry, "index", where, 1)[0],
        serial=_hex_field(entry, "serial", where, _SERIAL_LENGTH),
        note=_text_field(entry, "note"),
    )


def parse_capk_document(document: object) -> CapkStore:
    """A store from the decoded JSON document; every key checked, bad ones refused."""
    if not isinstance(document, dict):
        raise ConfigError("capk document is not a JSON object")
    if document.get("format") != "capk/1":
        raise ConfigError(f"capk document format {document.get('format')!r} is not 'capk/1'")
    keys = document.get("keys")
    revocations = document.get("revocations", [])
    if not isinstance(keys, list) or not isinstance(revocations, list):
        raise ConfigError("capk document needs a 'keys' list (and 'revocations', if any, a list)")
    return CapkStore.of(
        (_parse_key(entry, i) for i, entry in enumerate(keys)),
        (_parse_revocation(entry, i) for i, entry in enumerate(revocations)),
    )


def load_capk_store(path: Path | str = DEFAULT_CAPK_PATH) -> CapkStore:
    """Read and check a CA public key file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read CA public key file {path}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"CA public key file {path}: bad JSON at line {error.lineno}") from None
    return parse_capk_document(document)
