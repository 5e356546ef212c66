"""Tests of the fake cards and readers in tests/emv_fakes.py."""

from __future__ import annotations

import pytest

from tests.emv_fakes import FakeCard, ScriptedReader, complete_app, h, tlv_bytes


def test_tlv_bytes_long_forms() -> None:
    assert tlv_bytes(0x5A, b"\x01") == h("5A0101")
    assert tlv_bytes(0x9F38, bytes(0x80))[:4] == h("9F388180")
    assert tlv_bytes(0x70, bytes(0x100))[:4] == h("70820100")


def test_scripted_reader_rejects_an_unexpected_command() -> None:
    reader = ScriptedReader([("00A4040000", "9000")])
    with pytest.raises(AssertionError):
        reader.transmit(h("00B2010C00"))


def test_fake_card_t0_announces_then_returns_data() -> None:
    card = FakeCard([complete_app()], t0=True)
    first = card(h("00A4040007A000000004101000"))
    assert first[0] == 0x61
    fetched = card(h("00C00000") + first[1:2])
    assert fetched[-2:] == h("9000") and fetched[0] == 0x6F
