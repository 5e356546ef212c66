"""The vpcd link: the protocol against a stand-in vpcd socket, then for real through pcscd + pyscard."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import sim.vpcd
from sim.card import load_profile_card
from sim.vpcd import answer, parse_address, run

SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")


WAIT_S = 30.0  # a bound on waiting for the card's thread or its socket, never an expectation of speed


def test_control_codes_and_apdus() -> None:
    card = load_profile_card("visa-credit")
    assert answer(card, b"\x04") == card.atr
    assert answer(card, b"\x01") is None and card.powered
    assert answer(card, b"\x00") is None and not card.powered
    assert answer(card, b"\x02") is None and card.powered
    response = answer(card, SELECT_PSE)
    assert response is not None and response[-2:] == b"\x90\x00"


def test_addresses() -> None:
    assert parse_address("127.0.0.1:35963") == ("127.0.0.1", 35963)
    for bad in ("127.0.0.1", ":35963", "host:port", "h:0", "h:70000"):
        with pytest.raises(Exception, match="HOST:PORT"):
            parse_address(bad)


class FakeVpcd:
    """Plays vpcd's side of the socket: accepts the card, sends framed messages."""

    def __init__(self, *, listening: bool = True) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))  # the port stays ours, listening or not
        self.port = self.server.getsockname()[1]
        self.server.settimeout(WAIT_S)
        if listening:
            self.listen()
        self.conn: socket.socket | None = None

    def listen(self) -> None:
        self.server.listen()

    def accept(self, *, speak: bool = True) -> None:
        """Take the card's connection; like vpcd, ask for the ATR at once unless told not to."""
        self.conn, _ = self.server.accept()
        self.conn.settimeout(WAIT_S)
        if speak:
            self.exchange(b"\x04")

    def exchange(self, payload: bytes) -> bytes:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)
        length = int.from_bytes(self._recv(2), "big")
        return self._recv(length)

    def control(self, code: int) -> None:
        assert self.conn is not None
        self.conn.sendall(b"\x00\x01" + bytes([code]))

    def _recv(self, count: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < count:
            chunk = self.conn.recv(count - len(data))
            if not chunk:
                raise ConnectionError("card closed the link")
            data += chunk
        return data

    def closed_by_card(self) -> bool:
        assert self.conn is not None
        return self.conn.recv(1) == b""


@contextmanager
def card_process(profile: str, port: int) -> Iterator[tuple[Callable[[str], None], io.StringIO, list[int]]]:
    """`run()` in a thread, fed through a pipe like `pos-sim card` through stdin."""
    read_fd, write_fd = os.pipe()
    commands = os.fdopen(read_fd, "r")
    out = io.StringIO()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            run(load_profile_card(profile), ("127.0.0.1", port), commands=commands, out=out)
        ),
        daemon=True,
    )
    thread.start()

    def say(line: str) -> None:
        os.write(write_fd, line.encode() + b"\n")

    try:
        yield say, out, result
    finally:
        os.close(write_fd)
        thread.join(timeout=WAIT_S)
        commands.close()


def wait_for_output(out: io.StringIO, count: int) -> list[str]:
    deadline = time.monotonic() + WAIT_S
    while len(out.getvalue().splitlines()) < count:
        assert time.monotonic() < deadline, out.getvalue()
        time.sleep(0.01)
    return out.getvalue().splitlines()


def test_link_protocol_remove_insert_quit() -> None:
    vpcd = FakeVpcd()
    with card_process("unionpay-debit", vpcd.port) as (say, out, result):
        vpcd.accept()
        assert wait_for_output(out, 1) == ["ready"]
        vpcd.control(1)  # power on
        atr = vpcd.exchange(b"\x04")
        assert atr == load_profile_card("unionpay-debit").atr
        assert vpcd.exchange(SELECT_PSE)[0] == 0x61  # a T=0 card
        say("remove")
        assert vpcd.closed_by_card()
        assert wait_for_output(out, 2)[-1] == "removed"
        say("insert")
        vpcd.accept()
        assert wait_for_output(out, 3)[-1] == "ready"
        vpcd.control(1)
        assert vpcd.exchange(bytes.fromhex("00A4040008A00000033301010100"))[0] == 0x61
        say("quit")
    assert result == [0]


def test_link_waits_for_vpcd_and_reconnects() -> None:
    vpcd = FakeVpcd(listening=False)  # nobody listening yet: the card's connects are refused, it retries
    with card_process("visa-credit", vpcd.port) as (_, out, result):
        time.sleep(0.2)
        assert out.getvalue() == ""
        vpcd.listen()
        vpcd.accept()
        assert wait_for_output(out, 1) == ["ready"]
        assert vpcd.conn is not None
        vpcd.conn.close()  # vpcd went away: the card comes back on its own
        vpcd.accept()
        assert wait_for_output(out, 2) == ["ready", "ready"]
        vpcd.control(1)
        assert vpcd.exchange(SELECT_PSE)[-2:] == b"\x90\x00"
    assert result == [0]  # end of input is quit


