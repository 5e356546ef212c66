"""What the store refuses to keep: a clear PAN, track data, a PIN (or PIN block), card security codes.

Text is looked at after every Unicode decimal digit (full-width ３, Arabic-Indic
٣...) is read as its ASCII digit. A text value "holds a clear PAN" when:

- it holds 13 to 19 digits in a row (not part of a longer run) that pass the
  Luhn check (track data shows its PAN this way too: digits up to the "=" or
  "D" separator); or a run that is a two-digit length followed by that many
  digits of a Luhn-valid PAN (an ISO 8583 field 2 written out);
- it holds groups of digits laid out as a PAN is printed (4-4-4-4 and a last
  group, 4-6-5, 4-6-4) with one separator (space, "-", ".", "/"), 13 to 19
  digits in all, Luhn-valid; or the whole value is digits grouped by spaces
  or dashes;
- it is hex or base64 (or hex inside base64) whose bytes show card data *by
  its structure* (`_bytes_hold_card_data`): an ISO 8583 message (MTI and
  bitmap in the first bytes) whose field 2 is a Luhn-valid PAN; BER-TLV tag
  5A with a BCD PAN, or 57 / 9F6B / 56 with track data; a length-prefixed
  track 2 (field 35: PAN, "D", expiry, service code); a value that is all a
  BCD PAN or a BCD track 2; 13 to 19 ASCII digits in a row, or ASCII track
  data; or text that is itself a value refused here.

Hex made of random bytes (a sealed PAN, a signature, a cryptogram) holds a
Luhn-valid run of 13 to 19 digits in about 1.5 % of values: in a value that is
hex, digit runs are therefore not read as PANs, only the structures above,
which random bytes show by chance far less than once in 100,000 values
(`tests/test_store_sensitive.py` measures it).

Numbers are looked at as their decimal text. Fields named like a PIN, PIN
block, track data or card security code are refused whatever they hold: a
name is split into words (snake_case, kebab-case, camelCase, digits apart)
and refused when a word is one of `_FORBIDDEN_WORDS`, or the name with its
separators removed holds one of `_FORBIDDEN_FRAGMENTS` (`pin_data`,
`clear_pin`, `cvv_value`, `track2Equivalent`, `security_code`...).
A refusal names the field, never the value.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from typing import Final

from firmware.errors import SensitiveDataError, StoreError

__all__ = ["check_storable", "luhn_valid", "mask_clear_pans", "normalise_digits"]

_DIGIT_RUN: Final = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
_LONG_DIGIT_RUN: Final = re.compile(r"(?<![0-9])[0-9]{15,21}(?![0-9])")
# A PAN as it is printed: 4-4-4-4 (and a last group of 1..4), 4-4-4 and 1..4, 4-6-5, 4-6-4, with one
# separator throughout. (Any grouping would take dates and times for PANs: 20251203-111457-3456.)
_SEPARATED_PAN: Final = re.compile(
    r"(?<![0-9])(?:[0-9]{4}([ ./-])[0-9]{4}(?:\1[0-9]{4}){1,2}(?:\1[0-9]{1,4})?"
    r"|[0-9]{4}([ ./-])[0-9]{6}\2[0-9]{4,5})(?![0-9])"
)
_GROUPED_NUMBER: Final = re.compile(r"[0-9][0-9 -]*[0-9]")
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_MIN_ENCODED: Final = 14  # 7 bytes: the shortest BCD PAN
_FORBIDDEN_WORDS: Final = frozenset(
    {
        "pin",
        "pins",
        "pinblock",
        "epb",
        "track",
        "track1",
        "track2",
        "track3",
        "trk",
        "trk1",
        "trk2",
        "magstripe",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cvn",
        "cvn2",
        "cvd",
        "csc",
        "cav2",
        "icvv",
        "dcvv",
        "pvv",
    }
)
_FORBIDDEN_FRAGMENTS: Final = (
    "pinblock",
    "pindata",
    "pinfield",
    "clearpin",
    "plainpin",
    "pinvalue",
    "pincode",
    "trackdata",
    "track1",
    "track2",
    "track3",
    "cvv",
    "cvc2",
    "securitycode",
    "verificationvalue",
    "verificationcode",
    "magstripe",
)
_MAX_DEPTH: Final = 32
# Message types of the terminal's host dialogue (and their answers), as BCD.
_MTIS: Final = frozenset(
    bytes.fromhex(mti)
    for mti in (
        "0100 0110 0120 0130 0200 0210 0220 0230 0320 0330 0400 0410 0420 0430 0500 0510 0800 0810 0820 0830"
    ).split()
)
_MAX_NESTED_DECODING: Final = 2


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of ASCII digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def normalise_digits(text: str) -> str:
    """`text` with every Unicode decimal digit (full-width, Arabic-Indic...) as its ASCII digit."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in text)


