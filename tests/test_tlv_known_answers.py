"""BER-TLV and DOL known answers from published EMV examples, plus properties
checked against an independent decoder (pyemv.tlv).

Sources of the vectors (cited where used):
[JER]  javaemvreader, "ExampleOutput" wiki page (emulated card trace),
       http://code.google.com/p/javaemvreader/wiki/ExampleOutput
[PBOC] "PBOC/EMV 指令流" trace with 61xx/6Cxx, http://www.javashuo.com/article/p-nfdedite-hp.html
[SO1]  Stack Overflow q. 30919084 "How do I interpret the response from GET PROCESSING OPTIONS?"
       (Visa Electron SELECT and GPO format 1)
[SO2]  Stack Overflow q. 54864327 "How to decode APDU GPO response wrapped in tag 77"
[AHF]  Ahmed Hemdan Farghaly, "EMV Application Specification :: Read Application Data" and
       ":: Application selection" (LinkedIn Pulse articles; record of PAN 5413330089020094)
DOL rules: EMV 4.3 Book 3 section 5.4.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyemv import tlv as pyemv_tlv

from firmware.emv import tags, tlv
from firmware.errors import TlvError
from tests.emv_fakes import h

# [JER] SELECT '1PAY.SYS.DDF01' response.
JER_PSE_FCI = h(
    "6f 20 84 0e 31 50 41 59 2e 53 59 53 2e 44 44 46 30 31 a5 0e 88 01 02 5f 2d 04 6e 6f 65 6e 9f 11 01 01"
)
# [JER] directory record 1 of SFI 2.
JER_DIR_RECORD_1 = h(
    "70 23 61 21 4f 07 a1 23 45 67 89 10 10 50 04 56 49 53 41 9f 12 0c 56 49 53 41 20 43 6c 61 73 73"
    " 69 63 87 01 02"
)
# [PBOC] SELECT PSE response data fetched with GET RESPONSE after '61 28'.
PBOC_PSE_FCI = h(
    "6F 26 84 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 14 88 01 01 5F 2D 02 7A 68 9F 11 01 01"
    " BF 0C 05 9F 4D 02 0B 0A"
)
# [SO1] SELECT A0000000032010 response (Visa Electron).
SO1_FCI = h(
    "6F 2C 84 07 A0 00 00 00 03 20 10 A5 21 50 0D 56 49 53 41 20 45 4C 45 43 54 52 4F 4E 87 01 01"
    " 5F 2D 04 62 67 65 6E BF 0C 05 9F 4D 02 0B 0A"
)
# [SO1] GPO response format 1, [SO2] GPO response format 2.
SO1_GPO_FORMAT1 = h("80 0A 1C 00 08 01 03 00 10 01 01 00")
SO2_GPO_FORMAT2 = h("7716820239009410100101011002020018010200200102009000")[:-2]
# [AHF] READ RECORD SFI 1 record 1.
AHF_RECORD = h(
    "70375A0854133300890200945F24032512315F25030401015F3401469F0702FF009F0D05FC50A000009F0E050000000000"
    "9F0F05F870A49800"
)


def test_pse_fci_from_javaemvreader() -> None:
    fci = tlv.parse_one(JER_PSE_FCI, 0x6F)
    children = fci.children()
    assert [c.tag for c in children] == [0x84, 0xA5]
    assert children[0].value == b"1PAY.SYS.DDF01"
    proprietary = {c.tag: c.value for c in children[1].children()}
    assert proprietary == {0x88: b"\x02", 0x5F2D: b"noen", 0x9F11: b"\x01"}
    assert tlv.find(JER_PSE_FCI, 0x88) == b"\x02"


def test_directory_record_from_javaemvreader() -> None:
    flat = {obj.tag: obj.value for obj in tlv.flatten(JER_DIR_RECORD_1)}
    assert flat == {
        0x4F: h("A1 23 45 67 89 10 10"),
        0x50: b"VISA",
        0x9F12: b"VISA Classic",
        0x87: b"\x02",
    }


def test_pboc_pse_fci_with_issuer_discretionary_data() -> None:
    assert tlv.find(PBOC_PSE_FCI, 0x88) == b"\x01"
    assert tlv.find(PBOC_PSE_FCI, 0x5F2D) == b"zh"
    assert tlv.find(PBOC_PSE_FCI, 0xBF0C) == h("9F4D020B0A")
    assert tlv.find(PBOC_PSE_FCI, 0x9F4D) == h("0B0A")


def test_visa_electron_fci_offsets() -> None:
    objects = list(tlv.flatten(SO1_FCI))
    by_tag = {obj.tag: obj for obj in objects}
    assert by_tag[0x84].value == h("A0000000032010")
    assert by_tag[0x50].value == b"VISA ELECTRON"
    assert by_tag[0x87].value == b"\x01"
    assert by_tag[0x5F2D].value == b"bgen"
    # Offsets count from the start of the response: 6F 2C | 84 07 ... at 2.
    assert by_tag[0x84].offset == 2
    assert by_tag[0x50].offset == 13
    assert by_tag[0x9F4D].offset == SO1_FCI.index(h("9F4D020B0A"))


def test_gpo_format1_and_format2_templates() -> None:
    one = tlv.parse_one(SO1_GPO_FORMAT1)
    assert (one.tag, one.value[:2], one.value[2:]) == (0x80, h("1C00"), h("08010300 10010100"))
    two = tlv.parse_one(SO2_GPO_FORMAT2, 0x77)
    assert {c.tag: c.value for c in two.children()} == {
        0x82: h("3900"),
        0x94: h("10010101 10020200 18010200 20010200"),
    }


def test_published_record_values() -> None:
    values = {obj.tag: obj.value for obj in tlv.parse_one(AHF_RECORD, 0x70).children()}
    assert values[0x5A] == h("5413330089020094")
    assert values[0x5F24] == h("251231")
    assert values[0x5F25] == h("040101")
    assert values[0x9F07] == h("FF00")
    assert values[0x9F0D] == h("FC50A00000")
    assert values[0x9F0F] == h("F870A49800")


def test_filler_bytes_are_skipped_between_objects() -> None:
    # Book 3 Annex B1: '00' bytes may occur before, between or after objects.
    data = h("00 5A 01 12 00 00 9F 36 02 00 01 00")
    assert [(o.tag, o.value) for o in tlv.parse(data)] == [(0x5A, h("12")), (0x9F36, h("0001"))]
    assert tlv.parse_one(h("70 03 5A 01 12 00 00"), 0x70).value == h("5A0112")


@pytest.mark.parametrize(
    ("data", "offset", "tag"),
    [
        (h("9F"), 0, None),  # multi-byte tag cut short
        (h("5A"), 1, 0x5A),  # no length
        (h("5A 05 12 34"), 0, 0x5A),  # value runs past the end
        (h("70 81"), 1, 0x70),  # long length form cut short
        (h("70 84 00 00 00 01 00"), 1, 0x70),  # 4 length bytes: not BER-TLV as EMV uses it
        (h("70 80 00 00"), 1, 0x70),  # indefinite length
        (h("5A 01 12 9F 36 05 00"), 3, 0x9F36),  # second object broken: its own offset
        (h("9F FF FF FF 01 00"), 0, None),  # tag longer than four bytes
    ],
)
def test_malformed_tlv_names_the_offset(data: bytes, offset: int, tag: int | None) -> None:
    with pytest.raises(TlvError) as caught:
        tlv.parse(data)
    assert caught.value.offset == offset
    assert caught.value.tag == tag


def test_four_byte_tag_is_accepted() -> None:
    assert tlv.parse(h("9F FF FF 01 01 AA")) == [tlv.Tlv(0x9FFFFF01, h("AA"), 0)]


def test_parse_one_refuses_two_objects_or_a_wrong_tag() -> None:
    with pytest.raises(TlvError):
        tlv.parse_one(h("5A0112 5A0112"))
    with pytest.raises(TlvError) as caught:
        tlv.parse_one(h("77 00"), 0x80)
    assert caught.value.tag == 0x77


def test_nesting_deeper_than_the_limit_is_an_error_not_a_recursion_error() -> None:
    data = h("5A0112")
    for _ in range(tlv.MAX_DEPTH + 5):
        data = tlv.encode(0xE1, data)
    with pytest.raises(TlvError):
        list(tlv.flatten(data))
    with pytest.raises(TlvError):
        tlv.find(data, 0x5A)


def test_children_offsets_point_into_the_outer_data() -> None:
    outer = tlv.parse_one(AHF_RECORD, 0x70)
    for child in outer.children():
        header = tlv.encode_tag(child.tag) + tlv.encode_length(len(child.value))
        assert (
            AHF_RECORD[child.offset : child.offset + len(header) + len(child.value)] == header + child.value
        )


def test_length_encodings() -> None:
    assert tlv.encode_length(0x7F) == h("7F")
    assert tlv.encode_length(0x80) == h("8180")
    assert tlv.encode_length(0xFF) == h("81FF")
    assert tlv.encode_length(0x100) == h("820100")
    assert tlv.encode(0x9F38, bytes(0x81))[:4] == h("9F388181")


# --- DOL (Book 3 5.4) ------------------------------------------------------


def test_parse_dol_of_a_published_cdol() -> None:
    # CDOL1 of a Visa card as printed in many traces: amount, other amount,
    # country, TVR, currency, date, type, unpredictable number.
    cdol = h("9F02069F03069F1A0295055F2A029A039C019F3704")
    assert tlv.parse_dol(cdol) == [
        (0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1), (0x9F37, 4),
    ]  # fmt: skip
    assert tlv.dol_length(tlv.parse_dol(cdol)) == 29


def test_dol_numeric_is_left_padded_and_left_truncated() -> None:
    amount = h("000000012345")  # 9F02 n12
    assert tlv.build_dol([(0x9F02, 8)], {0x9F02: amount}, tags.format_of) == h("0000000000012345")
    assert tlv.build_dol([(0x9F02, 3)], {0x9F02: amount}, tags.format_of) == h("012345")


def test_dol_compressed_numeric_is_right_padded_with_f_and_right_truncated() -> None:
    pan = h("5413330089020094")  # 5A cn
    assert tlv.build_dol([(0x5A, 10)], {0x5A: pan}, tags.format_of) == h("5413330089020094FFFF")
    assert tlv.build_dol([(0x5A, 4)], {0x5A: pan}, tags.format_of) == h("54133300")


def test_dol_other_formats_are_right_padded_with_zeros_and_right_truncated() -> None:
    terminal_id = b"TERM0001"  # 9F1C an8
    assert tlv.build_dol([(0x9F1C, 10)], {0x9F1C: terminal_id}, tags.format_of) == b"TERM0001\x00\x00"
    assert tlv.build_dol([(0x9F1C, 4)], {0x9F1C: terminal_id}, tags.format_of) == b"TERM"
    assert tlv.build_dol([(0x9F37, 6)], {0x9F37: h("A1B2C3D4")}, tags.format_of) == h("A1B2C3D40000")
    assert tlv.build_dol([(0x9F37, 2)], {0x9F37: h("A1B2C3D4")}, tags.format_of) == h("A1B2")


def test_dol_missing_or_constructed_tags_give_zeros() -> None:
    dol = [(0x9F35, 1), (0x70, 3), (0x9F7F, 2)]
    source = {0x70: h("5A0112")}
    assert tlv.build_dol(dol, source, tags.format_of) == bytes(6)


def test_dol_values_in_order_of_a_visa_pdol() -> None:
    pdol = tlv.parse_dol(h("9F66049F02069F03069F1A0295055F2A029A039C019F3704"))
    source = {
        0x9F66: h("36004000"),
        0x9F02: h("000000001000"),
        0x9F1A: h("0156"),
        0x5F2A: h("0156"),
        0x9A: h("250601"),
        0x9C: h("00"),
        0x9F37: h("11223344"),
    }
    built = tlv.build_dol(pdol, source, tags.format_of)
    assert built == h("36004000 000000001000 000000000000 0156 0000000000 0156 250601 00 11223344")


# --- properties against pyemv's independent decoder ----------------------------

_primitive_tags = st.sampled_from([0x5A, 0x57, 0x82, 0x94, 0x9F36, 0x9F02, 0x5F24, 0x9F1F, 0xDF8101])
_constructed_tags = st.sampled_from([0x70, 0x77, 0xA5, 0xBF0C, 0xE1])


def _encode_tree(node: object) -> bytes:
    assert isinstance(node, tuple)
    tag, value = node
    if isinstance(value, list):
        return tlv.encode(tag, b"".join(_encode_tree(child) for child in value))
    return tlv.encode(tag, value)


_leaf = st.tuples(_primitive_tags, st.binary(max_size=300))
_tree = st.recursive(
    _leaf, lambda inner: st.tuples(_constructed_tags, st.lists(inner, max_size=4)), max_leaves=12
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_tree, max_size=4))
def test_parse_agrees_with_pyemv(trees: list[object]) -> None:
    data = b"".join(_encode_tree(tree) for tree in trees)
    ours: dict[str, object] = {}

    def build(objects: list[tlv.Tlv], into: dict[str, object]) -> None:
        for obj in objects:
            key = tlv.encode_tag(obj.tag).hex().upper()
            if obj.constructed:
                inner: dict[str, object] = {}
                build(obj.children(), inner)
                into[key] = inner
            else:
                into[key] = obj.value

    build(tlv.parse(data), ours)
    assert ours == pyemv_tlv.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_parse_or_raise_tlv_error(data: bytes) -> None:
    try:
        objects = list(tlv.flatten(data))
    except TlvError:
        return
    for obj in objects:
        assert not obj.constructed


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(min_value=0, max_value=39))
def test_truncated_encodings_raise_tlv_error(value: bytes, cut: int) -> None:
    encoded = tlv.encode(0x70, tlv.encode(0x5A, value))
    truncated = encoded[: min(cut, len(encoded) - 1)]
    if not truncated:
        assert tlv.parse(truncated) == []
        return
    with pytest.raises(TlvError):
        tlv.parse(truncated)
