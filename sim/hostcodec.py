"""The simulated acquirer's own ISO 8583 codec (hand-written; shares nothing with the terminal).

Only the fields the host reads or answers. Layout on the wire: TPDU (5) +
message header (6) + message type (2 BCD bytes) + bitmap (8 bytes, 16 when a
field above 64 is present) + fields in ascending order. Numeric (``n``) and
track (``z``) fields are packed BCD; variable lengths are BCD counts of digits
for ``n``/``z`` fields and of bytes otherwise (1 byte for LL, 2 for LLL).
Fixed odd-length numeric fields are right-aligned (a leading 0 nibble) except
field 22, which is left-aligned; variable numeric fields are left-aligned (a
trailing 0 nibble). Text fields are ASCII (63: GBK), binary fields raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sim.errors import HostCodecError

__all__ = [
    "FIELDS",
    "FieldFormat",
    "HostMessage",
    "decode",
    "encode",
    "mac_block",
]

_TPDU_LEN: Final = 5
_HEADER_LEN: Final = 6
_MTI_AT: Final = _TPDU_LEN + _HEADER_LEN
_MAC_LEN: Final = 8


@dataclass(frozen=True)
class FieldFormat:
    kind: str  # "n" numeric BCD, "z" track BCD (digits and D), "an" text, "b" binary
    length: int  # the fixed length, or the maximum (digits for n/z, else bytes)
    length_bytes: int = 0  # 0 fixed, 1 LLVAR, 2 LLLVAR
    left_aligned: bool = False
    encoding: str = "ascii"


FIELDS: Final[dict[int, FieldFormat]] = {
    2: FieldFormat("n", 19, 1),
    3: FieldFormat("n", 6),
    4: FieldFormat("n", 12),
    11: FieldFormat("n", 6),
    12: FieldFormat("n", 6),
    13: FieldFormat("n", 4),
    14: FieldFormat("n", 4),
    15: FieldFormat("n", 4),
    22: FieldFormat("n", 3, left_aligned=True),
    23: FieldFormat("n", 3),
    25: FieldFormat("n", 2),
    26: FieldFormat("n", 2),
    32: FieldFormat("n", 11, 1),
    35: FieldFormat("z", 37, 1),
    36: FieldFormat("z", 104, 2),
    37: FieldFormat("an", 12),
    38: FieldFormat("an", 6),
    39: FieldFormat("an", 2),
    41: FieldFormat("an", 8),
    42: FieldFormat("an", 15),
    44: FieldFormat("an", 25, 1),
    48: FieldFormat("n", 322, 2),
    49: FieldFormat("an", 3),
    52: FieldFormat("b", 8),
    53: FieldFormat("n", 16),
    54: FieldFormat("an", 20, 2),
    55: FieldFormat("b", 255, 2),
    58: FieldFormat("an", 100, 2),
    59: FieldFormat("an", 999, 2),
    60: FieldFormat("n", 32, 2),
    61: FieldFormat("n", 29, 2),
    62: FieldFormat("b", 999, 2),
    63: FieldFormat("an", 163, 2, encoding="gbk"),
    64: FieldFormat("b", 8),
    90: FieldFormat("n", 42),
    128: FieldFormat("b", 8),
}


@dataclass
class HostMessage:
    """One message: type, fields (text/numeric as str, binary as bytes), TPDU and header."""

    mti: str
    fields: dict[int, str | bytes] = field(default_factory=dict)
    tpdu: bytes = bytes.fromhex("6000000000")
    header: bytes = bytes.fromhex("603100310000")

    def text(self, number: int, default: str = "") -> str:
        value = self.fields.get(number, default)
        if not isinstance(value, str):
            raise HostCodecError(number, 0, "expected a text field")
        return value

    def raw(self, number: int) -> bytes:
        value = self.fields.get(number, b"")
        if not isinstance(value, bytes):
            raise HostCodecError(number, 0, "expected a binary field")
        return value


def _bcd_length(count: int, width: int, number: int) -> bytes:
    digits = f"{count:0{2 * width}d}"
    if len(digits) > 2 * width:
        raise HostCodecError(number, 0, f"length {count} does not fit")
    return bytes.fromhex(digits)


def _encode_field(number: int, fmt: FieldFormat, value: str | bytes) -> bytes:
    if fmt.kind in ("n", "z"):
        if not isinstance(value, str):
            raise HostCodecError(number, 0, "numeric field needs a str")
        allowed = "0123456789" + ("D" if fmt.kind == "z" else "")
        if any(c not in allowed for c in value):
            raise HostCodecError(number, 0, "non-numeric data")
        count = len(value)
        if fmt.length_bytes == 0 and count != fmt.length:
            raise HostCodecError(number, 0, f"needs {fmt.length} digits, got {count}")
        if count % 2:
            value = value + "0" if (fmt.left_aligned or fmt.length_bytes) else "0" + value
        body = bytes.fromhex(value)
    elif fmt.kind == "an":
        if not isinstance(value, str):
            raise HostCodecError(number, 0, "text field needs a str")
        body = value.encode(fmt.encoding)
        count = len(body)
        if fmt.length_bytes == 0 and count != fmt.length:
            raise HostCodecError(number, 0, f"needs {fmt.length} characters, got {count}")
    else:
        if not isinstance(value, bytes):
            raise HostCodecError(number, 0, "binary field needs bytes")
        body = value
        count = len(body)
        if fmt.length_bytes == 0 and count != fmt.length:
            raise HostCodecError(number, 0, f"needs {fmt.length} bytes, got {count}")
    if fmt.length_bytes == 0:
        return body
    if count > fmt.length:
        raise HostCodecError(number, 0, f"{count} is over the maximum {fmt.length}")
    return _bcd_length(count, fmt.length_bytes, number) + body


def encode(message: HostMessage) -> bytes:
    """Wire bytes of one message (without the 2-byte frame length)."""
    if len(message.tpdu) != _TPDU_LEN or len(message.header) != _HEADER_LEN:
        raise HostCodecError(0, 0, "TPDU must be 5 bytes and the header 6")
    if len(message.mti) != 4 or not message.mti.isdigit():
        raise HostCodecError(0, _MTI_AT, "message type must be 4 digits")
    numbers = sorted(message.fields)
    unknown = [n for n in numbers if n not in FIELDS]
    if unknown:
        raise HostCodecError(unknown[0], 0, "field not in the host's message set")
    secondary = any(n > 64 for n in numbers)
    bitmap = bytearray(16 if secondary else 8)
    if secondary:
        bitmap[0] |= 0x80
    for n in numbers:
        bitmap[(n - 1) // 8] |= 0x80 >> ((n - 1) % 8)
    body = b"".join(_encode_field(n, FIELDS[n], message.fields[n]) for n in numbers)
    return message.tpdu + message.header + bytes.fromhex(message.mti) + bytes(bitmap) + body


def _take(data: bytes, at: int, count: int, number: int) -> bytes:
    if at + count > len(data):
        raise HostCodecError(number, at, f"needs {count} bytes, {len(data) - at} left")
    return data[at : at + count]


def _bcd_digits(raw: bytes, number: int, at: int, allowed: str) -> str:
    digits = raw.hex().upper()
    if any(c not in allowed for c in digits):
        raise HostCodecError(number, at, "not BCD")
    return digits


def _decode_field(data: bytes, at: int, number: int, fmt: FieldFormat) -> tuple[str | bytes, int]:
    count = fmt.length
    if fmt.length_bytes:
        raw_length = _take(data, at, fmt.length_bytes, number)
        count = int(_bcd_digits(raw_length, number, at, "0123456789"))
        if count > fmt.length:
            raise HostCodecError(number, at, f"length {count} is over the maximum {fmt.length}")
        at += fmt.length_bytes
    if fmt.kind in ("n", "z"):
        raw = _take(data, at, (count + 1) // 2, number)
        allowed = "0123456789" + ("D" if fmt.kind == "z" else "")
        digits = _bcd_digits(raw, number, at, allowed)
        if count % 2:
            pad_at_end = fmt.left_aligned or bool(fmt.length_bytes)
            pad = digits[-1] if pad_at_end else digits[0]
            if pad != "0":
                raise HostCodecError(number, at, "pad nibble is not 0")
            digits = digits[:-1] if pad_at_end else digits[1:]
        return digits, at + len(raw)
    raw = _take(data, at, count, number)
    if fmt.kind == "b":
        return raw, at + count
    try:
        return raw.decode(fmt.encoding), at + count
    except UnicodeDecodeError:
        raise HostCodecError(number, at, f"not {fmt.encoding} text") from None


def decode(data: bytes) -> HostMessage:
    """Parse one message; raises HostCodecError with the field number and offset where it broke."""
    tpdu = _take(data, 0, _TPDU_LEN, 0)
    header = _take(data, _TPDU_LEN, _HEADER_LEN, 0)
    mti = _bcd_digits(_take(data, _MTI_AT, 2, 0), 0, _MTI_AT, "0123456789")
    at = _MTI_AT + 2
    bitmap = _take(data, at, 8, 1)
    if bitmap[0] & 0x80:
        bitmap += _take(data, at + 8, 8, 1)
    at += len(bitmap)
    numbers = [i + 1 for i in range(len(bitmap) * 8) if bitmap[i // 8] & (0x80 >> (i % 8)) and i != 0]
    message = HostMessage(mti, tpdu=tpdu, header=header)
    for n in numbers:
        fmt = FIELDS.get(n)
        if fmt is None:
            raise HostCodecError(n, at, "field not in the host's message set")
        message.fields[n], at = _decode_field(data, at, n, fmt)
    if at != len(data):
        last = numbers[-1] if numbers else 1
        raise HostCodecError(last, at, f"{len(data) - at} bytes after the last field")
    return message


def mac_block(data: bytes) -> bytes:
    """The bytes a MAC covers: from the message type to just before the MAC (field 64 or 128, last)."""
    return data[_MTI_AT:-_MAC_LEN]
