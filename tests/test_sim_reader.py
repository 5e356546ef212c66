"""SimReader: the in-process reader, with a card that can be removed and put back."""

from __future__ import annotations

import pytest

from sim.card import load_profile_card
from sim.errors import CardAbsent
from sim.reader import SimReader

SELECT_VISA = bytes.fromhex("00A4040007A000000003101000")
GPO = bytes.fromhex("80A8000002830000")
GET_ATC = bytes.fromhex("80CA9F3600")


def test_card_absent_is_a_connection_error() -> None:
    reader = SimReader()
    assert not reader.card_present
    with pytest.raises(CardAbsent) as caught:
        reader.power_on()
    assert isinstance(caught.value, ConnectionError) and isinstance(caught.value, OSError)
    with pytest.raises(ConnectionError):
        reader.transmit(SELECT_VISA)
    reader.power_off()  # harmless without a card


def test_remove_and_insert_keep_the_card_counters() -> None:
    card = load_profile_card("visa-credit")
    reader = SimReader(card)
    assert reader.name == "sim:visa-credit"
    assert reader.power_on() == card.atr
    assert reader.transmit(SELECT_VISA)[-2:] == b"\x90\x00"
    assert reader.transmit(GPO)[-2:] == b"\x90\x00"
    atc = reader.transmit(GET_ATC)
    assert reader.remove_card() is card
    with pytest.raises(CardAbsent):
        reader.transmit(GET_ATC)
    reader.insert_card(card)
    with pytest.raises(CardAbsent, match="not powered"):
        reader.transmit(SELECT_VISA)
    reader.power_on()
    assert reader.transmit(GPO) == bytes.fromhex("6985")  # the new session has nothing selected
    reader.transmit(SELECT_VISA)
    assert reader.transmit(GET_ATC) == atc


def test_another_card_can_go_in() -> None:
    reader = SimReader(load_profile_card("visa-credit"), name="slot 1")
    reader.insert_card(load_profile_card("mastercard-credit"))
    assert reader.name == "slot 1"
    reader.power_on()
    assert reader.transmit(SELECT_VISA) == bytes.fromhex("6A82")
    assert reader.transmit(bytes.fromhex("00A4040007A000000004101000"))[-2:] == b"\x90\x00"
