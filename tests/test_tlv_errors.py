"""BER-TLV errors keep the module's promise: every malformation is a TlvError,
and its offset counts from the start of the data handed in, whichever
function walked it (EMV 4.3 Book 3 Annex B)."""

from __future__ import annotations

import pytest

from firmware.emv import tlv
from firmware.errors import TlvError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize("tag", [-1, -0x9F02])
def test_encoding_a_negative_tag_is_a_tlv_error_naming_the_tag(tag: int) -> None:
    with pytest.raises(TlvError) as caught:
        tlv.encode_tag(tag)
    assert (caught.value.offset, caught.value.tag) == (0, tag)
    with pytest.raises(TlvError) as caught:
        tlv.encode(tag, b"")
    assert (caught.value.offset, caught.value.tag) == (0, tag)


@pytest.mark.parametrize("length", [-1, 0x1000000])
def test_a_length_ber_tlv_cannot_carry_is_a_tlv_error(length: int) -> None:
    with pytest.raises(TlvError) as caught:
        tlv.encode_length(length)
    assert (caught.value.offset, caught.value.tag) == (0, None)


def test_encoding_a_value_too_long_names_its_tag() -> None:
    with pytest.raises(TlvError) as caught:
        tlv.encode(0x9F10, bytes(0x1000000))
    assert (caught.value.offset, caught.value.tag) == (0, 0x9F10)


def test_the_largest_lengths_still_encode() -> None:
    assert tlv.encode_length(0xFFFFFF) == h("83FFFFFF")
    assert tlv.encode_tag(0) == h("00")


# 9F02 01 FF | E0 03 | 9F03 05: the amount other inside the template claims
# five bytes and has none. It starts at offset 6 of the data.
BROKEN_INSIDE_A_TEMPLATE = h("9F0201FF E003 9F0305")


def test_find_and_flatten_name_the_same_absolute_offset() -> None:
    with pytest.raises(TlvError) as flattened:
        list(tlv.flatten(BROKEN_INSIDE_A_TEMPLATE))
    with pytest.raises(TlvError) as found:
        tlv.find(BROKEN_INSIDE_A_TEMPLATE, 0x9F03)
    assert (flattened.value.offset, flattened.value.tag) == (6, 0x9F03)
    assert (found.value.offset, found.value.tag) == (6, 0x9F03)


def test_find_counts_from_a_base_offset_as_flatten_does() -> None:
    with pytest.raises(TlvError) as flattened:
        list(tlv.flatten(BROKEN_INSIDE_A_TEMPLATE, base_offset=100))
    with pytest.raises(TlvError) as found:
        tlv.find(BROKEN_INSIDE_A_TEMPLATE, 0x5A, base_offset=100)
    assert flattened.value.offset == found.value.offset == 106


def test_find_stops_at_the_first_match_before_a_later_malformation() -> None:
    assert tlv.find(BROKEN_INSIDE_A_TEMPLATE, 0x9F02) == h("FF")


def test_too_deep_nesting_names_the_same_offset_in_find_and_flatten() -> None:
    data = h("5A0112")
    for _ in range(tlv.MAX_DEPTH + 1):
        data = tlv.encode(0xE1, data)
    data = h("9F360200 01") + data
    with pytest.raises(TlvError) as flattened:
        list(tlv.flatten(data))
    with pytest.raises(TlvError) as found:
        tlv.find(data, 0x5A)
    assert flattened.value.offset == found.value.offset > 0
    assert data[flattened.value.offset :] == h("5A0112")


# E0 81 03 | 9F03 05: the template's length in the long form although 3 fits
# in one byte (Book 3 Annex B allows it); the broken object is at offset 3.
LONG_FORM_LENGTH = h("E08103 9F0305")


def test_offsets_below_a_template_count_its_length_as_encoded() -> None:
    with pytest.raises(TlvError) as flattened:
        list(tlv.flatten(LONG_FORM_LENGTH))
    with pytest.raises(TlvError) as found:
        tlv.find(LONG_FORM_LENGTH, 0x5A)
    with pytest.raises(TlvError) as children:
        tlv.parse_one(LONG_FORM_LENGTH).children()
    assert flattened.value.offset == found.value.offset == children.value.offset == 3


def test_children_offsets_with_a_long_form_length() -> None:
    data = h("7081 05 5A03123456")
    (child,) = tlv.parse_one(data, 0x70).children()
    assert [obj.offset for obj in tlv.flatten(data)] == [child.offset] == [3]
    assert data[child.offset :] == h("5A03123456")
