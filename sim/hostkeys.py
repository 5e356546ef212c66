"""The simulated acquirer's own key handling and MACs (never shared with the terminal).

Written apart from `firmware/keys` on purpose: the host and the terminal must
agree on the wire, so a mistake on one side shows up as a failed MAC or KCV
instead of hiding on both. The DES primitives, padding and retail MAC are the
ones in `sim/emvcrypto.py` (the simulated side shares them with itself).

- Working keys (PIK, MAK, TDK) are random DES keys with odd parity, sent to the
  terminal in field 62 encrypted under its TMK (TDES ECB), each followed by a
  4-byte check value (the key encrypts eight zero bytes). Layouts by the
  network management code of field 60.3: ``001`` single-length PIK + MAK (24
  bytes), ``003`` double-length PIK + single-length MAK padded with 8 zero bytes
  (40 bytes), ``004`` as 003 plus a double-length TDK (60 bytes). A host whose
  MAC profile needs a 16-byte MAK (X9.19, AES-CMAC) puts the 16 encrypted bytes
  where 003/004 otherwise put the 8 + 8 zero bytes; its check value follows
  the same DES rule (field 62 is a TDES structure even when the key is AES).
- MACs over the MAC block (message type up to the end of field 63), 8 bytes,
  by `MacProfile`: ``unionpay-ecb`` (XOR of the 8-byte blocks, hex-expanded,
  two encryptions; the MAC is the first 8 hex characters), ``x9.19`` (ISO
  9797-1 algorithm 3, zero padding) and ``aes-cmac`` (NIST SP 800-38B,
  leftmost 8 bytes). `verify_mac` raises MacMismatchError when a MAC does not
  verify.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from sim.emvcrypto import (
    adjust_parity,
    key_check_value,
    pad_iso9797_method1,
    retail_mac,
    tdes_encrypt_ecb,
    xor,
)
from sim.errors import MacMismatchError
from sim.randomness import Rng

__all__ = [
    "KEY_SCHEMES",
    "IssuedKeys",
    "MacProfile",
    "aes_cmac_mac",
    "check_value",
    "compute_mac",
    "issue_working_keys",
    "make_des_key",
    "unionpay_ecb_mac",
    "verify_mac",
    "x919_mac",
]

_BLOCK: Final = 8
KEY_SCHEMES: Final = ("001", "003", "004")



class MacProfile(StrEnum):
    """The MAC algorithm of a terminal's host profile, by the name the terminal table uses."""

    UNIONPAY_ECB = "unionpay-ecb"
    X919 = "x9.19"
    AES_CMAC = "aes-cmac"


def _aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def check_value(key: bytes, length: int = 4, *, aes: bool = False) -> bytes:
    """KCV: DES keys encrypt 8 zero bytes; AES keys CMAC 16 zero bytes. Leftmost `length` bytes."""
    if aes:
        return _aes_cmac(key, bytes(16))[:length]
    return key_check_value(key, length)


def make_des_key(length: int, token_bytes: Rng) -> bytes:
    """A random DES key of 8 or 16 bytes with odd parity; the halves of a 16-byte key differ."""
    while True:
        key = adjust_parity(token_bytes(length))
        if length == 8 or key[:8] != key[8:]:
            return key


@dataclass(frozen=True)
class IssuedKeys:
    """Fresh working keys for one sign-on: clear values for the host, field 62 for the terminal."""

    scheme: str
    pik: bytes
    mak: bytes
    tdk: bytes | None
    field62: bytes

    def __repr__(self) -> str:
        kcvs = {"PIK": self.pik, "MAK": self.mak} | ({"TDK": self.tdk} if self.tdk else {})
        shown = ", ".join(f"{name} KCV {check_value(key).hex().upper()}" for name, key in kcvs.items())
        return f"IssuedKeys({self.scheme}: {shown})"


def issue_working_keys(
    tmk: bytes,
    scheme: str,
    token_bytes: Rng,
    *,
    mak_length: int = 8,
    aes_mak: bool = False,
) -> IssuedKeys:
    """New PIK/MAK(/TDK) for a sign-on with network management code `scheme`, encrypted under `tmk`."""
    if scheme not in KEY_SCHEMES:
        raise ValueError(f"unknown key scheme {scheme!r}")
    double = scheme != "001"
    pik = make_des_key(16 if double else 8, token_bytes)
    mak = token_bytes(16) if aes_mak else make_des_key(mak_length if double else 8, token_bytes)
    tdk = make_des_key(16, token_bytes) if scheme == "004" else None
    mak_slot = tdes_encrypt_ecb(tmk, mak)
    if double and len(mak) == 8:
        mak_slot += bytes(8)
    field62 = (
        tdes_encrypt_ecb(tmk, pik) + check_value(pik)
        + mak_slot + check_value(mak)
    )
    if tdk is not None:
        field62 += tdes_encrypt_ecb(tmk, tdk) + check_value(tdk)
    return IssuedKeys(scheme, pik, mak, tdk, field62)


def unionpay_ecb_mac(mak: bytes, mab: bytes) -> bytes:
    """UnionPay POS "ECB" MAC: 8 ASCII hex characters."""
    padded = pad_iso9797_method1(mab)
    folded = bytes(_BLOCK)
    for start in range(0, len(padded), _BLOCK):
        folded = xor(folded, padded[start : start + _BLOCK])
    expanded = folded.hex().upper().encode("ascii")
    first = tdes_encrypt_ecb(mak, expanded[:_BLOCK])
    second = tdes_encrypt_ecb(mak, xor(first, expanded[_BLOCK:]))
    return second.hex().upper().encode("ascii")[:_BLOCK]


def x919_mac(mak: bytes, mab: bytes) -> bytes:
    """ANSI X9.19 retail MAC (ISO 9797-1 MAC algorithm 3, padding method 1) with a 16-byte key."""
    return retail_mac(mak, mab, padding=1)


def aes_cmac_mac(key: bytes, mab: bytes) -> bytes:
    """AES-CMAC, leftmost 8 bytes (the size of field 64)."""
    return _aes_cmac(key, mab)[:_BLOCK]


def compute_mac(profile: MacProfile, key: bytes, mab: bytes) -> bytes:
    if profile == MacProfile.UNIONPAY_ECB:
        return unionpay_ecb_mac(key, mab)
    if profile == MacProfile.X919:
        return x919_mac(key, mab)
    if profile == MacProfile.AES_CMAC:
        return aes_cmac_mac(key, mab)
    raise ValueError(f"unknown MAC profile {profile!r}")


def verify_mac(profile: MacProfile, key: bytes, mab: bytes, mac: bytes) -> None:
    """Raise MacMismatchError unless `mac` is the profile's MAC of `mab` (constant-time compare)."""
    if not hmac.compare_digest(compute_mac(profile, key, mab), mac):
        raise MacMismatchError(f"MAC does not verify (profile {profile})")