def test_a_link_vpcd_never_speaks_on_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim.vpcd, "ACCEPT_TIMEOUT_S", 0.3)
    vpcd = FakeVpcd()
    with card_process("visa-credit", vpcd.port) as (_, out, result):
        vpcd.accept(speak=False)  # taken from the queue, but nothing said on it
        stale = vpcd.conn
        assert stale is not None
        time.sleep(0.1)
        assert out.getvalue() == ""  # not in the reader until vpcd speaks
        assert stale.recv(1) == b""  # the card gave up on that link...
        # ...and comes back on a new one. A link made from now on waits 30 s; one the card made
        # before keeps 0.3 s and may be given up before this thread speaks on it: take the next.
        monkeypatch.setattr(sim.vpcd, "ACCEPT_TIMEOUT_S", WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                vpcd.accept()
                break
            except OSError:  # that link was given up too (ConnectionError is an OSError)
                assert time.monotonic() < deadline, out.getvalue()
        assert wait_for_output(out, 1) == ["ready"]
        vpcd.control(1)
        assert vpcd.exchange(SELECT_PSE)[-2:] == b"\x90\x00"
    assert result == [0]


def test_fault_pull_closes_the_link() -> None:
    vpcd = FakeVpcd()
    with card_process("fault-removed-before-second-ac", vpcd.port) as (say, out, _):
        vpcd.accept()
        vpcd.control(1)
        vpcd.exchange(bytes.fromhex("00A4040007A000000003101000"))
        vpcd.exchange(bytes.fromhex("80A8000002830000"))
        cdol1 = bytes.fromhex("000000001000 000000000000 0156 0000000000 0156 251126 00 11223344")
        assert vpcd.exchange(bytes.fromhex("80AE80001D") + cdol1 + b"\x00")[-2:] == b"\x90\x00"
        assert vpcd.conn is not None
        cdol2 = b"00" + cdol1
        vpcd.conn.sendall((len(cdol2) + 6).to_bytes(2, "big") + bytes.fromhex("80AE40001F") + cdol2 + b"\x00")
        assert vpcd.closed_by_card()
        assert wait_for_output(out, 2) == ["ready", "removed"]
        say("quit")


# --- the real stack: pcscd + vpcd + pyscard --------------------------------------------------------------


def _connect(reader_name: str) -> object:
    from smartcard.System import readers

    [reader] = [r for r in readers() if str(r) == reader_name]
    connection = reader.createConnection()
    connection.connect()
    return connection


def _transmit(connection: object, apdu: bytes) -> tuple[bytes, int]:
    data, sw1, sw2 = connection.transmit(list(apdu))  # type: ignore[attr-defined]
    return bytes(data), (sw1 << 8) | sw2


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_select_through_pcscd(vpcd_card: Callable[[str], Any]) -> None:
    card = vpcd_card("visa-credit")
    connection = _connect(card.reader_name)
    assert bytes(connection.getATR()) == load_profile_card("visa-credit").atr  # type: ignore[attr-defined]
    fci, sw = _transmit(connection, SELECT_PSE)
    assert sw == 0x9000 and fci[0] == 0x6F and b"1PAY.SYS.DDF01" in fci
    _transmit(connection, bytes.fromhex("00A4040007A000000003101000"))
    _transmit(connection, bytes.fromhex("80A8000002830000"))
    atc, sw = _transmit(connection, bytes.fromhex("80CA9F3600"))
    assert sw == 0x9000
    connection.disconnect()  # type: ignore[attr-defined]
    card.remove()
    assert not card.present()
    card.insert()
    connection = _connect(card.reader_name)
    _transmit(connection, bytes.fromhex("00A4040007A000000003101000"))
    assert _transmit(connection, bytes.fromhex("80CA9F3600")) == (atc, 0x9000)  # the same card came back
    connection.disconnect()  # type: ignore[attr-defined]


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_t0_card_through_pcscd(vpcd_card: Callable[[str], Any]) -> None:
    card = vpcd_card("unionpay-debit")
    connection = _connect(card.reader_name)
    data, sw = _transmit(connection, SELECT_PSE)
    assert data == b"" and sw >> 8 == 0x61
    fci, sw = _transmit(connection, bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
    assert sw == 0x9000 and b"1PAY.SYS.DDF01" in fci
    connection.disconnect()  # type: ignore[attr-defined]
