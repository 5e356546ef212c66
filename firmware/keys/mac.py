"""Message MACs for ISO 8583 field 64, one function per host profile.

- UnionPay ECB MAC (中国银联 POS 终端规范): XOR the 8-byte blocks of the MAC
  block (zero-padded), expand the result to 16 uppercase hex characters,
  encrypt the first 8 with the MAK, XOR with the last 8, encrypt again,
  expand to hex and keep the first 8 characters. The MAC field carries
  those 8 ASCII characters. MAK single (DES) or double length (TDES).
- ANSI X9.19 retail MAC = ISO/IEC 9797-1 MAC algorithm 3 with padding
  method 1: single-DES CBC-MAC under the left key half, then decrypt under
  the right half and encrypt under the left half. 16-byte key.
- AES-CMAC (NIST SP 800-38B, RFC 4493); the field carries its leftmost 8 bytes.

The host profile names the algorithm (`MacProfile`); an unknown name is a
ConfigError. Every MAC on the wire is `MAC_LENGTH` bytes. `verify_mac`
raises VerificationError when the MAC does not verify.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Final

from firmware.errors import ConfigError, CryptoError, VerificationError
from firmware.keys.blockcipher import (
    DES_BLOCK,
    cmac_aes,
    tdes_decrypt_ecb,
    tdes_encrypt_cbc,
    tdes_encrypt_ecb,
    xor,
)

__all__ = [
    "MAC_LENGTH",
    "MacProfile",
    "aes_cmac",
    "compute_mac",
    "retail_mac_x919",
    "unionpay_ecb_mac",
    "verify_mac",
]

MAC_LENGTH: Final = 8  # bytes of field 64 (or 128), whatever the profile


class MacProfile(StrEnum):
    """The MAC algorithm of a host profile, by the name configuration files use."""

    UNIONPAY_ECB = "unionpay-ecb"
    X919 = "x9.19"
    AES_CMAC = "aes-cmac"


def _pad_zero(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 1; empty data becomes one zero block."""
    if not data:
        return bytes(DES_BLOCK)
    return data + bytes(-len(data) % DES_BLOCK)


def unionpay_ecb_mac(key: bytes, data: bytes) -> bytes:
    """The 8 ASCII hex characters UnionPay puts in field 64."""
    if len(key) not in (8, 16):
        raise CryptoError(f"UnionPay MAK must be 8 or 16 bytes, got {len(key)}")
    padded = _pad_zero(data)
    folded = 0
    for offset in range(0, len(padded), DES_BLOCK):
        folded ^= int.from_bytes(padded[offset : offset + DES_BLOCK], "big")
    expanded = folded.to_bytes(DES_BLOCK, "big").hex().upper().encode("ascii")
    first = tdes_encrypt_ecb(key, expanded[:DES_BLOCK])
    second = tdes_encrypt_ecb(key, xor(first, expanded[DES_BLOCK:]))
    return second.hex().upper().encode("ascii")[:MAC_LENGTH]


def retail_mac_x919(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 / ISO 9797-1 algorithm 3, padding 1: 8 bytes."""
    if len(key) != 16:
        raise CryptoError(f"X9.19 MAC key must be 16 bytes, got {len(key)}")
    left, right = key[:DES_BLOCK], key[DES_BLOCK:]
    chained = tdes_encrypt_cbc(left, bytes(DES_BLOCK), _pad_zero(data))[-DES_BLOCK:]
    return tdes_encrypt_ecb(left, tdes_decrypt_ecb(right, chained))


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC, all 16 bytes."""
    return cmac_aes(key, data)


def compute_mac(profile: MacProfile, key: bytes, data: bytes) -> bytes:
    """The 8-byte field-64 value for `data` under the host profile's MAC algorithm."""
    if profile == MacProfile.UNIONPAY_ECB:
        return unionpay_ecb_mac(key, data)
    if profile == MacProfile.X919:
        return retail_mac_x919(key, data)
    if profile == MacProfile.AES_CMAC:
        return aes_cmac(key, data)[:MAC_LENGTH]
    raise ConfigError(f"unknown MAC profile {profile!r} (expected one of {', '.join(MacProfile)})")


def verify_mac(profile: MacProfile, key: bytes, data: bytes, mac: bytes) -> None:
    """Raise VerificationError unless `mac` is the profile's MAC of `data` (constant-time compare)."""
    expected = compute_mac(profile, key, data)
    if not hmac.compare_digest(expected, bytes(mac)):
        raise VerificationError(f"MAC does not verify (profile {profile})")
