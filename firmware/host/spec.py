"""The acquirer message set: a China UnionPay-style POS ISO 8583 (1987, BCD) spec.

The packager only (jPOS style): message dict <-> bytes, no sockets here. One
packed message is the TPDU (5 bytes), the message header (6 bytes), the
message type (4 BCD digits), a binary bitmap (a secondary one when a field
above 64 is present) and the fields in order. The 2-byte length prefix
around it belongs to the channel.

A message is a ``dict[str, str]`` in pyiso8583's convention: ``"t"`` the
message type, ``"2"`` .. ``"128"`` the fields, binary fields (52, 55, 62,
64, 128) as upper-case hex strings. ``"tpdu"`` and ``"header"`` (hex) are
optional on packing and always present after unpacking; the bitmaps are
derived, never given.

Numeric fields are BCD, variable lengths are BCD counts (digits for ``n``
and ``z`` fields, bytes otherwise). As in the UnionPay POS field rules, odd
fixed ``n`` fields are right-aligned (left pad 0) except field 22, which is
left-aligned, and variable ``n``/``z`` fields are left-aligned (right pad 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from firmware.errors import MessageFieldError

__all__ = [
    "DEFAULT_HEADER",
    "DEFAULT_TPDU",
    "FIELD_NAMES",
    "SPEC",
    "IsoMessage",
    "message_offset",
    "pack",
    "swap_tpdu",
    "unpack",
]

IsoMessage = dict[str, str]

DEFAULT_TPDU: Final = bytes.fromhex("6000000000")
# application 60, software version 31, terminal status 0 / no processing request, sub-version 310000
DEFAULT_HEADER: Final = bytes.fromhex("603100310000")
_TPDU_LEN: Final = 5
_HEADER_LEN: Final = 6
_MTI_OFFSET: Final = _TPDU_LEN + _HEADER_LEN

_FieldSpec = dict[str, Any]


def _n(desc: str, digits: int, *, align_left: bool = False) -> _FieldSpec:
    spec: _FieldSpec = {
        "data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": digits,
        "len_count": "nibbles", "desc": desc,
    }
    if digits % 2:
        spec["right_pad" if align_left else "left_pad"] = "0"
    return spec


def _n_var(desc: str, max_digits: int, len_bytes: int) -> _FieldSpec:
    return {
        "data_enc": "b", "len_enc": "bcd", "len_type": len_bytes, "max_len": max_digits,
        "len_count": "nibbles", "right_pad": "0", "desc": desc,
    }


def _text(desc: str, length: int, encoding: str = "ascii") -> _FieldSpec:
    return {"data_enc": encoding, "len_enc": "bcd", "len_type": 0, "max_len": length, "desc": desc}


def _text_var(desc: str, max_len: int, len_bytes: int, encoding: str = "ascii") -> _FieldSpec:
    return {"data_enc": encoding, "len_enc": "bcd", "len_type": len_bytes, "max_len": max_len, "desc": desc}


def _binary(desc: str, length: int) -> _FieldSpec:
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": length, "desc": desc}


def _binary_var(desc: str, max_len: int) -> _FieldSpec:
    return {"data_enc": "b", "len_enc": "bcd", "len_type": 2, "max_len": max_len, "desc": desc}


_LL: Final = 1
_LLL: Final = 2

SPEC: Final[Mapping[str, Mapping[str, Any]]] = {
    "h": _binary("TPDU + message header", _TPDU_LEN + _HEADER_LEN),
    "t": {"data_enc": "b", "len_enc": "bcd", "len_type": 0, "max_len": 2, "desc": "Message type"},
    "p": _binary("Primary bitmap", 8),
    "1": _binary("Secondary bitmap", 8),
    "2": _n_var("Primary account number", 19, _LL),
    "3": _n("Processing code", 6),
    "4": _n("Amount, transaction", 12),
    "11": _n("System trace audit number", 6),
    "12": _n("Time, local transaction hhmmss", 6),
    "13": _n("Date, local transaction MMDD", 4),
    "14": _n("Date, expiration YYMM", 4),
    "15": _n("Date, settlement MMDD", 4),
    "22": _n("Point of service entry mode", 3, align_left=True),
    "23": _n("Card sequence number", 3),
    "25": _n("Point of service condition code", 2),
    "26": _n("Point of service PIN capture code", 2),
    "32": _n_var("Acquiring institution identification code", 11, _LL),
    "35": _n_var("Track 2 data", 37, _LL),
    "36": _n_var("Track 3 data", 104, _LLL),
    "37": _text("Retrieval reference number", 12),
    "38": _text("Authorization identification response", 6),
    "39": _text("Response code", 2),
    "41": _text("Card acceptor terminal identification", 8),
    "42": _text("Card acceptor identification code", 15),
    "44": _text_var("Additional response data", 25, _LL),
    "48": _n_var("Additional data - private", 322, _LLL),
    "49": _text("Currency code, transaction", 3),
    "52": _binary("PIN data", 8),
    "53": _n("Security related control information", 16),
    "54": _text_var("Additional amounts", 20, _LLL),
    "55": _binary_var("ICC system related data", 255),
    "58": _text_var("PBOC electronic data", 100, _LLL),
    "59": _text_var("Reserved private (terminal information)", 999, _LLL),
    "60": _n_var("Reserved private: type code, batch, network management code, ...", 32, _LLL),
    "61": _n_var("Original message: batch, trace, date, ...", 29, _LLL),
    "62": _binary_var("Reserved private (working keys, details)", 999),
    "63": _text_var("Reserved private (operator, card organisation, names)", 163, _LLL, "gbk"),
    "64": _binary("Message authentication code", 8),
    "90": _n("Original data elements", 42),
    "128": _binary("Message authentication code (with a secondary bitmap)", 8),
}

FIELD_NAMES: Final[Mapping[str, str]] = {k: v["desc"] for k, v in SPEC.items() if k.isdigit()}

_DATA_FIELDS: Final = frozenset(k for k in SPEC if k.isdigit() and k != "1")
_DIGITS: Final = frozenset("0123456789")
_TRACK_DIGITS: Final = frozenset("0123456789D")
_TRACK_FIELDS: Final = frozenset({"35", "36"})
_NUMERIC_FIELDS: Final = frozenset(
    k for k, v in SPEC.items() if k.isdigit() and v.get("len_count") == "nibbles" and k not in _TRACK_FIELDS
)


def message_offset() -> int:
    """Where the message type starts in a packed message (after TPDU and header)."""
    return _MTI_OFFSET


def swap_tpdu(tpdu: bytes) -> bytes:
    """The TPDU of an answer: the request's destination and source addresses swapped."""
    if len(tpdu) != _TPDU_LEN:
        raise MessageFieldError(f"TPDU must be {_TPDU_LEN} bytes, got {len(tpdu)}", "tpdu")
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def _check_content(field: str, value: str, offset: int | None = None) -> None:
    if field == "t" or field in _NUMERIC_FIELDS:
        allowed = _DIGITS
    elif field in _TRACK_FIELDS:
        allowed = _TRACK_DIGITS
    else:
        return
    if not set(value) <= allowed:
        raise MessageFieldError("non-numeric data in a numeric field", field, offset)


