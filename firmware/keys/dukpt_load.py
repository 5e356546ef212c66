"""Loading a DUKPT initial key from a TR-31 key block.

The block must hold an initial DUKPT key (key usage B1; a BDK, B0, never
enters a terminal): algorithm T, a double-length TDES initial key (IPEK) for
X9.24-1, or A, an AES-128/192/256 initial key for X9.24-3. Its mode of use
must be X (key derivation) or N (no special restrictions); a key component
(key version 'c?') is refused.

The device's identity comes with the key: the initial KSN of a TDES key
(optional block KS, 20 hex digits: 10 bytes, counter bits zero) or the
initial key ID of an AES key (optional block IK, 16 hex digits), else from
the caller (`--ksn`; for AES either the 8-byte initial key ID or a 12-byte
KSN with counter zero). When both are there they must agree. A KC optional
block (check value of the wrapped key: algorithm 00 legacy, 01 CMAC) is
checked when present.

The initial key only fills the registers (`DukptState.from_initial_key`);
what is stored is the register state, never the key.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from firmware.errors import CryptoError, KeyBlockError
from firmware.keys import dukpt_aes, dukpt_tdes
from firmware.keys.blockcipher import AES_BLOCK, DES_BLOCK, cmac_aes, cmac_tdes
from firmware.keys.dukpt_state import DukptInfo, DukptState, PersistentDukptTerminal
from firmware.keys.kcv import KIND_AES, KIND_TDES, kcv_tdes
from firmware.keys.tr31 import KeyBlockHeader, unwrap_key_block

__all__ = [
    "INITIAL_DUKPT_KEY_USAGE",
    "INITIAL_KEY_MODES_OF_USE",
    "InitialDukptKey",
    "load_dukpt_initial_key",
    "unwrap_initial_dukpt_key",
]

log = logging.getLogger(__name__)

INITIAL_DUKPT_KEY_USAGE = "B1"
INITIAL_KEY_MODES_OF_USE = ("X", "N")
_ALGORITHMS = {"T": KIND_TDES, "A": KIND_AES}
_ID_BLOCK = {KIND_TDES: "KS", KIND_AES: "IK"}
_KEY_LENGTHS = {KIND_TDES: (16,), KIND_AES: (16, 24, 32)}
_COMPONENT_MARK = "c"
_KCV_LEGACY, _KCV_CMAC = "00", "01"


@dataclass(frozen=True, repr=False)
class InitialDukptKey:
    """An unwrapped initial DUKPT key with the identity it is loaded under."""

    header: KeyBlockHeader
    algorithm: str  # "tdes" or "aes"
    key: bytes
    initial_key_id: bytes  # TDES: initial KSN (10 bytes, counter zero); AES: initial key ID (8 bytes)

    def __repr__(self) -> str:
        return f"InitialDukptKey({self.algorithm}, id={self.initial_key_id.hex().upper()})"


def _hex(text: str, what: str, field: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise KeyBlockError(f"{what} {text!r} is not hex", field) from exc


def _id_from_block(header: KeyBlockHeader, algorithm: str) -> bytes | None:
    wanted = _ID_BLOCK[algorithm]
    for block_id in _ID_BLOCK.values():
        if block_id != wanted and block_id in header.optional_blocks:
            raise KeyBlockError(
                f"key block optional block {block_id} does not belong in an {algorithm.upper()} "
                f"initial key block (expected {wanted})",
                block_id,
            )
    text = header.optional_blocks.get(wanted)
    if text is None:
        return None
    expected = 2 * (dukpt_tdes.KSN_LENGTH if algorithm == KIND_TDES else dukpt_aes.INITIAL_KEY_ID_LENGTH)
    if len(text) != expected:
        raise KeyBlockError(
            f"key block optional block {wanted} holds {len(text)} characters; expected {expected} hex digits",
            wanted,
        )
    return _hex(text, f"key block optional block {wanted}", wanted)


def _id_from_argument(ksn: bytes, algorithm: str) -> bytes:
    if algorithm == KIND_TDES:
        if len(ksn) != dukpt_tdes.KSN_LENGTH:
            raise KeyBlockError(
                f"a TDES initial KSN is {dukpt_tdes.KSN_LENGTH} bytes, --ksn gives {len(ksn)}", "ksn"
            )
        return ksn
    if len(ksn) == dukpt_aes.KSN_LENGTH:
        if ksn[dukpt_aes.INITIAL_KEY_ID_LENGTH :] != bytes(4):
            raise KeyBlockError(
                f"--ksn {ksn.hex().upper()} is not an initial KSN: its counter is not zero", "ksn"
            )
        return ksn[: dukpt_aes.INITIAL_KEY_ID_LENGTH]
    if len(ksn) != dukpt_aes.INITIAL_KEY_ID_LENGTH:
        raise KeyBlockError(
            f"an AES initial key ID is {dukpt_aes.INITIAL_KEY_ID_LENGTH} bytes (or a {dukpt_aes.KSN_LENGTH}"
            f"-byte KSN with counter zero), --ksn gives {len(ksn)}",
            "ksn",
        )
    return ksn


def _check_kc(header: KeyBlockHeader, algorithm: str, key: bytes) -> None:
    """The KC optional block, when present: KCV algorithm (2 digits) then the check value."""
    text = header.optional_blocks.get("KC")
    if text is None:
        return
    method, expected = text[:2], _hex(text[2:], "key block optional block KC", "KC")
    if method == _KCV_LEGACY and algorithm == KIND_TDES:
        actual = kcv_tdes(key, DES_BLOCK)
    elif method == _KCV_CMAC and algorithm == KIND_TDES:
        actual = cmac_tdes(key, bytes(DES_BLOCK))
    elif method == _KCV_CMAC:
        actual = cmac_aes(key, bytes(AES_BLOCK))
    else:
        raise KeyBlockError(
            f"key block optional block KC: check value method {method!r} is not accepted", "KC"
        )
    if not expected or not hmac.compare_digest(actual[: len(expected)], expected):
        raise KeyBlockError("key block optional block KC: the key does not match its check value", "KC")


def unwrap_initial_dukpt_key(kbpk: bytes, block: str, ksn: bytes | None = None) -> InitialDukptKey:
    """Unwrap a B1 key block under `kbpk`; `ksn` gives the initial KSN / key ID when the block has none."""
    header, key = unwrap_key_block(kbpk, block)
    if header.key_usage != INITIAL_DUKPT_KEY_USAGE:
        raise KeyBlockError(
            f"key block key usage {header.key_usage!r} is not an initial DUKPT key (expected B1)",
            "key usage",
        )
    algorithm = _ALGORITHMS.get(header.algorithm)
    if algorithm is None:
        raise KeyBlockError(
            f"key block algorithm {header.algorithm!r} is not accepted for an initial DUKPT key "
            "(expected T or A)",
            "algorithm",
        )
    if header.mode_of_use not in INITIAL_KEY_MODES_OF_USE:
        raise KeyBlockError(
            f"key block mode of use {header.mode_of_use!r} is not key derivation (expected X or N)",
            "mode of use",
        )
    if header.key_version_number.startswith(_COMPONENT_MARK):
        raise KeyBlockError(
            f"key block key version number {header.key_version_number!r} (offset 9) marks a key "
            "component, not a whole initial key",
            "key version number",
        )
    if len(key) not in _KEY_LENGTHS[algorithm]:
        sizes = " or ".join(str(n) for n in _KEY_LENGTHS[algorithm])
        raise KeyBlockError(
            f"{algorithm.upper()} initial DUKPT key must be {sizes} bytes, got {len(key)}", "key length"
        )
    _check_kc(header, algorithm, key)
    from_block = _id_from_block(header, algorithm)
    given = _id_from_argument(ksn, algorithm) if ksn is not None else None
    if from_block is not None and given is not None and from_block != given:
        raise KeyBlockError(
            f"key block optional block {_ID_BLOCK[algorithm]} says {from_block.hex().upper()}, "
            f"--ksn says {given.hex().upper()}",
            _ID_BLOCK[algorithm],
        )
    initial_key_id = from_block if from_block is not None else given
    if initial_key_id is None:
        raise KeyBlockError(
            f"key block carries no {_ID_BLOCK[algorithm]} optional block: give the initial "
            f"{'KSN' if algorithm == KIND_TDES else 'key ID'} with --ksn",
            _ID_BLOCK[algorithm],
        )
    return InitialDukptKey(header, algorithm, key, initial_key_id)


def load_dukpt_initial_key(
    terminal: PersistentDukptTerminal, kbpk: bytes, block: str, ksn: bytes | None = None
) -> tuple[KeyBlockHeader, DukptInfo]:
    """Unwrap `block`, fill the registers from its initial key and install them; the key is not kept.

    KeyBlockError when the block may not be loaded: see `unwrap_initial_dukpt_key`
    and `PersistentDukptTerminal.install` (an initial key ID used before, an older key version).
    """
    initial = unwrap_initial_dukpt_key(kbpk, block, ksn)
    try:
        state = DukptState.from_initial_key(
            initial.algorithm, initial.key, initial.initial_key_id, initial.header.key_version_number
        )
    except CryptoError as exc:
        raise KeyBlockError(f"key block: {exc}", "key data") from exc
    info = terminal.install(state)
    log.info("initial DUKPT key from key block version %s installed", initial.header.version_id)
    return initial.header, info
