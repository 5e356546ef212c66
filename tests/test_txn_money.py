"""Typed amounts to fen and back: every accepted form, every refusal with its one message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.errors import AmountError, PosError
from firmware.txn.money import MAX_MINOR_UNITS, format_amount, parse_amount


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("12.34", 1234),
        ("12.3", 1230),
        ("12", 1200),
        ("0.05", 5),
        ("0.5", 50),
        ("0.01", 1),  # the smallest amount that moves money
        ("007", 700),
        (" 12.34 ", 1234),  # ASCII spaces around are ignored
        ("9999999999.99", 999_999_999_999),  # 10 integer digits: the 12 digits of field 4
        ("1000000000", 100_000_000_000),
    ],
)
def test_accepted_amounts(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "amount: is empty"),
        ("   ", "is empty"),
        ("-5", "must not be negative"),
        ("-0.01", "must not be negative"),
        ("+5", "a sign is not allowed"),
        ("1e3", "an exponent is not allowed"),
        ("1E3", "an exponent is not allowed"),
        ("1,000", "',' is not allowed"),
        ("12,34", "',' is not allowed"),
        ("12.345", "more than two decimals"),
        ("0.001", "more than two decimals"),
        ("12.", "needs a digit after the '.'"),
        (".5", "needs a digit before the '.'"),
        ("1.2.3", "more than one '.'"),
        ("12345678901", "more than 10 digits before the '.'"),  # 11 digits; 10 are accepted above
        ("0", "must be more than zero"),
        ("0.00", "must be more than zero"),
        ("abc", "'a' is not allowed"),
        ("NaN", "'N' is not allowed"),
        ("inf", "'i' is not allowed"),
        ("1_000", "'_' is not allowed"),
        ("0x10", "'x' is not allowed"),
        ("１２", "U+FF11 is not allowed"),  # full-width digits
        ("١٢", "U+0661 is not allowed"),  # Arabic-Indic digits
        ("12\u00a0", "U+00A0 is not allowed"),  # no-break space
        ("\u200b12", "U+200B is not allowed"),  # zero-width space
        ("1\u202e2", "U+202E is not allowed"),  # right-to-left override
        ("\t12", "U+0009 is not allowed"),
        ("12\n", "U+000A is not allowed"),
        ("１２.３４", "U+FF11"),
    ],
)
def test_refused_amounts(text: str, words: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text)
    assert words in str(caught.value)
    assert isinstance(caught.value, PosError)
    assert caught.value.field == "amount"


def test_the_error_names_the_field() -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount("12.345", "new amount")
    assert str(caught.value) == "new amount: has more than two decimals"
    assert caught.value.field == "new amount"


def test_zero_is_allowed_when_asked() -> None:
    assert parse_amount("0", allow_zero=True) == 0
    assert parse_amount("0.00", allow_zero=True) == 0
    with pytest.raises(AmountError, match="negative"):
        parse_amount("-0", allow_zero=True)


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (1234, "12.34"),
        (5, "0.05"),
        (50, "0.50"),
        (1200, "12.00"),
        (0, "0.00"),
        (999_999_999_999, "9999999999.99"),
    ],
)
def test_format(minor: int, text: str) -> None:
    assert format_amount(minor) == text


@pytest.mark.parametrize(
    ("value", "words"),
    [(-1, "negative"), (MAX_MINOR_UNITS + 1, "more than 10 digits"), (True, "bool"), (1.5, "float")],
)
def test_format_refuses(value: object, words: str) -> None:
    with pytest.raises(AmountError, match=words):
        format_amount(value)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=MAX_MINOR_UNITS))
def test_round_trip(minor: int) -> None:
    assert parse_amount(format_amount(minor)) == minor


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999.99"), places=2))
def test_agrees_with_decimal(value: Decimal) -> None:
    # An independent reading of the same text: Decimal, scaled by 100.
    text = f"{value:f}"
    assert parse_amount(text) == int(value * 100)
