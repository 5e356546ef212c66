"""What the fuzz targets (tests/test_fuzz_*.py) found, pinned as plain known-answer tests."""

from __future__ import annotations

import pytest

from firmware.emv import tags, tlv
from firmware.errors import TlvError


def test_a_zero_length_dol_entry_takes_nothing() -> None:
    """Book 3 5.4: '9F02 00' asks for no bytes; the amount must not come out whole."""
    entries = tlv.parse_dol(bytes.fromhex("9F0200" "9F3704"))
    data = tlv.build_dol(entries, {0x9F02: bytes(6), 0x9F37: b"\x01\x02\x03\x04"}, tags.format_of)
    assert data == b"\x01\x02\x03\x04"
    assert len(data) == tlv.dol_length(entries)


def test_a_dol_entry_longer_than_one_length_byte_is_refused_before_anything_is_built() -> None:
    """A card's PDOL of '9F02 83 FFFFFF' would have the terminal build 16 MB per entry."""
    with pytest.raises(TlvError) as refused:
        tlv.parse_dol(bytes.fromhex("9F3704" "9F0283FFFFFF"))
    assert refused.value.offset == 3 and refused.value.tag == 0x9F02
    assert tlv.parse_dol(bytes.fromhex("9F0281FF")) == [(0x9F02, 255)]
