"""PcscReader: pyscard failures become firmware errors, reader choice by name.

pyscard's reader list is replaced by fakes here so that every failure can be
produced on demand; the real pcscd + vpcd path is tested in test_emv_sim.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from smartcard import scard
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.pcsc.PCSCExceptions import EstablishContextException, ListReadersException

from firmware.emv import reader as reader_module
from firmware.emv.reader import PcscReader, list_pcsc_readers, open_pcsc_reader
from firmware.errors import CardRemovedError, NoCardError, NoReaderError, ReaderError


class FakeConnection:
    def __init__(
        self, *, connect_error: Exception | None = None, transmit_error: Exception | None = None
    ) -> None:
        self.connect_error = connect_error
        self.transmit_error = transmit_error
        self.protocol: int = CardConnection.T1_protocol
        self.disconnected = False
        self.sent: list[list[int]] = []

    def connect(self, protocol: int) -> None:
        assert protocol == CardConnection.T0_protocol | CardConnection.T1_protocol
        if self.connect_error is not None:
            raise self.connect_error

    def getATR(self) -> list[int]:
        return [0x3B, 0x68, 0x00, 0x00]

    def getProtocol(self) -> int:
        return self.protocol

    def transmit(self, apdu: list[int]) -> tuple[list[int], int, int]:
        if self.transmit_error is not None:
            raise self.transmit_error
        self.sent.append(apdu)
        return [0x6F, 0x00], 0x90, 0x00

    def disconnect(self) -> None:
        self.disconnected = True

    def release(self) -> None:
        pass


class FakePcscReader:
    def __init__(self, name: str, connection: FakeConnection) -> None:
        self.name = name
        self.connection = connection

    def createConnection(self) -> FakeConnection:
        return self.connection

    def __str__(self) -> str:
        return self.name


def install(monkeypatch: pytest.MonkeyPatch, readers: list[FakePcscReader], with_card: set[str]) -> None:
    monkeypatch.setattr(reader_module, "_pcsc_readers", lambda: readers)
    monkeypatch.setattr(reader_module, "_card_present", lambda name: name in with_card)


def test_power_on_transmit_power_off(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = FakeConnection()
    install(monkeypatch, [FakePcscReader("ACS ACR38U 00 00", connection)], {"ACS ACR38U 00 00"})
    reader = open_pcsc_reader()
    assert reader.name == "ACS ACR38U 00 00"
    assert reader.protocol is None
    assert reader.power_on() == bytes.fromhex("3B680000")
    assert reader.protocol == "T=1"
    assert reader.transmit(bytes.fromhex("00A4040000")) == bytes.fromhex("6F009000")
    assert connection.sent == [[0x00, 0xA4, 0x04, 0x00, 0x00]]
    reader.power_off()
    assert connection.disconnected
    connection.protocol = CardConnection.T0_protocol
    reader.power_on()
    assert reader.protocol == "T=0"


def test_reader_chosen_by_exact_name_then_substring_preferring_a_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Gemalto PC Twin Reader 00 00"]
    install(monkeypatch, [FakePcscReader(n, FakeConnection()) for n in names], {"Virtual PCD 00 01"})
    assert open_pcsc_reader("Virtual PCD 00 00").name == "Virtual PCD 00 00"
    assert open_pcsc_reader("virtual pcd").name == "Virtual PCD 00 01"
    assert open_pcsc_reader("gemalto").name == "Gemalto PC Twin Reader 00 00"
    assert open_pcsc_reader(None).name == "Virtual PCD 00 01"
    with pytest.raises(NoReaderError, match="no reader named 'omnikey'"):
        open_pcsc_reader("omnikey")


def test_no_card_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, [FakePcscReader("R1", FakeConnection())], set())
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
    with pytest.raises(NoReaderError, match="pcscd"):
        PcscReader("R1").power_on()


def test_no_readers_available_is_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> list[Any]:
        raise ListReadersException(scard.SCARD_E_NO_READERS_AVAILABLE)

    monkeypatch.setattr(reader_module, "_pcsc_readers", fail)
    assert list_pcsc_readers() == []


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCardException("Unable to connect", hresult=scard.SCARD_E_NO_SMARTCARD), NoCardError),
        (CardConnectionException("x", hresult=scard.SCARD_W_REMOVED_CARD), NoCardError),
        (CardConnectionException("x", hresult=scard.SCARD_E_UNKNOWN_READER), NoReaderError),
        (CardConnectionException("x", hresult=scard.SCARD_E_PROTO_MISMATCH), ReaderError),
    ],
)
def test_power_on_failures(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception]
) -> None:
    install(monkeypatch, [FakePcscReader("R1", FakeConnection(connect_error=error))], {"R1"})
    with pytest.raises(expected, match="R1"):
        PcscReader("R1").power_on()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (CardConnectionException("x", hresult=scard.SCARD_W_REMOVED_CARD), CardRemovedError),
        (CardConnectionException("x", hresult=scard.SCARD_W_RESET_CARD), CardRemovedError),
        (CardConnectionException("x", hresult=scard.SCARD_E_NO_SMARTCARD), CardRemovedError),
        (CardConnectionException("x", hresult=scard.SCARD_E_READER_UNAVAILABLE), CardRemovedError),
        (CardConnectionException("Card returned no valid response"), ReaderError),
        (CardConnectionException("x", hresult=scard.SCARD_F_COMM_ERROR), ReaderError),
    ],
)
def test_transmit_failures(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: type[Exception]
) -> None:
    connection = FakeConnection()
    install(monkeypatch, [FakePcscReader("R1", connection)], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()
    connection.transmit_error = error
    with pytest.raises(expected) as caught:
        reader.transmit(bytes.fromhex("00B2010C00"))
    assert "R1" in str(caught.value)
    assert type(caught.value) is expected


def test_transmit_before_power_on_is_a_reader_error() -> None:
    with pytest.raises(ReaderError):
        PcscReader("R1").transmit(bytes.fromhex("00B2010C00"))


def test_power_off_of_a_vanished_card_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = FakeConnection()
    install(monkeypatch, [FakePcscReader("R1", connection)], {"R1"})
    reader = PcscReader("R1")
    reader.power_on()

    def gone() -> None:
        raise CardConnectionException("x", hresult=scard.SCARD_W_REMOVED_CARD)

    connection.disconnect = gone  # type: ignore[method-assign]
    reader.power_off()
    reader.power_off()
