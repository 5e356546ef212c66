"""Card data objects the kernel hands on, checked against their format (EMV Book 3 Annex A).

The PAN goes to the exception file, the transaction log, the PIN block and
the host; the PAN sequence number and track 2 equivalent data go to the host
(ISO 8583 fields 23 and 35). A card whose data breaks its format is refused
as card data that breaks the book (CardDataError naming the tag), never
passed on for the host side to trip over, never taken for a terminal fault.
"""

from __future__ import annotations

import re

from firmware.errors import CardDataError

__all__ = ["MAX_PAN_DIGITS", "pan_digits", "pan_sequence_number", "track2_equivalent_data"]

TAG_PAN = 0x5A
TAG_PSN = 0x5F34
TAG_TRACK2 = 0x57
MAX_PAN_DIGITS = 19
MAX_TRACK2_BYTES = 19
# PAN, separator 'D', expiry YYMM, service code, discretionary data (digits), one 'F' pad if needed.
_TRACK2 = re.compile(r"[0-9]{1,19}D[0-9]{4}[0-9]{3}[0-9]*F?")


def pan_digits(value: bytes) -> str:
    """Application PAN (5A), cn of up to 19 digits: the digits, then only 'F' pad nibbles."""
    nibbles = value.hex().upper()
    digits = nibbles.rstrip("F")
    if not digits:
        raise CardDataError(f"PAN of {len(value)} bytes holds no digit", TAG_PAN)
    if not all("0" <= nibble <= "9" for nibble in digits):
        position = next(index for index, nibble in enumerate(digits) if not "0" <= nibble <= "9")
        raise CardDataError(f"PAN nibble {position + 1} is not a digit", TAG_PAN)
    if len(digits) > MAX_PAN_DIGITS:
        raise CardDataError(f"PAN of {len(digits)} digits (at most {MAX_PAN_DIGITS})", TAG_PAN)
    return digits


def pan_sequence_number(value: bytes) -> int:
    """Application PAN Sequence Number (5F34), n 2: one byte of two decimal digits, 0 to 99."""
    if len(value) != 1:
        raise CardDataError(f"PAN sequence number of {len(value)} bytes (n 2 is 1 byte)", TAG_PSN)
    digits = value.hex().upper()
    if not digits.isdigit():
        raise CardDataError(f"PAN sequence number {digits} is not two decimal digits", TAG_PSN)
    return int(digits)


def track2_equivalent_data(value: bytes) -> bytes:
    """Track 2 Equivalent Data (57): PAN, 'D', YYMM, service code, digits, one 'F' pad; up to 19 bytes."""
    if len(value) > MAX_TRACK2_BYTES:
        raise CardDataError(f"track 2 equivalent data of {len(value)} bytes (at most 19)", TAG_TRACK2)
    nibbles = value.hex().upper()
    if _TRACK2.fullmatch(nibbles) is None:
        raise CardDataError("track 2 equivalent data is not PAN 'D' YYMM service code digits", TAG_TRACK2)
    return value
