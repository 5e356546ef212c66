"""Formats of the card data objects the kernel hands on (EMV Book 3 Annex A: 5A is cn, up to 19 digits)."""

from __future__ import annotations

import pytest

from firmware.emv.carddata import pan_digits
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
