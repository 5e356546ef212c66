"""What the store refuses to keep: a clear PAN, track data, a PIN (or PIN block), card security codes.

A value "looks like a clear PAN" when it holds 13 to 19 digits in a row (not
part of a longer run of digits) that pass the Luhn check: in a string (track
data shows its PAN this way too: digits up to the "=" or "D" separator), in a
string that is nothing but digits grouped by spaces or dashes, or as a number.
Fields named like a PIN, track data or a card security code are refused
whatever they hold. A refusal names the field, never the value.
"""

from __future__ import annotations

import math
import re
from typing import Final

from firmware.errors import SensitiveDataError, StoreError

__all__ = ["check_storable", "luhn_valid", "mask_clear_pans"]

_DIGIT_RUN: Final = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_GROUPED_NUMBER: Final = re.compile(r"\d[\d -]*\d")
_FORBIDDEN_NAMES: Final = frozenset(
    {"pin", "pinblock", "track", "track1", "track2", "track3", "trackdata", "cvv", "cvv2", "cvc", "cvc2"}
)
_MAX_DEPTH: Final = 32


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _pan_runs(text: str) -> list[re.Match[str]]:
    return [match for match in _DIGIT_RUN.finditer(text) if luhn_valid(match.group())]


def _looks_like_pan(text: str) -> bool:
    if _pan_runs(text):
        return True
    stripped = text.strip()
    if _GROUPED_NUMBER.fullmatch(stripped):
        digits = stripped.replace(" ", "").replace("-", "")
        return 13 <= len(digits) <= 19 and luhn_valid(digits)
    return False


def mask_clear_pans(text: str) -> str:
    """`text` with each run of digits that looks like a PAN shown as first 6, stars, last 4."""
    return _DIGIT_RUN.sub(
        lambda m: m.group()[:6] + "*" * (len(m.group()) - 10) + m.group()[-4:]
        if luhn_valid(m.group())
        else m.group(),
        text,
    )


def _refuse(field: str, what: str) -> SensitiveDataError:
    return SensitiveDataError(f"field {field} {what}; the store keeps masked card data only", field)


def _field_name_is_forbidden(name: str) -> bool:
    return name.lower().replace("_", "").replace("-", "") in _FORBIDDEN_NAMES


def check_storable(value: object, field: str, depth: int = 0) -> None:
    """Raise unless `value` is plain JSON data with no clear card data (SensitiveDataError names the field).

    Plain JSON data: str, int, finite float, bool, None, lists (or tuples) and dicts with string keys.
    """
    if depth > _MAX_DEPTH:
        raise StoreError(f"field {field} is nested more than {_MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if _looks_like_pan(value):
            raise _refuse(field, "holds what looks like a clear PAN")
        return
    if isinstance(value, int):
        if _looks_like_pan(str(value)):
            raise _refuse(field, "holds what looks like a clear PAN")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(f"field {field} is not a finite number")
        if _looks_like_pan(repr(value)):
            raise _refuse(field, "holds what looks like a clear PAN")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_storable(item, f"{field}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for position, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise StoreError(f"field {field} has a key that is not a string (key number {position})")
            if _looks_like_pan(key):
                raise _refuse(f"{field} (key number {position})", "has a key that looks like a clear PAN")
            inner = f"{field}.{key}" if _is_plain_name(key) else f"{field} (key number {position})"
            if _field_name_is_forbidden(key):
                raise _refuse(inner, "is named like a PIN, track data or card security code")
            check_storable(item, inner, depth + 1)
        return
    raise StoreError(f"field {field} holds a {type(value).__name__}, which is not plain JSON data")


def _is_plain_name(key: str) -> bool:
    """A key fit to show in an error (it was already found free of a PAN)."""
    return 0 < len(key) <= 40 and key.isprintable() and "." not in key
