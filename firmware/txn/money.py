"""Amounts typed by a person, to and from integer minor units (fen), with no float anywhere.

`parse_amount("12.34") == 1234`. What is accepted is exactly: 1 to 10 ASCII
digits, then optionally a point and 1 or 2 ASCII digits ("12", "12.3",
"12.34", "0.05"); surrounding ASCII spaces are ignored. Ten integer digits
make at most 999 999 999 999 fen, the twelve digits of ISO 8583 field 4.

Everything else raises one `AmountError` naming the field and saying what is
wrong, checked in this order: empty; a character that is not an ASCII digit
or point (full-width or other scripts' digits, invisible or non-breaking
spaces, named by code point; then a sign, an exponent, a comma); more than
one point; no digit before or after the point; more than two decimals; more
than ten integer digits; zero, unless `allow_zero` (a limit may be zero,
money that moves may not).

`format_amount(1234) == "12.34"`: the inverse for every accepted amount.
"""

from __future__ import annotations

from typing import Final

from firmware.errors import AmountError

__all__ = ["MAX_INTEGER_DIGITS", "MAX_MINOR_UNITS", "format_amount", "parse_amount"]

MAX_INTEGER_DIGITS: Final = 10
MAX_MINOR_UNITS: Final = 10**MAX_INTEGER_DIGITS * 100 - 1
_DIGITS: Final = frozenset("0123456789")
_ONLY: Final = "only ASCII digits 0-9 and '.'"


def _refuse_character(char: str, field: str) -> AmountError:
    if char == "-":
        return AmountError("must not be negative", field)
    if char == "+":
        return AmountError("a sign is not allowed", field)
    if char in "eE":
        return AmountError("an exponent is not allowed; write the digits", field)
    if char == ",":
        return AmountError("',' is not allowed: use '.' for the decimals and no thousands separator", field)
    if char.isdigit() or char.isspace() or not char.isprintable() or not char.isascii():
        return AmountError(f"character U+{ord(char):04X} is not allowed: {_ONLY}", field)
    return AmountError(f"{char!r} is not allowed: {_ONLY}", field)


def parse_amount(text: str, field: str = "amount", *, allow_zero: bool = False) -> int:
    """The amount a person typed, in minor units; `AmountError` (naming `field`) when it is not one."""
    stripped = text.strip(" ")
    if not stripped:
        raise AmountError("is empty", field)
    for char in stripped:
        if char not in _DIGITS and char != ".":
            raise _refuse_character(char, field)
    whole, point, decimals = stripped.partition(".")
    if "." in decimals:
        raise AmountError("has more than one '.'", field)
    if not whole:
        raise AmountError("needs a digit before the '.'", field)
    if point and not decimals:
        raise AmountError("needs a digit after the '.'", field)
    if len(decimals) > 2:
        raise AmountError("has more than two decimals", field)
    if len(whole) > MAX_INTEGER_DIGITS:
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} digits before the '.'", field)
    minor = int(whole) * 100 + int(decimals.ljust(2, "0"))
    if minor == 0 and not allow_zero:
        raise AmountError("must be more than zero", field)
    return minor


def format_amount(minor: int) -> str:
    """Minor units as a person reads them: 1234 -> "12.34", 5 -> "0.05"."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise AmountError(f"is a {type(minor).__name__}, not a whole number of minor units")
    if minor < 0:
        raise AmountError("must not be negative")
    if minor > MAX_MINOR_UNITS:
        raise AmountError(f"has more than {MAX_INTEGER_DIGITS} digits before the '.'")
    whole, cents = divmod(minor, 100)
    return f"{whole}.{cents:02d}"
