"""TVR / TSI bit positions against Book 3 Annex C5 / C6 (byte, bit) tables."""

from __future__ import annotations

import pytest

from firmware.emv.tvr import (
    Tsi,
    TsiBit,
    Tvr,
    TvrBit,
    action_code_matches,
    bit_names,
)
from firmware.errors import CardDataError

# (bit, byte 1..5, bit 8..1) straight from Annex C5
TVR_TABLE = [
    (TvrBit.OFFLINE_DATA_AUTH_NOT_PERFORMED, 1, 8),
    (TvrBit.SDA_FAILED, 1, 7),
    (TvrBit.ICC_DATA_MISSING, 1, 6),
    (TvrBit.CARD_ON_EXCEPTION_FILE, 1, 5),
    (TvrBit.DDA_FAILED, 1, 4),
    (TvrBit.CDA_FAILED, 1, 3),
    (TvrBit.SDA_SELECTED, 1, 2),
    (TvrBit.DIFFERENT_APPLICATION_VERSIONS, 2, 8),
    (TvrBit.EXPIRED_APPLICATION, 2, 7),
    (TvrBit.APPLICATION_NOT_YET_EFFECTIVE, 2, 6),
    (TvrBit.SERVICE_NOT_ALLOWED, 2, 5),
    (TvrBit.NEW_CARD, 2, 4),
    (TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL, 3, 8),
    (TvrBit.UNRECOGNISED_CVM, 3, 7),
    (TvrBit.PIN_TRY_LIMIT_EXCEEDED, 3, 6),
    (TvrBit.PIN_PAD_NOT_PRESENT_OR_NOT_WORKING, 3, 5),
    (TvrBit.PIN_NOT_ENTERED, 3, 4),
    (TvrBit.ONLINE_PIN_ENTERED, 3, 3),
    (TvrBit.EXCEEDS_FLOOR_LIMIT, 4, 8),
    (TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED, 4, 7),
    (TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED, 4, 6),
    (TvrBit.RANDOMLY_SELECTED_FOR_ONLINE, 4, 5),
    (TvrBit.MERCHANT_FORCED_ONLINE, 4, 4),
    (TvrBit.DEFAULT_TDOL_USED, 5, 8),
    (TvrBit.ISSUER_AUTHENTICATION_FAILED, 5, 7),
    (TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC, 5, 6),
    (TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC, 5, 5),
]

TSI_TABLE = [
    (TsiBit.OFFLINE_DATA_AUTH_PERFORMED, 1, 8),
    (TsiBit.CARDHOLDER_VERIFICATION_PERFORMED, 1, 7),
    (TsiBit.CARD_RISK_MANAGEMENT_PERFORMED, 1, 6),
    (TsiBit.ISSUER_AUTHENTICATION_PERFORMED, 1, 5),
    (TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED, 1, 4),
    (TsiBit.SCRIPT_PROCESSING_PERFORMED, 1, 3),
]


@pytest.mark.parametrize(("bit", "byte", "position"), TVR_TABLE)
def test_tvr_bit_lands_on_its_byte_and_bit(bit: TvrBit, byte: int, position: int) -> None:
    tvr = Tvr()
    tvr.set(bit)
    expected = bytearray(5)
    expected[byte - 1] = 1 << (position - 1)
    assert tvr.to_bytes() == bytes(expected)
    assert bit in tvr
    assert Tvr.from_bytes(bytes(expected)) == tvr


@pytest.mark.parametrize(("bit", "byte", "position"), TSI_TABLE)
def test_tsi_bit_lands_on_its_byte_and_bit(bit: TsiBit, byte: int, position: int) -> None:
    tsi = Tsi()
    tsi.set(bit)
    expected = bytearray(2)
    expected[byte - 1] = 1 << (position - 1)
    assert tsi.to_bytes() == bytes(expected)


def test_every_defined_tvr_bit_is_in_the_table() -> None:
    assert {b for b, _, _ in TVR_TABLE} == set(TvrBit)
    assert {b for b, _, _ in TSI_TABLE} == set(TsiBit)


def test_set_clear_and_names_in_book_order() -> None:
    tvr = Tvr()
    tvr.set(TvrBit.NEW_CARD)
    tvr.set(TvrBit.OFFLINE_DATA_AUTH_NOT_PERFORMED)
    assert tvr.names() == ["OFFLINE_DATA_AUTH_NOT_PERFORMED", "NEW_CARD"]
    tvr.clear(TvrBit.NEW_CARD)
    assert tvr.hex() == "8000000000"
    assert bit_names(bytes.fromhex("0000000800")) == ["MERCHANT_FORCED_ONLINE"]


def test_action_code_matching() -> None:
    assert action_code_matches(bytes.fromhex("0000008000"), bytes.fromhex("0000008000"))
    assert not action_code_matches(bytes.fromhex("0000008000"), bytes.fromhex("FFFFFF7FFF"))
    with pytest.raises(CardDataError):
        action_code_matches(b"\x00" * 4, b"\x00" * 5)


def test_wrong_length_raises_project_error() -> None:
    with pytest.raises(CardDataError):
        Tvr.from_bytes(b"\x00" * 4)
    with pytest.raises(CardDataError):
        Tsi.from_bytes(b"\x00" * 3)
