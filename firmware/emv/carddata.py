"""Card data objects the kernel hands on, checked against their format (EMV Book 3 Annex A).

The PAN goes to the exception file, the transaction log, the PIN block and
the host; a card whose PAN is not a PAN is refused as card data that breaks
the book (CardDataError naming the tag), never taken for a terminal fault.
"""

from __future__ import annotations

from firmware.errors import CardDataError

__all__ = ["MAX_PAN_DIGITS", "pan_digits"]

TAG_PAN = 0x5A
MAX_PAN_DIGITS = 19


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
