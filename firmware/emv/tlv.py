"""BER-TLV as EMV uses it (Book 3 Annex B), and Data Object Lists (Book 3 5.4).

Pure functions over bytes. Tags are ints (0x9F02). Every malformation raises
TlvError with the offset where it broke (and the tag, when known), counted
from the start of the data handed in: `parse`, `flatten`, `find` and
`Tlv.children` agree on it. Encoding what BER-TLV cannot carry (a negative
tag, a length above 3 bytes) raises TlvError at offset 0 with the tag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from firmware.errors import TlvError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOL_DATA",
    "MAX_DOL_ENTRY",
    "Tlv",
    "build_dol",
    "dol_length",
    "encode",
    "encode_length",
    "encode_tag",
    "find",
    "flatten",
    "iter_tlv",
    "parse",
    "parse_dol",
    "parse_one",
    "tag_is_constructed",
]


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    offset: int = 0
    # Tag and length bytes as read: a length may be in a longer form than it
    # needs (Book 3 Annex B allows '81 05'). None for an object built here.
    header_length: int | None = field(default=None, compare=False, repr=False)

    @property
    def value_offset(self) -> int:
        """Where the value starts, counted as `offset` is."""
        header = self.header_length
        return self.offset + (header if header is not None else _header_length(self.tag, len(self.value)))

    @property
    def constructed(self) -> bool:
        return tag_is_constructed(self.tag)

    def children(self) -> list[Tlv]:
        if not self.constructed:
            raise TlvError("primitive data object has no children", self.offset, self.tag)
        return parse(self.value, base_offset=self.value_offset)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)


def tag_is_constructed(tag: int) -> bool:
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


def _read_tag(data: bytes, pos: int, base: int) -> tuple[int, int]:
    start = pos
    if pos >= len(data):
        raise TlvError("truncated tag", base + pos)
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos - start >= 4:
                raise TlvError("tag longer than 4 bytes", base + start)
            if pos >= len(data):
                raise TlvError("truncated multi-byte tag", base + start)
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if not byte & 0x80:
                break
    return tag, pos


def _read_length(data: bytes, pos: int, base: int, tag: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("missing length", base + pos, tag)
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 3:
        raise TlvError(f"unsupported length form {first:02X}", base + pos - 1, tag)
    if pos + count > len(data):
        raise TlvError("truncated length", base + pos - 1, tag)
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def iter_tlv(data: bytes, base_offset: int = 0) -> Iterator[Tlv]:
    """Yield the data objects of one level. '00' filler bytes between objects are skipped."""
    pos = 0
    while pos < len(data):
        if data[pos] == 0x00:
            pos += 1
            continue
        start = pos
        tag, pos = _read_tag(data, pos, base_offset)
        length, pos = _read_length(data, pos, base_offset, tag)
        if pos + length > len(data):
            raise TlvError(
                f"value of {length} bytes runs past the end ({len(data) - pos} left)",
                base_offset + start,
                tag,
            )
        yield Tlv(tag, bytes(data[pos : pos + length]), base_offset + start, pos - start)
        pos += length


def parse(data: bytes, base_offset: int = 0) -> list[Tlv]:
    return list(iter_tlv(data, base_offset))


def parse_one(data: bytes, expected_tag: int | None = None) -> Tlv:
    """Exactly one data object filling `data` (trailing '00' filler allowed)."""
    objects = parse(data)
    if len(objects) != 1:
        raise TlvError(f"expected one data object, found {len(objects)}", 0, expected_tag)
    obj = objects[0]
    if expected_tag is not None and obj.tag != expected_tag:
        raise TlvError(f"expected tag {expected_tag:X}", obj.offset, obj.tag)
    return obj


# Templates nest a few levels in EMV; a deeper nesting is malformed input
# and must not exhaust the interpreter's recursion limit.
MAX_DEPTH = 32


def _check_depth(depth: int, offset: int) -> None:
    if depth > MAX_DEPTH:
        raise TlvError(f"templates nested more than {MAX_DEPTH} deep", offset)


def flatten(data: bytes, base_offset: int = 0, _depth: int = 0) -> Iterator[Tlv]:
    """Every primitive object, descending into constructed ones (templates)."""
    _check_depth(_depth, base_offset)
    for obj in iter_tlv(data, base_offset):
        if obj.constructed:
            yield from flatten(obj.value, obj.value_offset, _depth + 1)
        else:
            yield obj


def find(data: bytes, tag: int, base_offset: int = 0, _depth: int = 0) -> bytes | None:
    """The value of the first object with `tag`, at any depth; None if absent.

    A malformation before the object is found raises TlvError with the same
    offset `flatten` gives: counted from the start of `data` (plus `base_offset`).
    """
    _check_depth(_depth, base_offset)
    for obj in iter_tlv(data, base_offset):
        if obj.tag == tag:
            return obj.value
        if obj.constructed:
            inner = find(obj.value, tag, obj.value_offset, _depth + 1)
            if inner is not None:
                return inner
    return None


def encode_tag(tag: int) -> bytes:
    """The tag's bytes; TlvError (offset 0) for a negative tag."""
    if tag < 0:
        raise TlvError("negative tag", 0, tag)
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """The shortest BER-TLV length field; TlvError (offset 0) for a length it cannot carry."""
    return _encode_length(length, None)


