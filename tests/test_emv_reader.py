"""PcscReader: PC/SC failures become firmware errors, reader choice by name.

pyscard's reader list and the low-level `smartcard.scard` calls PcscReader
makes are replaced by fakes here so that every failure can be produced on
demand; the real pcscd + vpcd path is tested in test_emv_sim.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from smartcard import scard
from smartcard.pcsc.PCSCExceptions import EstablishContextException, ListReadersException

from firmware.emv import reader as reader_module
from firmware.emv.reader import PcscReader, list_pcsc_readers, open_pcsc_reader
from firmware.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError

PCI = {scard.SCARD_PROTOCOL_T0: scard.SCARD_PCI_T0, scard.SCARD_PROTOCOL_T1: scard.SCARD_PCI_T1}


class FakePcsc:
    """pyscard's low-level `scard` calls that PcscReader makes, answering as told.

    Installed over `smartcard.scard` for one test; records what was asked.
    """

    def __init__(self, *, cards: set[str], protocol: int = scard.SCARD_PROTOCOL_T1) -> None:
        self.cards = cards
        self.protocol = protocol
        self.context_result = scard.SCARD_S_SUCCESS
        self.connect_result = scard.SCARD_S_SUCCESS
        self.transmit_result = scard.SCARD_S_SUCCESS
        self.response: list[int] = [0x6F, 0x00, 0x90, 0x00]
        self.sent: list[list[int]] = []
        self.disconnects: list[int] = []
        self.open_contexts: set[int] = set()
        self.connected: str | None = None
        self._next = 100

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in (
            "SCardEstablishContext",
            "SCardReleaseContext",
            "SCardConnect",
            "SCardStatus",
            "SCardTransmit",
            "SCardDisconnect",
        ):
            monkeypatch.setattr(scard, name, getattr(self, name))

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        if self.context_result != scard.SCARD_S_SUCCESS:
            return self.context_result, 0
        self._next += 1
        self.open_contexts.add(self._next)
        return scard.SCARD_S_SUCCESS, self._next

    def SCardReleaseContext(self, context: int) -> int:
        self.open_contexts.discard(context)
        return scard.SCARD_S_SUCCESS

    def SCardConnect(self, context: int, reader: str, share: int, protocols: int) -> tuple[int, int, int]:
        assert context in self.open_contexts
        assert share == scard.SCARD_SHARE_SHARED
        assert protocols == scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        if self.connect_result != scard.SCARD_S_SUCCESS:
            return self.connect_result, 0, 0
        if reader not in self.cards:
            return scard.SCARD_E_NO_SMARTCARD, 0, 0
        self.connected = reader
        return scard.SCARD_S_SUCCESS, 7, self.protocol

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        assert card == 7 and self.connected is not None
        atr = [0x3B, 0x68, 0x00, 0x00]
        return scard.SCARD_S_SUCCESS, self.connected, scard.SCARD_STATE_PRESENT, self.protocol, atr

    def SCardTransmit(self, card: int, header: int, apdu: list[int]) -> tuple[int, list[int]]:
        assert card == 7
        assert header == PCI[self.protocol]
        self.sent.append(apdu)
        if self.transmit_result != scard.SCARD_S_SUCCESS:
            return self.transmit_result, []
        return scard.SCARD_S_SUCCESS, list(self.response)

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        assert card == 7
        self.disconnects.append(disposition)
        self.connected = None
        return scard.SCARD_S_SUCCESS


def install(monkeypatch: pytest.MonkeyPatch, names: list[str], with_card: set[str]) -> FakePcsc:
    pcsc = FakePcsc(cards=with_card)
    pcsc.install(monkeypatch)
    monkeypatch.setattr(reader_module, "_pcsc_readers", lambda: names)
    monkeypatch.setattr(reader_module, "_card_present", lambda name: name in with_card)
    return pcsc


def test_power_on_transmit_power_off(monkeypatch: pytest.MonkeyPatch) -> None:
    pcsc = install(monkeypatch, ["ACS ACR38U 00 00"], {"ACS ACR38U 00 00"})
    reader = open_pcsc_reader()
    assert reader.name == "ACS ACR38U 00 00"
    assert reader.protocol is None
    assert reader.power_on() == bytes.fromhex("3B680000")
    assert reader.protocol == "T=1"
    assert reader.transmit(bytes.fromhex("00A4040000")) == bytes.fromhex("6F009000")
    assert pcsc.sent == [[0x00, 0xA4, 0x04, 0x00, 0x00]]
    reader.power_off()
    assert pcsc.disconnects == [scard.SCARD_UNPOWER_CARD]
    assert not pcsc.open_contexts
    pcsc.protocol = scard.SCARD_PROTOCOL_T0
    reader.power_on()
    assert reader.protocol == "T=0"
    assert reader.transmit(bytes.fromhex("00A4040000")) == bytes.fromhex("6F009000")
    reader.power_off()
    assert not pcsc.open_contexts


def test_reader_chosen_by_exact_name_then_substring_preferring_a_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Gemalto PC Twin Reader 00 00"]
    install(monkeypatch, names, {"Virtual PCD 00 01"})
    assert open_pcsc_reader("Virtual PCD 00 00").name == "Virtual PCD 00 00"
    assert open_pcsc_reader("virtual pcd").name == "Virtual PCD 00 01"
    assert open_pcsc_reader("gemalto").name == "Gemalto PC Twin Reader 00 00"
    assert open_pcsc_reader(None).name == "Virtual PCD 00 01"
    with pytest.raises(NoReaderError, match="no reader named 'omnikey'"):
        open_pcsc_reader("omnikey")


def test_no_card_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, ["R1"], set())
    with pytest.raises(NoCardError, match="no card in any reader"):
        open_pcsc_reader()


def test_no_reader_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [], set())
    with pytest.raises(NoReaderError, match="no PC/SC reader"):
        open_pcsc_reader()


@pytest.mark.parametrize(
    "error",
    [
        EstablishContextException(scard.SCARD_E_NO_SERVICE),
        ListReadersException(scard.SCARD_E_SERVICE_STOPPED),
    ],
)
def test_pcscd_unreachable(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def fail() -> list[Any]:
        raise error

    monkeypatch.setattr(reader_module, "_pcsc_readers", fail)
    with pytest.raises(NoReaderError, match="pcscd"):
        list_pcsc_readers()


@pytest.mark.parametrize("result", [scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED])
def test_power_on_without_pcscd(monkeypatch: pytest.MonkeyPatch, result: int) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    pcsc.context_result = result
    with pytest.raises(NoReaderError, match="pcscd"):
        PcscReader("R1").power_on()
    pcsc.context_result = scard.SCARD_S_SUCCESS
    pcsc.connect_result = result  # pcscd went away between the two calls
    with pytest.raises(NoReaderError, match="pcscd"):
        PcscReader("R1").power_on()
    assert not pcsc.open_contexts


def test_no_readers_available_is_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> list[Any]:
        raise ListReadersException(scard.SCARD_E_NO_READERS_AVAILABLE)

    monkeypatch.setattr(reader_module, "_pcsc_readers", fail)
    assert list_pcsc_readers() == []


@pytest.mark.parametrize(
    ("result", "expected", "words"),
    [
        (scard.SCARD_E_NO_SMARTCARD, NoCardError, "no card in reader 'R1'"),
        (scard.SCARD_W_REMOVED_CARD, NoCardError, "no card in reader 'R1'"),
        (scard.SCARD_E_UNKNOWN_READER, NoReaderError, "reader 'R1' is not connected"),
        (scard.SCARD_E_PROTO_MISMATCH, ReaderError, "cannot power on the card in 'R1'"),
    ],
)
def test_power_on_failures(
    monkeypatch: pytest.MonkeyPatch, result: int, expected: type[Exception], words: str
) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    pcsc.connect_result = result
    reader = PcscReader("R1")
    with pytest.raises(expected, match=words) as caught:
        reader.power_on()
    assert type(caught.value) is expected
    assert reader.protocol is None
    assert not pcsc.open_contexts and not pcsc.disconnects


@pytest.mark.parametrize(
    ("result", "response", "expected"),
    [
        (scard.SCARD_W_REMOVED_CARD, [], CardRemovedError),
        (scard.SCARD_W_RESET_CARD, [], CardRemovedError),
        (scard.SCARD_E_NO_SMARTCARD, [], CardRemovedError),
        (scard.SCARD_W_UNRESPONSIVE_CARD, [], CardRemovedError),
        (scard.SCARD_E_READER_UNAVAILABLE, [], CardRemovedError),
        # vpcd's answer when the card leaves in the middle of the command
        (scard.SCARD_S_SUCCESS, [], CardRemovedError),
        (scard.SCARD_F_COMM_ERROR, [], ReaderError),
    ],
)
def test_transmit_failures(
    monkeypatch: pytest.MonkeyPatch, result: int, response: list[int], expected: type[Exception]
) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()
    pcsc.transmit_result, pcsc.response = result, response
    with pytest.raises(expected) as caught:
        reader.transmit(bytes.fromhex("00B2010C00"))
    assert "R1" in str(caught.value)
    assert type(caught.value) is expected
    reader.power_off()
    # a card that has gone is left as it is: powering it down would make
    # pcscd mark the reader empty behind its card-event thread's back
    gone = expected is CardRemovedError
    assert pcsc.disconnects == [scard.SCARD_LEAVE_CARD if gone else scard.SCARD_UNPOWER_CARD]
    assert not pcsc.open_contexts


def test_a_gone_card_does_not_mark_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()
    pcsc.response = []
    with pytest.raises(CardRemovedError):
        reader.transmit(bytes.fromhex("80AE400000"))
    pcsc.response = [0x90, 0x00]
    reader.power_on()  # leaves the gone card, then the next card
    assert reader.transmit(bytes.fromhex("00A4040000")) == bytes.fromhex("9000")
    reader.power_off()
    assert pcsc.disconnects == [scard.SCARD_LEAVE_CARD, scard.SCARD_UNPOWER_CARD]


def test_a_one_byte_answer_is_returned_for_transport_to_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()
    pcsc.response = [0x90]
    assert reader.transmit(bytes.fromhex("00B2010C00")) == b"\x90"
    reader.power_off()
    assert pcsc.disconnects == [scard.SCARD_UNPOWER_CARD]


def test_transmit_before_power_on_is_a_reader_error() -> None:
    with pytest.raises(ReaderError):
        PcscReader("R1").transmit(bytes.fromhex("00B2010C00"))


def test_power_off_of_a_vanished_card_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    pcsc = install(monkeypatch, ["R1"], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()

    def gone(card: int, disposition: int) -> int:
        raise scard.error("SCardDisconnect failed")

    monkeypatch.setattr(scard, "SCardDisconnect", gone)
    reader.power_off()
    reader.power_off()
    assert not pcsc.open_contexts