def _is_pan(digits: str) -> bool:
    return (
        13 <= len(digits) <= 19
        and digits.isascii()
        and digits.isdigit()
        and digits[0] != "0"
        and luhn_valid(digits)
    )


# ----- bytes: card data by its structure ---------------------------------------------------------


def _nibbles(data: bytes) -> str:
    return data.hex().upper()


def _bcd_pan(nibbles: str) -> bool:
    """A PAN in BCD: its digits, then at most one pad nibble (F or 0 after an odd count)."""
    digits = nibbles.rstrip("F")
    if len(nibbles) - len(digits) > 1:
        return False
    return digits.isdigit() and (_is_pan(digits) or (digits.endswith("0") and _is_pan(digits[:-1])))


def _track2(nibbles: str) -> bool:
    """Track 2 in BCD: PAN, D, YYMM, service code, discretionary data, an F pad."""
    pan, separator, rest = nibbles.partition("D")
    if not separator:
        return False
    rest = rest.rstrip("F")
    return _is_pan(pan) and len(rest) >= 7 and rest.isdigit() and 1 <= int(rest[2:4]) <= 12


def _ascii_track(data: bytes) -> bool:
    """Track 1 (%B PAN ^ name ^) or track 2 (;PAN=YYMM...) as ASCII."""
    return any(_is_pan(match.group(1)) for match in _ASCII_TRACK.finditer(data.decode("latin-1")))


def _tlv_card_data(data: bytes) -> bool:
    """Tag 5A (BCD PAN), 57 / 9F6B (BCD track 2) or 56 (ASCII track 1) with its length, at any offset."""
    for offset in range(len(data) - 2):
        tag = data[offset]
        if tag == 0x9F and data[offset + 1] == 0x6B:
            start, tag = offset + 2, 0x9F6B
        elif tag in (0x5A, 0x57, 0x56):
            start = offset + 1
        else:
            continue
        if start >= len(data):
            continue
        length = data[start]
        value = data[start + 1 : start + 1 + length]
        if len(value) != length:
            continue
        if tag == 0x5A and 7 <= length <= 10 and _bcd_pan(_nibbles(value)):
            return True
        if tag in (0x57, 0x9F6B) and 11 <= length <= 19 and _track2(_nibbles(value)):
            return True
        if tag == 0x56 and length >= 20 and value[:1] == b"B" and _ascii_track(value[1:]):
            return True
    return False