def _encode_length(length: int, tag: int | None) -> bytes:
    if length < 0:
        raise TlvError(f"negative length {length}", 0, tag)
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    if length <= 0xFFFFFF:
        return bytes([0x83]) + length.to_bytes(3, "big")
    raise TlvError(f"length {length} too large for BER-TLV", 0, tag)


def encode(tag: int, value: bytes) -> bytes:
    """One data object; TlvError (offset 0, the tag) when the tag or the length cannot be encoded."""
    return encode_tag(tag) + _encode_length(len(value), tag) + value


def _header_length(tag: int, length: int) -> int:
    return len(encode_tag(tag)) + len(encode_length(length))


# --- Data Object Lists ---------------------------------------------------

# The most data one DOL may ask for: a short command APDU's data field.
MAX_DOL_DATA = 255


# Book 3 5.4: a DOL entry's length is one byte. A card's DOL asking for more (a BER length
# up to 16 MB) would have the terminal build that much data before any command refuses it.
MAX_DOL_ENTRY: Final = 0xFF


def parse_dol(data: bytes, max_data: int = MAX_DOL_DATA) -> list[tuple[int, int]]:
    """A DOL is a list of (tag, length) with no values.

    The data it asks for goes in one command (GET PROCESSING OPTIONS, GENERATE
    AC, INTERNAL AUTHENTICATE) or one hash: an entry of more than 255 bytes
    (Book 3 5.4), or lengths adding up to more than `max_data` bytes (a short
    APDU's data field), is malformed, refused here before anything is built
    (TlvError at the entry that overflows).
    """
    entries: list[tuple[int, int]] = []
    total = 0
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_tag(data, pos, 0)
        length, pos = _read_length(data, pos, 0, tag)
        if length > MAX_DOL_ENTRY:
            raise TlvError(f"DOL entry asks for {length} bytes (at most {MAX_DOL_ENTRY})", start, tag)
        total += length
        if total > max_data:
            raise TlvError(f"DOL asks for more than {max_data} bytes of data", start, tag)
        entries.append((tag, length))
    return entries


def dol_length(dol: list[tuple[int, int]]) -> int:
    return sum(length for _, length in dol)


FormatOf = Callable[[int], str]


def _fit(value: bytes, length: int, fmt: str) -> bytes:
    """Book 3 5.4: fit a value to the length the DOL asks for (a zero length takes nothing)."""
    if length == 0:
        return b""
    if len(value) > length:
        return value[-length:] if fmt == "n" else value[:length]
    pad = length - len(value)
    if fmt == "n":
        return bytes(pad) + value
    if fmt == "cn":
        return value + b"\xff" * pad
    return value + bytes(pad)


def build_dol(
    dol: list[tuple[int, int]],
    source: Mapping[int, bytes],
    format_of: FormatOf,
) -> bytes:
    """Concatenate the values named by the DOL; a missing value gives zeros.

    A constructed tag in a DOL also gives zeros (Book 3 5.4). A DOL asking for
    more than MAX_DOL_DATA bytes is refused before anything is built (TlvError).
    """
    if dol_length(dol) > MAX_DOL_DATA or any(length < 0 for _, length in dol):
        raise TlvError(f"DOL asks for more than {MAX_DOL_DATA} bytes of data", 0)
    out = bytearray()
    for tag, length in dol:
        value = source.get(tag)
        if value is None or tag_is_constructed(tag):
            out += bytes(length)
        else:
            out += _fit(value, length, format_of(tag))
    return bytes(out)