def _envelope(message: Mapping[str, str], key: str, default: bytes, length: int) -> str:
    value = message.get(key)
    if value is None:
        return default.hex().upper()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MessageFieldError(f"{key} is not hex", key) from None
    if len(raw) != length:
        raise MessageFieldError(f"{key} must be {length} bytes, got {len(raw)}", key)
    return raw.hex().upper()


def pack(message: Mapping[str, str]) -> bytes:
    """TPDU + header + message type + bitmap(s) + fields. Raises MessageFieldError naming the field."""
    doc: dict[str, str] = {
        "h": _envelope(message, "tpdu", DEFAULT_TPDU, _TPDU_LEN)
        + _envelope(message, "header", DEFAULT_HEADER, _HEADER_LEN)
    }
    for key, value in message.items():
        if key in ("tpdu", "header"):
            continue
        if key != "t" and key not in _DATA_FIELDS:
            raise MessageFieldError("field not in the message set", key)
        if not isinstance(value, str):
            raise MessageFieldError(f"field value must be str, got {type(value).__name__}", key)
        _check_content(key, value.upper() if key in _TRACK_FIELDS else value)
        doc[key] = value
    if "t" not in doc:
        raise MessageFieldError("message type missing", "t")
    try:
        encoded, _ = iso8583.encode(doc, SPEC)
    except EncodeError as error:
        raise MessageFieldError(error.msg, error.field) from None
    return bytes(encoded)


def _present_fields(data: bytes) -> list[int]:
    """The field numbers the bitmap(s) announce; only for checking them against the spec."""
    bitmap = data[_MTI_OFFSET + 2 : _MTI_OFFSET + 10]
    if len(bitmap) == 8 and bitmap[0] & 0x80:
        bitmap += data[_MTI_OFFSET + 10 : _MTI_OFFSET + 18]
    return [
        index * 8 + bit + 1
        for index, byte in enumerate(bitmap)
        for bit in range(8)
        if byte & (0x80 >> bit)
    ]


def unpack(data: bytes) -> IsoMessage:
    """Inverse of `pack`. Malformed bytes raise MessageFieldError naming the field and the offset."""
    for number in _present_fields(data):
        if number not in (1, 65) and str(number) not in _DATA_FIELDS:
            raise MessageFieldError(
                "bitmap announces a field not in the message set", str(number), _MTI_OFFSET + 2
            )
        if number == 65:
            raise MessageFieldError(
                "tertiary bitmaps are not used in this message set", "65", _MTI_OFFSET + 10
            )
    try:
        decoded, encoded = iso8583.decode(bytes(data), SPEC)
    except DecodeError as error:
        raise MessageFieldError(error.msg, error.field, error.pos) from None
    message: IsoMessage = {"tpdu": decoded["h"][: 2 * _TPDU_LEN], "header": decoded["h"][2 * _TPDU_LEN :]}
    offset = 0
    for key in ("h", "t", "p", "1", *sorted((k for k in decoded if k.isdigit() and k != "1"), key=int)):
        if key not in encoded:
            continue
        if key not in ("h", "p", "1"):
            _check_content(key, decoded[key], offset)
            message[key] = decoded[key]
        offset += len(encoded[key]["len"]) + len(encoded[key]["data"])
    return message