def _length_prefixed_track2(data: bytes) -> bool:
    """ISO 8583 field 35: a BCD length of 21..37 nibbles, then that track 2 (pad 0 or F)."""
    for offset in range(len(data) - 11):
        ll = _nibbles(data[offset : offset + 1])
        if not ll.isdigit() or not 21 <= int(ll) <= 37:
            continue
        count = int(ll)
        value = _nibbles(data[offset + 1 : offset + 1 + (count + 1) // 2])
        if len(value) == (count + 1) // 2 * 2 and _track2(value[:count]):
            return True
    return False


def _iso8583_card_data(data: bytes) -> bool:
    """A packed ISO 8583 message (a known MTI in BCD, then the bitmap) in its first bytes, after
    a TPDU, header or length: its field 2 (right after the bitmap) a PAN, or (bit 35) a track 2."""
    for offset in range(min(17, len(data) - 12)):
        if data[offset : offset + 2] not in _MTIS:
            continue
        bitmap = data[offset + 2 : offset + 10]
        after = offset + 10 + (8 if bitmap[0] & 0x80 else 0)
        if bitmap[0] & 0x40:  # bit 2: field 2 is the first field after the bitmap(s)
            ll = _nibbles(data[after : after + 1])
            if ll.isdigit() and 13 <= int(ll) <= 19:
                value = _nibbles(data[after + 1 : after + 1 + (int(ll) + 1) // 2])
                if len(value) == (int(ll) + 1) // 2 * 2 and _is_pan(value[: int(ll)]):
                    return True
        if bitmap[4] & 0x20 and _length_prefixed_track2(data[after:]):  # bit 35: track 2
            return True
    return False


def _whole_value_card_data(data: bytes) -> bool:
    """The value is nothing but a BCD track 2, or a BCD length and a PAN or track 2.

    (A bare BCD PAN of digits only is a digit run of the text; with an F pad, 8 random bytes
    would pass for one once in 200,000.)"""
    nibbles = _nibbles(data)
    if 11 <= len(data) <= 19 and _track2(nibbles):
        return True
    ll, rest = nibbles[:2], nibbles[2:]
    if ll.isdigit() and len(rest) == (int(ll) + 1) // 2 * 2:
        return _is_pan(rest[: int(ll)]) or _track2(rest[: int(ll)])
    return False


_ASCII_RUN: Final = re.compile(rb"(?<![0-9])[0-9]{13,19}(?![0-9])")
_ASCII_TRACK: Final = re.compile(r"(?<![0-9])([0-9]{13,19})[=^]")


def _bytes_hold_card_data(data: bytes, nesting: int) -> bool:
    """Card data shown by its structure in `data` (decoded from hex or base64)."""
    if (
        _whole_value_card_data(data)
        or _iso8583_card_data(data)
        or _tlv_card_data(data)
        or any(_is_pan(m.group().decode("ascii")) for m in _ASCII_RUN.finditer(data))
        or _ascii_track(data)
    ):
        return True
    if nesting < _MAX_NESTED_DECODING:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if text.isprintable():
            return _text_holds_card_data(text, nesting + 1)
    return False


# ----- text ---------------------------------------------------------------------------------------


def _is_hex_blob(text: str) -> bool:
    return len(text) >= _MIN_ENCODED and len(text) % 2 == 0 and _HEX.fullmatch(text) is not None


def _decoded(text: str) -> list[bytes]:
    """The bytes `text` may stand for: as hex, as base64 (standard or URL-safe)."""
    found = []
    if _is_hex_blob(text):
        found.append(bytes.fromhex(text))
    if len(text) >= _MIN_ENCODED and _BASE64.fullmatch(text):
        padded = text + "=" * (-len(text) % 4)
        altchars = b"-_" if ("-" in text or "_" in text) else None
        try:
            found.append(base64.b64decode(padded, altchars=altchars, validate=True))
        except (binascii.Error, ValueError):
            pass
    return found


def _digits_hold_pan(text: str) -> bool:
    if any(_is_pan(m.group()) for m in _DIGIT_RUN.finditer(text)):
        return True
    for match in _LONG_DIGIT_RUN.finditer(text):  # "16" + 16 digits: a field 2 written out
        run = match.group()
        if run[:2].isdigit() and int(run[:2]) == len(run) - 2 and _is_pan(run[2:]):
            return True
    for match in _SEPARATED_PAN.finditer(text):
        digits = re.sub(r"[^0-9]", "", match.group())
        if _is_pan(digits):
            return True
    stripped = text.strip()
    if _GROUPED_NUMBER.fullmatch(stripped):
        return _is_pan(re.sub(r"[^0-9]", "", stripped))
    return False


def _text_holds_card_data(text: str, nesting: int = 0) -> bool:
    text = normalise_digits(text)
    compact = "".join(text.split()) if len(text) < 4096 else text
    hex_blob = _is_hex_blob(compact) and not compact.isdigit()
    # Random hex holds a Luhn-valid digit run in ~1.5 % of values: in hex, only structure counts.
    if not hex_blob and _digits_hold_pan(text):
        return True
    return any(_bytes_hold_card_data(data, nesting) for data in _decoded(compact))


def _looks_like_pan(text: str) -> bool:
    return _text_holds_card_data(text)


def mask_clear_pans(text: str) -> str:
    """`text` with each run of digits that looks like a PAN shown as first 6, stars, last 4."""
    text = normalise_digits(text)
    return _DIGIT_RUN.sub(
        lambda m: (
            m.group()[:6] + "*" * (len(m.group()) - 10) + m.group()[-4:]
            if luhn_valid(m.group())
            else m.group()
        ),
        text,
    )


def _refuse(field: str, what: str) -> SensitiveDataError:
    return SensitiveDataError(f"field {field} {what}; the store keeps masked card data only", field)


_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _field_name_is_forbidden(name: str) -> bool:
    name = normalise_digits(unicodedata.normalize("NFKC", name))
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", _CAMEL.sub("_", name)) if w]
    split = [part for word in words for part in re.findall(r"[a-z]+|[0-9]+", word)]
    if any(word in _FORBIDDEN_WORDS for word in words + split):
        return True
    joined = "".join(words)
    return any(fragment in joined for fragment in _FORBIDDEN_FRAGMENTS)


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
            raise _refuse(field, "holds what looks like a clear PAN or track data")
        return
    if isinstance(value, int):
        if _digits_hold_pan(str(value)):
            raise _refuse(field, "holds what looks like a clear PAN")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StoreError(f"field {field} is not a finite number")
        if _digits_hold_pan(repr(value)):
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
