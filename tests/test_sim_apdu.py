"""Command APDU cases (ISO 7816-4 5.1) and the card's T=1 / T=0 transmission of answers."""

from __future__ import annotations

import pytest

from sim.apdu import Command, TransmissionProtocol, parse_command
from sim.errors import SwError


def test_the_four_cases() -> None:
    case1 = parse_command(bytes.fromhex("00A40400"))
    case2 = parse_command(bytes.fromhex("00B2010C00"))
    case3 = parse_command(bytes.fromhex("0082000002AABB"))
    case4 = parse_command(bytes.fromhex("00A4040002A00000"))
    assert (case1.case, case1.data, case1.le) == (1, b"", None)
    assert (case2.case, case2.le) == (2, 256)  # Le '00' asks for up to 256 bytes
    assert (case3.case, case3.data, case3.le) == (3, b"\xaa\xbb", None)
    assert (case4.case, case4.data, case4.le) == (4, b"\xa0\x00", 256)
    assert case4.header() == "00 A4 04 00"


@pytest.mark.parametrize("apdu", ["00A404", "00A4040002A0", "00A4040002A0000000", "00A4040000000102"])
def test_lengths_that_do_not_add_up_are_6700(apdu: str) -> None:
    with pytest.raises(SwError) as caught:
        parse_command(bytes.fromhex(apdu))
    assert caught.value.sw == 0x6700


def _command(data: bytes = b"", le: int | None = 256) -> Command:
    return Command(0x00, 0xB2, 0x01, 0x0C, data, le)


def test_t1_answers_directly_and_6cxx_when_le_is_too_short() -> None:
    protocol = TransmissionProtocol(t0=False)
    assert protocol.deliver(_command(), b"\x01\x02\x03", 0x9000) == bytes.fromhex("0102039000")
    assert protocol.deliver(_command(le=2), b"\x01\x02\x03", 0x9000) == bytes.fromhex("6C03")
    assert protocol.deliver(_command(le=10), b"\x01\x02\x03", 0x9000) == bytes.fromhex("0102039000")
    assert protocol.deliver(_command(), b"", 0x6A83) == bytes.fromhex("6A83")


def test_t0_case2_needs_the_exact_le() -> None:
    protocol = TransmissionProtocol(t0=True)
    assert protocol.deliver(_command(le=256), b"\x01\x02\x03", 0x9000) == bytes.fromhex("6C03")
    assert protocol.deliver(_command(le=3), b"\x01\x02\x03", 0x9000) == bytes.fromhex("0102039000")


def test_t0_case4_data_waits_for_get_response() -> None:
    protocol = TransmissionProtocol(t0=True)
    select = Command(0x00, 0xA4, 0x04, 0x00, b"\xa0\x00", 256)
    data = bytes(range(0x30))
    assert protocol.deliver(select, data, 0x9000) == bytes.fromhex("6130")
    get_response = Command(0x00, 0xC0, 0x00, 0x00, b"", 0x10)
    assert protocol.get_response(get_response) == data[:0x10] + bytes.fromhex("6120")
    too_long = Command(0x00, 0xC0, 0x00, 0x00, b"", 256)
    assert protocol.get_response(too_long) == bytes.fromhex("6C20")
    rest = Command(0x00, 0xC0, 0x00, 0x00, b"", 0x20)
    assert protocol.get_response(rest) == data[0x10:] + bytes.fromhex("9000")
    with pytest.raises(SwError) as caught:
        protocol.get_response(rest)
    assert caught.value.sw == 0x6985


def test_t0_warning_comes_first_then_the_data() -> None:
    protocol = TransmissionProtocol(t0=True)
    select = Command(0x00, 0xA4, 0x04, 0x00, b"\xa0\x00", 256)
    assert protocol.deliver(select, b"\x6f\x00", 0x6283) == bytes.fromhex("6283")
    assert protocol.get_response(Command(0x00, 0xC0, 0x00, 0x00, b"", 2)) == bytes.fromhex("6F009000")


def test_another_command_discards_the_waiting_data() -> None:
    protocol = TransmissionProtocol(t0=True)
    protocol.deliver(Command(0x00, 0xA4, 0x04, 0x00, b"\xa0", 256), b"\x01", 0x9000)
    protocol.deliver(_command(le=1), b"", 0x6A83)
    with pytest.raises(SwError):
        protocol.get_response(Command(0x00, 0xC0, 0x00, 0x00, b"", 1))
