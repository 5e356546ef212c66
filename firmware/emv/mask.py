"""Masking of card data for display: PAN, track data, cardholder name, PIN.

Everything a person or a log may see goes through here. A PAN shows its
first 6 and last 4 digits; track data, discretionary data and the
cardholder name show nothing but their length; PIN-bearing command data
is withheld. Data that cannot be parsed as TLV is withheld too, since it
cannot be told free of a PAN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from firmware.emv import tags
from firmware.emv.apdu import PIN_BEARING_INS
from firmware.emv.tlv import encode_length, encode_tag, iter_tlv, tag_is_constructed
from firmware.errors import TlvError

__all__ = [
    "cn_digits",
    "display_command",
    "display_tags",
    "display_tlv",
    "display_value",
    "mask_pan",
    "mask_track1",
    "mask_track2",
    "mask_value",
]

_PAN_TAGS = frozenset({0x5A})
_TRACK2_TAGS = frozenset({0x57, 0x9F6B})
_TRACK1_TAGS = frozenset({0x56})
_TEXT_FORMATS = frozenset({"a", "an", "ans"})
_MAX_DISPLAY_DEPTH = 16
# A run of 13 digits or more could be a card number under a tag that was damaged on the way
# (57 read as 55): such a value is withheld whatever its tag says.
_CARD_NUMBER_LIKE = re.compile(r"[0-9]{13,}")


def mask_pan(pan: str) -> str:
    """First 6 + stars + last 4; a PAN too short for that shows only its last 4."""
    if len(pan) >= 13:
        return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]
    if len(pan) > 8:
        return "*" * (len(pan) - 4) + pan[-4:]
    return "*" * len(pan)


def cn_digits(value: bytes) -> str:
    """The digits of a compressed numeric (cn) value: hex nibbles up to the first F pad."""
    return value.hex().upper().split("F", 1)[0]


def mask_track2(value: bytes) -> str:
    """Track 2 equivalent data (57): masked PAN, the separator, then stars."""
    nibbles = value.hex().upper().rstrip("F")
    pan, separator, rest = nibbles.partition("D")
    if not separator:
        return "*" * len(nibbles)
    return mask_pan(pan) + "D" + "*" * len(rest)


def mask_track1(value: bytes) -> str:
    """Track 1 data (56), format B: 'B' + masked PAN + '^' then stars."""
    text = value.decode("latin-1")
    if text[:1] == "B" and "^" in text:
        pan, _, rest = text[1:].partition("^")
        return "B" + mask_pan(pan) + "^" + "*" * len(rest)
    return "*" * len(text)


def _card_number_like(tag: int, value: bytes) -> bool:
    """Whether the value (its text for a text tag, else its nibbles) holds 13 or more digits in a row."""
    shown = value.decode("latin-1") if tags.format_of(tag) in _TEXT_FORMATS else value.hex()
    return _CARD_NUMBER_LIKE.search(shown) is not None


def mask_value(tag: int, value: bytes) -> str | None:
    """The masked text of a sensitive tag's value, or of any value holding a card-number-like run of
    digits; None when neither."""
    if tag not in tags.SENSITIVE_TAGS:
        if not tag_is_constructed(tag) and _card_number_like(tag, value):
            return "*" * len(value)
        return None
    if tag in _PAN_TAGS:
        return mask_pan(cn_digits(value))
    if tag in _TRACK2_TAGS:
        return mask_track2(value)
    if tag in _TRACK1_TAGS:
        return mask_track1(value)
    return "*" * len(value)


def _printable(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def display_value(tag: int, value: bytes) -> str:
    """Masked text for a sensitive tag, text for a printable a/an/ans value, else hex."""
    masked = mask_value(tag, value)
    if masked is not None:
        return masked
    if tags.format_of(tag) in _TEXT_FORMATS:
        text = value.decode("latin-1")
        if _printable(text):
            return text
    return value.hex().upper()


def display_tags(data: Mapping[int, bytes]) -> dict[str, str]:
    """A tag dictionary for display: tag hex -> value (masked where sensitive)."""
    return {f"{tag:X}": display_value(tag, value) for tag, value in data.items()}


def _render(data: bytes, depth: int) -> str:
    if depth > _MAX_DISPLAY_DEPTH:
        raise TlvError("templates nested too deep to display", 0)
    parts: list[str] = []
    for obj in iter_tlv(data):
        header = (encode_tag(obj.tag) + encode_length(len(obj.value))).hex().upper()
        masked = mask_value(obj.tag, obj.value)
        if masked is not None:
            parts.append(f"{header}[{masked}]")
        elif tag_is_constructed(obj.tag):
            parts.append(header + _render(obj.value, depth + 1))
        else:
            parts.append(header + obj.value.hex().upper())
    return "".join(parts)


def display_tlv(data: bytes) -> str:
    """Response data for display: TLV hex with sensitive values shown masked in brackets.

    Data that does not parse as TLV is withheld and shown by its length
    only. '00' filler between objects is dropped.
    """
    if not data:
        return ""
    try:
        return _render(data, 0)
    except TlvError:
        return f"<{len(data)} bytes withheld: not TLV>"


def display_command(apdu: bytes) -> str:
    """A command APDU in hex, with the data of PIN-bearing commands withheld."""
    if len(apdu) > 5 and apdu[1] in PIN_BEARING_INS:
        return apdu[:5].hex().upper() + f"<{apdu[4]} bytes of PIN data withheld>"
    return apdu.hex().upper()
