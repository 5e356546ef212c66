"""Key check values: the only way a key is ever shown.

TDES: the key encrypts eight zero bytes, the leftmost bytes are the KCV
(X9.24-1, UnionPay's "checkvalue"). AES: CMAC of a block of zero bytes,
leftmost bytes (X9.24-1:2017, TR-31 / X9.143). An Ed25519 signing key has
no KCV in the standards; its check value here is the leftmost bytes of the
SHA-256 of its raw public key, so it can be compared with what the host has
registered.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.errors import CryptoError
from firmware.keys.blockcipher import AES_BLOCK, DES_BLOCK, cmac_aes, tdes_encrypt_ecb

__all__ = [
    "KEY_KINDS",
    "KIND_AES",
    "KIND_ED25519",
    "KIND_TDES",
    "kcv_aes",
    "kcv_ed25519",
    "kcv_for",
    "kcv_hex",
    "kcv_tdes",
]

KIND_TDES = "tdes"
KIND_AES = "aes"
KIND_ED25519 = "ed25519"
KEY_KINDS = (KIND_TDES, KIND_AES, KIND_ED25519)


def _check_length(length: int, limit: int) -> None:
    if not 1 <= length <= limit:
        raise CryptoError(f"KCV length must be 1..{limit} bytes, got {length}")


def kcv_tdes(key: bytes, length: int = 3) -> bytes:
    """First `length` bytes of E(key, 00..00); 8, 16 or 24-byte DES keys."""
    _check_length(length, DES_BLOCK)
    return tdes_encrypt_ecb(key, bytes(DES_BLOCK))[:length]


def kcv_aes(key: bytes, length: int = 3) -> bytes:
    """First `length` bytes of CMAC(key, 16 zero bytes)."""
    _check_length(length, AES_BLOCK)
    return cmac_aes(key, bytes(AES_BLOCK))[:length]


def kcv_ed25519(private_key: bytes, length: int = 3) -> bytes:
    """First `length` bytes of SHA-256 of the raw public key of a raw 32-byte Ed25519 private key."""
    _check_length(length, 32)
    if len(private_key) != 32:
        raise CryptoError(f"Ed25519 private key must be 32 bytes, got {len(private_key)}")
    public = Ed25519PrivateKey.from_private_bytes(private_key).public_key()
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:length]


def kcv_for(kind: str, key: bytes, length: int = 3) -> bytes:
    """The check value of a key of the given kind (one of KEY_KINDS)."""
    if kind == KIND_TDES:
        return kcv_tdes(key, length)
    if kind == KIND_AES:
        return kcv_aes(key, length)
    if kind == KIND_ED25519:
        return kcv_ed25519(key, length)
    raise CryptoError(f"unknown key kind {kind!r} (expected one of {', '.join(KEY_KINDS)})")


def kcv_hex(kind: str, key: bytes, length: int = 3) -> str:
    return kcv_for(kind, key, length).hex().upper()
