"""The ISO 8583 packager against known bytes: published UnionPay POS messages and hand-assembled ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import MessageFieldError, MessageFormatError
from firmware.host.spec import DEFAULT_HEADER, DEFAULT_TPDU, pack, swap_tpdu, unpack


def _hex(text: str) -> bytes:
    return bytes.fromhex("".join(text.replace(":", " ").split()))


# A UnionPay POS sale (0200) as captured while debugging a terminal, published with its field-by-field
# reading in "POS调试8583报文-消费" (blog.csdn.net/MaxWoods/article/details/86490475). 2-byte length first.
PUBLISHED_SALE = _hex("""
01 AA 60 00 06 00 00 60 31 00 31 10 03 02 00 70 24 06 C0 20 C1 9A 31 16 62 24 24 29 00
00 01 13 00 00 00 00 00 00 00 00 01 00 04 03 28 06 07 10 00 00 00 12 34 62 24 24 29 00
00 01 13 D2 80 62 01 39 49 03 10 13 31 30 30 30 30 30 31 39 38 35 30 31 30 30 30 38 32
34 31 30 30 30 32 00 01 00 31 35 36 D1 EE F4 19 D0 AE 26 09 26 00 00 00 00 00 00 00 01
39 9F 26 08 95 BB E3 72 27 1D DA 7C 9F 27 01 80 9F 10 13 07 01 01 03 A0 00 00 01 0A 01
00 00 00 00 00 ED 53 8F E4 9F 37 04 7F 9F 34 9E 9F 36 02 01 57 95 05 00 00 00 00 00 9A
03 19 08 30 9C 01 00 9F 02 06 00 00 00 00 00 01 5F 2A 02 01 56 82 02 7C 00 9F 1A 02 01
56 9F 03 06 00 00 00 00 00 00 9F 33 03 E0 E1 C8 9F 35 01 22 9F 1E 08 31 30 30 30 30 30
31 39 84 08 A0 00 00 03 33 01 01 02 9F 09 02 00 8C 9F 41 04 00 00 04 03 01 53 31 32 32
30 38 39 38 36 30 36 31 37 30 38 30 30 30 32 35 38 33 39 39 33 31 33 31 31 48 46 54 31
37 30 38 30 33 30 31 31 34 31 34 32 30 31 39 30 38 33 30 30 39 33 34 33 35 31 35 30 32
30 30 31 37 32 32 42 44 33 30 2E 36 32 31 35 35 35 2C 31 31 34 2E 33 36 31 39 35 34 41
32 36 30 30 31 30 32 30 32 30 32 31 36 30 30 30 30 32 39 30 32 31 30 30 31 35 37 30 38
30 33 30 36 30 30 30 31 31 33 30 34 30 38 30 34 32 34 37 32 39 32 30 35 30 38 48 37 30
36 32 38 30 31 00 14 22 00 00 24 00 06 00 38 46 36 35 31 42 32 36
""")

# A 0200 published with its MAK and the MAC its host computed (cnblogs question q/128930), length first.
PUBLISHED_MACED = _hex(
    "00:7f:60:00:03:00:00:60:32:10:32:00:72:02:00:30:20:04:80:00:c0:80:15:00:00:00:00:00:00:00:12:34:00:00"
    ":02:03:00:99:30:30:30:30:30:30:30:31:39:35:32:37:31:38:31:38:32:32:31:37:38:37:35:31:35:36:00:19:26:00"
    ":00:01:00:06:00:00:00:00:00:43:5f:01:12:32:38:34:34:31:32:33:34:35:36:37:38:39:30:31:32:33:34:5f:03:06"
    ":31:36:30:30:33:36:5f:04:06:32:30:30:38:32:36:5c:02:30:31:42:33:41:30:39:32:41:45"
)


def test_published_sale_decodes_to_the_published_reading() -> None:
    assert int.from_bytes(PUBLISHED_SALE[:2], "big") == len(PUBLISHED_SALE) - 2 == 426
    message = unpack(PUBLISHED_SALE[2:])
    assert message["tpdu"] == "6000060000"
    assert message["header"] == "603100311003"
    assert message["t"] == "0200"
    # the article's bitmap reading: 2,3,4,11,14,22,23,25,26,35,41,42,48,49,52,53,55,59,60,64
    assert sorted(int(k) for k in message if k.isdigit()) == [
        2, 3, 4, 11, 14, 22, 23, 25, 26, 35, 41, 42, 48, 49, 52, 53, 55, 59, 60, 64,
    ]
    assert message["2"] == "6224242900000113"
    assert message["3"] == "000000"
    assert message["4"] == "000000000001"
    assert message["11"] == "000403"
    assert message["14"] == "2806"
    assert message["22"] == "071"  # 07 10: left-aligned n3
    assert message["23"] == "000"
    assert message["25"] == "00"
    assert message["26"] == "12"
    assert message["35"] == "6224242900000113D28062013949031013"
    assert message["41"] == "10000019"
    assert message["42"] == "850100082410002"
    assert message["48"] == "0"  # 00 01 00: one digit, right pad
    assert message["49"] == "156"
    assert message["52"] == "D1EEF419D0AE2609"
    assert message["53"] == "2600000000000000"
    assert message["55"].startswith("9F260895BBE372271DDA7C")
    assert len(message["55"]) == 2 * 139  # 01 39: a BCD length
    assert message["59"].startswith("1220898606170800") and len(message["59"]) == 153
    assert message["60"] == "22000024000600"  # 60.1 22 sale, 60.2 batch 000024, 60.3 000
    assert message["64"] == b"8F651B26".hex().upper()


@pytest.mark.parametrize("frame", [PUBLISHED_SALE, PUBLISHED_MACED], ids=["sale", "maced"])
def test_published_messages_pack_back_to_the_same_bytes(frame: bytes) -> None:
    assert pack(unpack(frame[2:])) == frame[2:]


def test_second_published_message_fields() -> None:
    message = unpack(PUBLISHED_MACED[2:])
    assert (message["tpdu"], message["header"], message["t"]) == ("6000030000", "603210320072", "0200")
    assert message["4"] == "000000001234"
    assert message["22"] == "030"
    assert message["60"] == "2600000100060000000"  # 00 19: 19 digits, right pad
    assert bytes.fromhex(message["64"]) == b"B3A092AE"


# Hand-assembled from the field rules: a sign-on request with fields 11, 41, 42, 60, 63.
SIGN_ON_FIELDS = {
    "t": "0800",
    "11": "000123",
    "41": "00000001",
    "42": "123456789012345",
    "60": "00000001003",
    "63": "001",
}
SIGN_ON_BYTES = (
    bytes.fromhex("6000000000")  # TPDU
    + bytes.fromhex("603100310000")  # message header
    + bytes.fromhex("0800")  # message type, BCD
    + bytes.fromhex("0020000000C00012")  # bits 11 | 41, 42 | 60, 63
    + bytes.fromhex("000123")  # 11
    + b"00000001"  # 41 ans8
    + b"123456789012345"  # 42 ans15
    + bytes.fromhex("0011") + bytes.fromhex("000000010030")  # 60: 11 digits, left-aligned, pad 0
    + bytes.fromhex("0003") + b"001"  # 63: LLLVAR, 3 bytes
)


def test_sign_on_request_packs_to_hand_assembled_bytes() -> None:
    assert pack(SIGN_ON_FIELDS) == SIGN_ON_BYTES
    assert unpack(SIGN_ON_BYTES) == {
        "tpdu": DEFAULT_TPDU.hex().upper(), "header": DEFAULT_HEADER.hex().upper(), **SIGN_ON_FIELDS,
    }


def test_odd_numeric_fields_align_as_the_rules_say() -> None:
    message = {
        "t": "0200",
        "2": "6212345678901234567",  # 19 digits: LL 19, left-aligned, trailing 0 nibble
        "22": "051",  # fixed n3 left-aligned: 05 10
        "23": "001",  # fixed n3 right-aligned: 00 01
        "32": "12345",  # LLVAR 5 digits: 05 12 34 50
    }
    assert pack(message)[11:] == (
        bytes.fromhex("0200")
        + bytes.fromhex("4000060100000000")  # bits 2 | 22, 23 | 32
        + bytes.fromhex("19 6212345678901234567 0".replace(" ", ""))
        + bytes.fromhex("0510")
        + bytes.fromhex("0001")
        + bytes.fromhex("05123450")
    )


def test_secondary_bitmap_for_field_90_and_mac_in_128() -> None:
    message = {"t": "0400", "11": "000007", "90": "0200" + "000006" + "0" * 32, "128": "0102030405060708"}
    packed = pack(message)
    assert packed[11:13] == bytes.fromhex("0400")
    assert packed[13:29] == bytes.fromhex("8020000000000000" "0000004000000001")  # bits 1, 11 | 90, 128
    assert packed[-8:] == bytes.fromhex("0102030405060708")
    assert unpack(packed)["90"] == message["90"]


def test_binary_fields_are_hex_and_lllvar_counts_bytes() -> None:
    packed = pack({"t": "0810", "62": "00112233445566778899AABBCCDDEEFF00112233"})
    assert packed[-22:] == bytes.fromhex("0020") + bytes.fromhex("00112233445566778899AABBCCDDEEFF00112233")


def test_swap_tpdu_exchanges_addresses() -> None:
    assert swap_tpdu(bytes.fromhex("6000060001")) == bytes.fromhex("6000010006")


# ----- malformed input -----------------------------------------------------------------------------------


def _broken(offset_from_end: int, replacement: bytes) -> bytes:
    data = bytearray(SIGN_ON_BYTES)
    start = len(data) - offset_from_end
    data[start : start + len(replacement)] = replacement
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (SIGN_ON_BYTES[:5], "h"),  # cut in the TPDU / header
        (SIGN_ON_BYTES[:12], "t"),  # cut in the message type
        (SIGN_ON_BYTES[:16], "p"),  # cut in the bitmap
        (SIGN_ON_BYTES[:23], "11"),  # cut in the trace number
        (SIGN_ON_BYTES[:30], "41"),
        (SIGN_ON_BYTES[:-4], "63"),  # 63 announces 3 bytes, 0 left
        (SIGN_ON_BYTES + b"\x00", "63"),  # extra data after the last field
        (SIGN_ON_BYTES[:11] + bytes.fromhex("08A0") + SIGN_ON_BYTES[13:], "t"),  # not BCD
        (SIGN_ON_BYTES[:21] + bytes.fromhex("0A0123") + SIGN_ON_BYTES[24:], "11"),  # not BCD
        (_broken(5 + 8, bytes.fromhex("0A11")), "60"),  # length not BCD
        (_broken(5 + 8, bytes.fromhex("0099")), "60"),  # 99 digits > the field's maximum
        (_broken(5 + 1, bytes.fromhex("31")), "60"),  # pad nibble of the odd-length 60 not 0
        (_broken(3, b"\xff"), "63"),  # not text
    ],
)
def test_malformed_bytes_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(MessageFieldError) as caught:
        unpack(data)
    assert caught.value.field == field
    assert f"field {field}" in str(caught.value)


def test_bitmap_announcing_a_field_outside_the_message_set() -> None:
    data = bytearray(SIGN_ON_BYTES)
    data[13] |= 0x08  # field 5
    with pytest.raises(MessageFieldError) as caught:
        unpack(bytes(data))
    assert caught.value.field == "5"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"3": "000000"}, "t"),
        ({"t": "0200", "5": "1"}, "5"),
        ({"t": "0200", "3": "00000"}, "3"),  # fixed length
        ({"t": "0200", "4": "00000000012A"}, "4"),  # non-numeric
        ({"t": "02X0"}, "t"),
        ({"t": "0200", "41": "1234567"}, "41"),
        ({"t": "0200", "2": "1" * 20}, "2"),  # over the maximum
        ({"t": "0200", "tpdu": "600000"}, "tpdu"),
        ({"t": "0200", "55": "9F2"}, "55"),  # odd hex
    ],
)
def test_pack_refuses_bad_values_naming_the_field(message: dict[str, str], field: str) -> None:
    with pytest.raises(MessageFieldError) as caught:
        pack(message)
    assert caught.value.field == field


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        unpack(data)
    except MessageFormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(PUBLISHED_SALE) - 3), st.integers(min_value=0, max_value=255))
def test_mutated_published_message_decodes_or_names_a_field(position: int, value: int) -> None:
    data = bytearray(PUBLISHED_SALE[2:])
    data[position] = value
    try:
        message = unpack(bytes(data))
    except MessageFieldError as error:
        assert error.field
    else:
        assert pack(message) == bytes(data)


_numeric = st.text(alphabet="0123456789", min_size=1, max_size=19)


@settings(max_examples=100, deadline=None)
@given(
    pan=_numeric,
    amount=st.integers(min_value=0, max_value=999_999_999_999),
    field55=st.binary(max_size=255),
    field63=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)
def test_round_trip(pan: str, amount: int, field55: bytes, field63: str) -> None:
    message = {
        "tpdu": "6000060000",
        "header": "603100311003",
        "t": "0200",
        "2": pan,
        "4": f"{amount:012d}",
        "55": field55.hex().upper(),
        "63": field63,
    }
    assert unpack(pack(message)) == message
