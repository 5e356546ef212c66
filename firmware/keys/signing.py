"""Record signing with the device's Ed25519 key (queue records, notices).

Canonical form of a record (what is signed, and what a verifier must rebuild):
the record without its "signature" field, as JSON with keys sorted, no
whitespace (separators "," and ":"), non-ASCII characters kept as UTF-8,
no NaN or infinity. The signature is the 64-byte Ed25519 signature of that
UTF-8 text, stored as lowercase hex in the record's "signature" field.

The host verifies with the raw 32-byte public key registered at provisioning
(`RecordSigner.public_key_bytes()`, printed by `pos-keys public-key`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from firmware.errors import CryptoError, TamperedRecordError
from firmware.randomness import Rng

__all__ = [
    "RECORD_ID_FIELD",
    "SIGNATURE_FIELD",
    "SIGNING_KEY_NAME",
    "RecordSigner",
    "canonical_json",
    "load_public_key",
    "new_signing_key",
    "private_key_bytes",
    "private_key_from_bytes",
    "verify_record",
]

log = logging.getLogger(__name__)

SIGNATURE_FIELD = "signature"
RECORD_ID_FIELD = "id"
SIGNING_KEY_NAME = "SIGNING"


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The signed bytes of `record` (its signature field left out)."""
    body = {key: value for key, value in record.items() if key != SIGNATURE_FIELD}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # A lone surrogate ("\ud800", valid in JSON text) has no UTF-8 form: UnicodeEncodeError.
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise CryptoError(f"record cannot be serialised canonically: {exc}") from exc


def new_signing_key(rng: Rng) -> Ed25519PrivateKey:
    seed = rng(32)
    if len(seed) != 32:
        raise CryptoError("random source returned too few bytes for an Ed25519 key")
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_from_bytes(raw: bytes) -> Ed25519PrivateKey:
    if len(raw) != 32:
        raise CryptoError(f"Ed25519 private key must be 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def load_public_key(raw: bytes) -> Ed25519PublicKey:
    """A verifying key from the raw 32 bytes the device registered."""
    if len(raw) != 32:
        raise CryptoError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise CryptoError(f"not an Ed25519 public key: {exc}") from exc


def _record_id(record: Mapping[str, Any]) -> str:
    return repr(record.get(RECORD_ID_FIELD, "<no id>"))


class RecordSigner:
    """Signs records with the device's Ed25519 private key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def public_key_bytes(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign_bytes(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def sign_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `record` with its signature field added."""
        if SIGNATURE_FIELD in record:
            raise CryptoError(f"record {_record_id(record)} is already signed")
        signed = dict(record)
        signed[SIGNATURE_FIELD] = self._key.sign(canonical_json(record)).hex()
        return signed

    def __repr__(self) -> str:
        return f"RecordSigner(public_key={self.public_key_bytes().hex()})"


def verify_record(record: Mapping[str, Any], public_key: Ed25519PublicKey) -> None:
    """Raise TamperedRecordError (naming the record id) unless the record's signature verifies."""
    signature_hex = record.get(SIGNATURE_FIELD)
    if not isinstance(signature_hex, str):
        raise TamperedRecordError(f"record {_record_id(record)} carries no signature")
    try:
        signature = bytes.fromhex(signature_hex)
        public_key.verify(signature, canonical_json(record))
    except (ValueError, InvalidSignature, CryptoError) as exc:
        log.warning("record %s fails its signature check", _record_id(record))
        raise TamperedRecordError(
            f"record {_record_id(record)} fails its signature check (altered, or signed by another device)"
        ) from exc
