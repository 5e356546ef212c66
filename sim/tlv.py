"""A small BER-TLV codec for the card side (EMV Book 3 Annex B).

Deliberately independent from the terminal's codec: the card and the
terminal are the two ends of the wire, and sharing a parser would let one
bug hide itself on both sides. Tags are ints (0x9F36); values are bytes.
"""

from __future__ import annotations

from collections.abc import Iterable

from sim.errors import TlvError

__all__ = [
    "dol_length",
    "encode",
    "encode_all",
    "encode_length",
    "encode_tag",
    "find",
    "is_constructed",
    "parse",
    "parse_dol",
    "parse_to_dict",
    "split_dol_data",
]


def is_constructed(tag: int) -> bool:
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


def encode_tag(tag: int) -> bytes:
    if tag < 0 or tag > 0xFFFFFF:
        raise TlvError("tag out of range", 0, tag)
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise TlvError(f"length {length} too long for a card", 0)


def encode(tag: int, value: bytes) -> bytes:
    return encode_tag(tag) + encode_length(len(value)) + value


def encode_all(items: Iterable[tuple[int, bytes]]) -> bytes:
    return b"".join(encode(tag, value) for tag, value in items)


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    if pos >= len(data):
        raise TlvError("truncated tag", pos)
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError("truncated multi-byte tag", start)
            tag = (tag << 8) | data[pos]
            pos += 1
            if not data[pos - 1] & 0x80:
                break
            if pos - start >= 3:
                raise TlvError("tag longer than 3 bytes", start)
    return tag, pos


def _read_length(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("missing length", pos, tag)
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 2:
        raise TlvError(f"unsupported length form {first:02X}", pos - 1, tag)
    if pos + count > len(data):
        raise TlvError("truncated length", pos - 1, tag)
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """The top-level (tag, value) pairs of `data`; 00 and FF padding between objects is skipped."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos, tag)
        if pos + length > len(data):
            raise TlvError(f"value of {length} bytes runs past the end", start, tag)
        items.append((tag, data[pos : pos + length]))
        pos += length
    return items


def parse_to_dict(data: bytes) -> dict[int, bytes]:
    """Top-level objects as a dict (the last one wins if a tag repeats)."""
    return dict(parse(data))


def find(data: bytes, tag: int) -> bytes | None:
    """The value of the first object `tag`, searching constructed objects depth first."""
    for item_tag, value in parse(data):
        if item_tag == tag:
            return value
        if is_constructed(item_tag):
            found = find(value, tag)
            if found is not None:
                return found
    return None


def parse_dol(dol: bytes) -> list[tuple[int, int]]:
    """A Data Object List: (tag, length) pairs, no values (Book 3 5.4)."""
    entries: list[tuple[int, int]] = []
    pos = 0
    while pos < len(dol):
        tag, pos = _read_tag(dol, pos)
        length, pos = _read_length(dol, pos, tag)
        entries.append((tag, length))
    return entries


def dol_length(dol: bytes) -> int:
    return sum(length for _, length in parse_dol(dol))


def split_dol_data(dol: bytes, data: bytes) -> dict[int, bytes]:
    """Cut DOL-related data into its values by tag; the length must match exactly."""
    expected = dol_length(dol)
    if len(data) != expected:
        raise TlvError(f"DOL data is {len(data)} bytes, the DOL asks for {expected}", 0)
    values: dict[int, bytes] = {}
    pos = 0
    for tag, length in parse_dol(dol):
        values[tag] = data[pos : pos + length]
        pos += length
    return values
