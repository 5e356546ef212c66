"""Certification Authority public keys (EMV Book 2 section 11.2) and their revocation list.

The keys live in a JSON file (`firmware/data/capk.json`). Each entry carries
RID, index, modulus, exponent, hash and key algorithm indicators, the SHA-1
checksum over RID || index || modulus || exponent, and the terminal-side
withdrawal date. The checksum is recomputed when the file is loaded: a key
whose checksum does not match is refused with a ConfigError that names the
file, the entry and the key's RID and index, so a mistyped modulus never
reaches a transaction. The file is read through `firmware.config` like every
configuration file: the shipped one, or the one at a path the caller gives.

The revocation list holds (RID, CA index, certificate serial number) triples
of issuer public key certificates the terminal must no longer accept
(Book 2 section 5.3 step 10).

    store = load_capk_store()                      # the shipped file
    key = store.get(rid, index, today)             # None: missing or withdrawn
    store.is_revoked(rid, index, serial)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

from firmware.config import Section, read_config
from firmware.errors import ConfigError

__all__ = [
    "CAPK_FILE",
    "CAPK_FORMAT",
    "HASH_SHA1",
    "KEY_RSA",
    "CaPublicKey",
    "CapkStore",
    "Revocation",
    "capk_checksum",
    "capk_store_from_section",
    "load_capk_store",
    "parse_capk_document",
]

CAPK_FILE: Final = "capk.json"
CAPK_FORMAT: Final = "capk/1"

HASH_SHA1 = 0x01
KEY_RSA = 0x01
_RID_LENGTH = 5
_SERIAL_LENGTH = 3
_MIN_MODULUS = 64  # 512 bits
_MAX_MODULUS = 248  # 1984 bits, the largest a short READ RECORD can carry
_ALLOWED_EXPONENTS = (b"\x03", b"\x01\x00\x01")
_KEY_FIELDS: Final = (
    "rid",
    "index",
    "modulus",
    "exponent",
    "bits",
    "expiry",
    "hash_algorithm",
    "key_algorithm",
    "checksum",
    "scheme",
    "kind",
    "source",
)


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


def _parse_key(entry: Section) -> CaPublicKey:
    entry.only(*_KEY_FIELDS)
    modulus = entry.binary("modulus")
    if entry.has("bits") and entry.integer("bits") != len(modulus) * 8:
        raise entry.error("bits", f"says {entry.integer('bits')} but the modulus has {len(modulus) * 8}")
    key = CaPublicKey(
        rid=entry.binary("rid", length=_RID_LENGTH),
        index=entry.binary("index", length=1)[0],
        modulus=modulus,
        exponent=entry.binary("exponent"),
        expiry=entry.day("expiry"),
        hash_algorithm=entry.binary("hash_algorithm", length=1)[0],
        key_algorithm=entry.binary("key_algorithm", length=1)[0],
        checksum=entry.binary("checksum", length=20),
        scheme=entry.text("scheme", default=""),
        kind=entry.text("kind", default=""),
        source=entry.text("source", default=""),
    )
    try:
        _check_key(key)
    except ConfigError as error:
        raise ConfigError(f"{entry.where()}: {error}") from None
    return key


def _parse_revocation(entry: Section) -> Revocation:
    entry.only("rid", "index", "serial", "note")
    return Revocation(
        rid=entry.binary("rid", length=_RID_LENGTH),
        index=entry.binary("index", length=1)[0],
        serial=entry.binary("serial", length=_SERIAL_LENGTH),
        note=entry.text("note", default=""),
    )


def capk_store_from_section(section: Section) -> CapkStore:
    """A store from the CA public key file; every key checked, bad ones refused."""
    section.only("format", "about", "keys", "revocations")
    if section.text("format") != CAPK_FORMAT:
        raise section.error("format", f"{section.text('format')!r} is not {CAPK_FORMAT!r}")
    keys = [_parse_key(entry) for entry in section.sections("keys")]
    revocations = [_parse_revocation(entry) for entry in section.sections("revocations", default=[])]
    try:
        return CapkStore.of(keys, revocations)
    except ConfigError as error:  # a key listed twice
        raise ConfigError(f"{section.where('keys')}: {error}") from None


def parse_capk_document(document: object, file: str = CAPK_FILE) -> CapkStore:
    """A store from the decoded JSON document read from `file`."""
    return capk_store_from_section(Section.of(document, file))


def load_capk_store(path: Path | str | None = None) -> CapkStore:
    """Read and check a CA public key file: the one at `path`, or the shipped `firmware/data/capk.json`."""
    return capk_store_from_section(read_config(CAPK_FILE, path))
