"""The card side's BER-TLV codec (sim/tlv.py), against ISO 8825 / EMV Book 3 Annex B encodings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import tlv
from sim.errors import TlvError

# A PSE FCI as cards send it (EMV Book 1 11.3.4): 6F { 84 '1PAY.SYS.DDF01', A5 { 88 01, 5F2D 'en' } }.
PSE_FCI = bytes.fromhex("6F1A840E315041592E5359532E4444463031A5088801015F2D02656E")


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"), (0x1234, "821234")],
)
def test_length_forms_follow_ber(length: int, encoded: str) -> None:
    assert tlv.encode_length(length) == bytes.fromhex(encoded)


@pytest.mark.parametrize(
    ("tag", "encoded"), [(0x5A, "5A"), (0x9F36, "9F36"), (0xBF0C, "BF0C"), (0x5F2D, "5F2D")]
)
def test_tags_encode_big_endian(tag: int, encoded: str) -> None:
    assert tlv.encode_tag(tag) == bytes.fromhex(encoded)


def test_constructed_bit_is_read_from_the_first_tag_byte() -> None:
    assert tlv.is_constructed(0x6F) and tlv.is_constructed(0xBF0C) and tlv.is_constructed(0x70)
    assert not tlv.is_constructed(0x9F36) and not tlv.is_constructed(0x5A)


def test_parse_and_find_in_a_pse_fci() -> None:
    [(tag, value)] = tlv.parse(PSE_FCI)
    assert tag == 0x6F
    assert tlv.find(PSE_FCI, 0x84) == b"1PAY.SYS.DDF01"
    assert tlv.find(PSE_FCI, 0x88) == b"\x01"
    assert tlv.find(PSE_FCI, 0x5F2D) == b"en"
    assert tlv.find(PSE_FCI, 0x9F38) is None
    assert tlv.encode(tag, value) == PSE_FCI


def test_padding_between_objects_is_skipped() -> None:
    assert tlv.parse(bytes.fromhex("00 5A0112 FF FF 9F360200 01")) == [(0x5A, b"\x12"), (0x9F36, b"\x00\x01")]


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        ("5A0512", 0),  # value runs past the end
        ("9F", 0),  # tag truncated
        ("5A", 1),  # length missing
        ("5A8301000000", 1),  # 3-byte length form
        ("5A82 01", 1),  # length truncated
        ("9F8181 01 00", 0),  # tag longer than 3 bytes
    ],
)
def test_malformed_tlv_names_the_offset(data: str, offset: int) -> None:
    with pytest.raises(TlvError) as caught:
        tlv.parse(bytes.fromhex(data))
    assert caught.value.offset == offset
    assert f"offset {offset}" in str(caught.value)


def test_visa_cdol1_as_a_dol() -> None:
    cdol1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F3704")
    assert tlv.parse_dol(cdol1) == [
        (0x9F02, 6),
        (0x9F03, 6),
        (0x9F1A, 2),
        (0x95, 5),
        (0x5F2A, 2),
        (0x9A, 3),
        (0x9C, 1),
        (0x9F37, 4),
    ]
    assert tlv.dol_length(cdol1) == 29
    values = tlv.split_dol_data(cdol1, bytes(range(29)))
    assert values[0x95] == bytes(range(14, 19))
    assert values[0x9F37] == bytes(range(25, 29))
    with pytest.raises(TlvError):
        tlv.split_dol_data(cdol1, bytes(28))


_TAGS = st.sampled_from([0x5A, 0x57, 0x82, 0x94, 0x9F36, 0x9F10, 0x5F2D, 0x9F4B, 0xDF8101])


@settings(max_examples=60)
@given(st.lists(st.tuples(_TAGS, st.binary(max_size=300)), max_size=6))
def test_encode_then_parse_gives_the_objects_back(items: list[tuple[int, bytes]]) -> None:
    assert tlv.parse(tlv.encode_all(items)) == items
