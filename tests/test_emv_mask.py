"""Masking: PAN first 6 + last 4, track data and names hidden, PIN data withheld."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.emv import mask
from tests.emv_fakes import h, tlv_bytes


@pytest.mark.parametrize(
    ("pan", "shown"),
    [
        ("5413330089020094", "541333******0094"),
        ("6212345678901234567", "621234*********4567"),
        ("4761739001010", "476173***1010"),
        ("476173900101", "********0101"),
        ("12345678", "********"),
        ("", ""),
    ],
)
def test_mask_pan(pan: str, shown: str) -> None:
    assert mask.mask_pan(pan) == shown


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_masked_pan_never_shows_the_middle(pan: str) -> None:
    shown = mask.mask_pan(pan)
    assert len(shown) == len(pan)
    assert shown[:6] == pan[:6] and shown[-4:] == pan[-4:]
    assert set(shown[6:-4]) == {"*"}


def test_cn_digits_stop_at_the_pad() -> None:
    assert mask.cn_digits(h("5413330089020094")) == "5413330089020094"
    assert mask.cn_digits(h("6212345678901234567F")) == "6212345678901234567"


def test_track2_and_track1() -> None:
    assert mask.mask_track2(h("5413330089020094D25122011234567890123F")) == "541333******0094D" + "*" * 20
    assert mask.mask_track2(h("12345678")) == "********"
    track1 = b"B5413330089020094^DOE/JOHN^2512201123456"
    assert mask.mask_track1(track1) == "B541333******0094^" + "*" * len("DOE/JOHN^2512201123456")
    assert mask.mask_track1(b"%whatever") == "*********"


@pytest.mark.parametrize("tag", [0x5F20, 0x9F1F, 0x9F20, 0x9F0B])
def test_other_sensitive_tags_show_only_their_length(tag: int) -> None:
    assert mask.mask_value(tag, b"SECRET") == "******"


def test_display_value_text_hex_and_masked() -> None:
    assert mask.display_value(0x50, b"VISA CREDIT") == "VISA CREDIT"
    assert mask.display_value(0x50, b"\x01\x02") == "0102"
    assert mask.display_value(0x82, h("1980")) == "1980"
    assert mask.display_value(0x5A, h("5413330089020094")) == "541333******0094"
    assert mask.display_tags({0x5F24: h("251231"), 0x5A: h("5413330089020094")}) == {
        "5F24": "251231",
        "5A": "541333******0094",
    }


def test_display_tlv_masks_inside_templates() -> None:
    inner = tlv_bytes(0x5A, h("5413330089020094")) + tlv_bytes(0x9F36, h("0001"))
    data = tlv_bytes(0x77, tlv_bytes(0xE1, inner))
    shown = mask.display_tlv(data)
    assert shown == "7711E10F5A08[541333******0094]9F36020001"
    assert "5413330089020094" not in shown


def test_display_tlv_withholds_what_is_not_tlv() -> None:
    assert mask.display_tlv(h("5413330089020094")) == "<8 bytes withheld: not TLV>"
    assert mask.display_tlv(b"") == ""


def test_display_command_withholds_pin_data() -> None:
    assert mask.display_command(h("0020008008241234FFFFFFFFFF")) == "0020008008<8 bytes of PIN data withheld>"
    assert mask.display_command(h("00B2010C00")) == "00B2010C00"
