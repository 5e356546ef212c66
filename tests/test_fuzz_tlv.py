"""Fuzzing BER-TLV and Data Object Lists (firmware/emv/tlv.py, EMV Book 3 Annex B and 5.4).

Random bytes, and well-formed trees with a few bytes damaged, go through `parse`,
`flatten`, `find`, `parse_one`, `Tlv.children` and `parse_dol` + `build_dol`:
TlvError is the only error, each input is bounded in time and memory, the
offsets the parser reports point at the bytes it returns, and a well-formed
tree encodes back to the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware.emv import tags, tlv
from tests.fuzz_targets import bounded, fuzz_settings

_PRIMITIVE_TAGS = st.sampled_from([0x5A, 0x57, 0x82, 0x94, 0x8C, 0x9F02, 0x9F37, 0x5F24, 0x9F4B, 0xDF8101])
_CONSTRUCTED_TAGS = st.sampled_from([0x70, 0x77, 0x6F, 0xA5, 0xBF0C, 0x61])


def _tree(depth: int) -> st.SearchStrategy[bytes]:
    primitive = st.builds(tlv.encode, _PRIMITIVE_TAGS, st.binary(max_size=140))
    if depth == 0:
        return primitive
    constructed = st.builds(
        lambda tag, children: tlv.encode(tag, b"".join(children)),
        _CONSTRUCTED_TAGS,
        st.lists(_tree(depth - 1), max_size=3),
    )
    return primitive | constructed


well_formed = st.lists(_tree(3), min_size=1, max_size=4).map(b"".join)


@st.composite
def damaged(draw: Callable[[st.SearchStrategy[Any]], Any], source: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.integers(0, 4))
        if kind == 0 and data:
            data[at] = draw(st.sampled_from([0x00, 0x1F, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFF]))
        elif kind == 1 and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
        else:
            data[at:at] = bytes([0x70, 0x80]) * draw(st.integers(1, 60))  # deep nesting, indefinite
    return bytes(data)


tlv_inputs = st.binary(max_size=400) | damaged(well_formed) | well_formed


def _walk(data: bytes) -> None:
    objects = tlv.parse(data, base_offset=7)
    for obj in objects:
        start = obj.value_offset - 7
        assert data[start : start + len(obj.value)] == obj.value, obj
        if obj.constructed:
            for child in obj.children():
                at = child.value_offset - 7
                assert data[at : at + len(child.value)] == child.value, child
    flat = list(tlv.flatten(data))
    for obj in flat:
        assert data[obj.value_offset : obj.value_offset + len(obj.value)] == obj.value, obj
    if flat:
        assert tlv.find(data, flat[0].tag) is not None
    tlv.find(data, 0xDF8101)
    tlv.parse_one(data)


@fuzz_settings(400)
@given(tlv_inputs)
def test_tlv_parsing_raises_only_tlv_errors(data: bytes) -> None:
    outcome = bounded("tlv", lambda: _walk(data))
    assert outcome in (None, "TlvError"), outcome


@fuzz_settings(200)
@given(well_formed)
def test_well_formed_tlv_encodes_back_to_the_same_bytes(data: bytes) -> None:
    def again() -> bytes:
        return b"".join(obj.encode() for obj in tlv.parse(data))

    assert bounded("tlv round trip", again) == data


_DOL_TAGS = st.sampled_from(
    [0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x9F35, 0x70, 0x8A, 0x9F45]
)


def _dol_entry(tag: int, length: int) -> bytes:
    return tlv.encode_tag(tag) + tlv.encode_length(length)


dol_inputs = (
    st.binary(max_size=120)
    | st.lists(st.builds(_dol_entry, _DOL_TAGS, st.integers(0, 0xFFFFFF)), max_size=40).map(b"".join)
    | damaged(st.lists(st.builds(_dol_entry, _DOL_TAGS, st.integers(0, 32)), max_size=20).map(b"".join))
)
_SOURCE = {
    0x9F02: bytes.fromhex("000000001234"),
    0x9F1A: b"\x01\x56",
    0x9F37: b"\x11\x22\x33\x44",
    0x8A: b"00",
}


@fuzz_settings(400)
@given(dol_inputs)
def test_dol_parsing_and_building_is_bounded(dol: bytes) -> None:
    """A card's PDOL/CDOL/DDOL/TDOL: at most 255 bytes per entry, whatever the card claims."""

    def build() -> bytes:
        entries = tlv.parse_dol(dol)
        data = tlv.build_dol(entries, _SOURCE, tags.format_of)
        assert len(data) == tlv.dol_length(entries) <= 255 * len(entries)
        return data

    outcome = bounded("dol", build)
    assert isinstance(outcome, bytes) or outcome == "TlvError", outcome
