"""Formats of the card data objects the kernel hands on (EMV Book 3 Annex A: 5A is cn, up to 19 digits)."""

from __future__ import annotations

import pytest

from firmware.emv.carddata import pan_digits, pan_sequence_number, track2_equivalent_data
from firmware.errors import CardDataError


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("4761739001010010", "4761739001010010"),  # 16 digits, no pad
        ("541333008901005F", "541333008901005"),  # odd number of digits, one F pad
        ("6250947000000014FFFF", "6250947000000014"),  # a 10-byte field padded with F
        ("1234567890123456789F", "1234567890123456789"),  # 19 digits, the most cn 5A holds
    ],
)
def test_pan_digits(value: str, digits: str) -> None:
    assert pan_digits(bytes.fromhex(value)) == digits


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("47617390010100AF", "nibble 15 is not a digit"),
        ("FFFFFFFFFFFFFFFF", "no digit"),
        ("", "no digit"),
        ("4761F39001010010", "nibble 5 is not a digit"),  # an F before the end is not padding
        ("12345678901234567890", "20 digits"),
    ],
)
def test_not_a_pan(value: str, words: str) -> None:
    with pytest.raises(CardDataError, match=words) as raised:
        pan_digits(bytes.fromhex(value))
    assert raised.value.tag == 0x5A


@pytest.mark.parametrize(("value", "number"), [("00", 0), ("01", 1), ("99", 99)])
def test_pan_sequence_number(value: str, number: int) -> None:
    assert pan_sequence_number(bytes.fromhex(value)) == number


@pytest.mark.parametrize(
    ("value", "words"),
    [("0A", "not two decimal digits"), ("F1", "not two"), ("", "0 bytes"), ("0001", "2 bytes")],
)
def test_not_a_pan_sequence_number(value: str, words: str) -> None:
    with pytest.raises(CardDataError, match=words) as raised:
        pan_sequence_number(bytes.fromhex(value))
    assert raised.value.tag == 0x5F34


@pytest.mark.parametrize(
    "value",
    [
        "5413330089020094D25122011234567890123F",  # the published M/Chip example (odd count, one F)
        "6250947000000014D3012220000000000F",
        "4761739001010010D30122010000000000",  # even count, no pad
    ],
)
def test_track2_equivalent_data(value: str) -> None:
    assert track2_equivalent_data(bytes.fromhex(value)) == bytes.fromhex(value)


@pytest.mark.parametrize(
    "value",
    [
        "4761739001010010",  # no separator
        "4761739001010010D3012F",  # expiry without service code
        "4761739001010010D3012A01",  # a letter in the service code
        "4761739001010010D30122010000FF",  # two pad nibbles
        "D30122010000000F",  # no PAN
        "12345678901234567890D301220100000000",  # a PAN of 20 digits
        "5413330089020094D2512201" + "1" * 16,  # 20 bytes
    ],
)
def test_not_track2_equivalent_data(value: str) -> None:
    with pytest.raises(CardDataError) as raised:
        track2_equivalent_data(bytes.fromhex(value))
    assert raised.value.tag == 0x57
