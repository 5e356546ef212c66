"""Terminal Verification Results (95) and Transaction Status Information (9B).

Bit assignments from EMV Book 3 Annex C5 (TVR, 5 bytes) and C6 (TSI, 2 bytes).
Each bit is a flag of a 40-bit (TVR) or 16-bit (TSI) integer whose big-endian
encoding is the data element, so `TvrBit.SDA_FAILED` is byte 1 bit 7.

`Tvr` and `Tsi` are the small mutable registers one transaction carries:

    tvr = Tvr()
    tvr.set(TvrBit.SDA_FAILED)
    tvr.to_bytes()            # b'\\x40\\x00\\x00\\x00\\x00'
    TvrBit.SDA_FAILED in tvr  # True
"""

from __future__ import annotations

import enum
from typing import Generic, Self, TypeVar

from firmware.errors import CardDataError

__all__ = [
    "TSI_LENGTH",
    "TVR_LENGTH",
    "Tsi",
    "TsiBit",
    "Tvr",
    "TvrBit",
    "action_code_matches",
    "bit_names",
    "tvr_bit",
]

TVR_LENGTH = 5
TSI_LENGTH = 2


def tvr_bit(byte: int, bit: int) -> int:
    """The flag value of TVR byte `byte` (1..5), bit `bit` (8 = most significant .. 1)."""
    return 1 << ((TVR_LENGTH - byte) * 8 + (bit - 1))


def _tsi_bit(byte: int, bit: int) -> int:
    return 1 << ((TSI_LENGTH - byte) * 8 + (bit - 1))


class TvrBit(enum.IntFlag):
    """Book 3 Annex C5."""

    # byte 1: offline data authentication
    OFFLINE_DATA_AUTH_NOT_PERFORMED = tvr_bit(1, 8)
    SDA_FAILED = tvr_bit(1, 7)
    ICC_DATA_MISSING = tvr_bit(1, 6)
    CARD_ON_EXCEPTION_FILE = tvr_bit(1, 5)
    DDA_FAILED = tvr_bit(1, 4)
    CDA_FAILED = tvr_bit(1, 3)
    SDA_SELECTED = tvr_bit(1, 2)
    # byte 2: processing restrictions
    DIFFERENT_APPLICATION_VERSIONS = tvr_bit(2, 8)
    EXPIRED_APPLICATION = tvr_bit(2, 7)
    APPLICATION_NOT_YET_EFFECTIVE = tvr_bit(2, 6)
    SERVICE_NOT_ALLOWED = tvr_bit(2, 5)
    NEW_CARD = tvr_bit(2, 4)
    # byte 3: cardholder verification
    CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL = tvr_bit(3, 8)
    UNRECOGNISED_CVM = tvr_bit(3, 7)
    PIN_TRY_LIMIT_EXCEEDED = tvr_bit(3, 6)
    PIN_PAD_NOT_PRESENT_OR_NOT_WORKING = tvr_bit(3, 5)
    PIN_NOT_ENTERED = tvr_bit(3, 4)
    ONLINE_PIN_ENTERED = tvr_bit(3, 3)
    # byte 4: terminal risk management
    EXCEEDS_FLOOR_LIMIT = tvr_bit(4, 8)
    LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = tvr_bit(4, 7)
    UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED = tvr_bit(4, 6)
    RANDOMLY_SELECTED_FOR_ONLINE = tvr_bit(4, 5)
    MERCHANT_FORCED_ONLINE = tvr_bit(4, 4)
    # byte 5: issuer authentication and scripts
    DEFAULT_TDOL_USED = tvr_bit(5, 8)
    ISSUER_AUTHENTICATION_FAILED = tvr_bit(5, 7)
    SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC = tvr_bit(5, 6)
    SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC = tvr_bit(5, 5)


class TsiBit(enum.IntFlag):
    """Book 3 Annex C6 (byte 2 is RFU)."""

    OFFLINE_DATA_AUTH_PERFORMED = _tsi_bit(1, 8)
    CARDHOLDER_VERIFICATION_PERFORMED = _tsi_bit(1, 7)
    CARD_RISK_MANAGEMENT_PERFORMED = _tsi_bit(1, 6)
    ISSUER_AUTHENTICATION_PERFORMED = _tsi_bit(1, 5)
    TERMINAL_RISK_MANAGEMENT_PERFORMED = _tsi_bit(1, 4)
    SCRIPT_PROCESSING_PERFORMED = _tsi_bit(1, 3)


BitT = TypeVar("BitT", TvrBit, TsiBit)


class _Register(Generic[BitT]):
    _length: int
    _bits: type[BitT]

    def __init__(self, value: int = 0) -> None:
        if value < 0 or value >> (8 * self._length):
            raise ValueError(f"value does not fit {self._length} bytes")
        self._value = value

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != cls._length:
            raise CardDataError(f"{cls.__name__} must be {cls._length} bytes, got {len(data)}")
        return cls(int.from_bytes(data, "big"))

    def set(self, bits: BitT | int) -> None:
        self._value |= int(bits)

    def clear(self, bits: BitT | int) -> None:
        self._value &= ~int(bits)

    def __contains__(self, bits: object) -> bool:
        if not isinstance(bits, int):
            return False
        return self._value & bits == bits and bits != 0

    def __int__(self) -> int:
        return self._value

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and int(other) == self._value

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._value))

    def copy(self) -> Self:
        return type(self)(self._value)

    def to_bytes(self) -> bytes:
        return self._value.to_bytes(self._length, "big")

    def hex(self) -> str:
        return self.to_bytes().hex().upper()

    def names(self) -> list[str]:
        """Names of the set bits, in book order (byte 1 bit 8 first)."""
        return [bit.name or "" for bit in sorted(self._bits, reverse=True) if bit in self]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()}: {', '.join(self.names()) or '-'})"


class Tvr(_Register[TvrBit]):
    """The 5-byte TVR of one transaction."""

    _length = TVR_LENGTH
    _bits = TvrBit


class Tsi(_Register[TsiBit]):
    """The 2-byte TSI of one transaction."""

    _length = TSI_LENGTH
    _bits = TsiBit


def bit_names(tvr: bytes) -> list[str]:
    """Names of the TVR bits set in 5 raw bytes."""
    return Tvr.from_bytes(tvr).names()


def action_code_matches(tvr: bytes, action_code: bytes) -> bool:
    """True when any TVR bit is also set in the action code (TAC/IAC, Book 3 10.7)."""
    if len(tvr) != TVR_LENGTH or len(action_code) != TVR_LENGTH:
        raise CardDataError(f"TVR and action code must be {TVR_LENGTH} bytes")
    return any(t & a for t, a in zip(tvr, action_code, strict=True))
