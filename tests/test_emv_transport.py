"""Transport layer: 61xx / 6Cxx handled below the application, bounded loops,
reader failures mapped to firmware errors, the masked trace.

Traces: [PBOC] http://www.javashuo.com/article/p-nfdedite-hp.html (SELECT PSE
answered '61 28', READ RECORD answered '6C 27'); [AHF] LinkedIn "EMV Application
Specification :: Read Application Data" (READ RECORD answered '6C 39').
"""

from __future__ import annotations

import itertools
import json

import pytest

from firmware.emv import apdu
from firmware.emv.transport import Transport
from firmware.errors import (
    ApduError,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    PosError,
    ReaderError,
    StatusWordError,
)
from tests.emv_fakes import ATR, PUBLISHED_RECORD_SFI1, CardGone, FakeReader, ScriptedReader, h, tlv_bytes

PBOC_PSE_FCI = (
    "6F 26 84 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 A5 14 88 01 01 5F 2D 02 7A 68 9F 11 01 01"
    " BF 0C 05 9F 4D 02 0B 0A"
)
PBOC_DIR_RECORD = (
    "70 25 61 23 4F 08 A0 00 00 03 33 01 01 01 50 0A 50 42 4F 43 20 44 45 42 49 54"
    " 9F 12 0A 50 42 4F 43 20 44 45 42 49 54"
)


def test_pboc_trace_61xx_and_6cxx_are_resolved() -> None:
    reader = ScriptedReader(
        [
            ("00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00", "61 28"),
            ("00 C0 00 00 28", PBOC_PSE_FCI + " 90 00"),
            ("00 B2 01 0C 00", "6C 27"),
            ("00 B2 01 0C 27", PBOC_DIR_RECORD + " 90 00"),
        ]
    )
    transport = Transport(reader)
    assert transport.power_on() == ATR
    select = transport.exchange(apdu.select_by_name(b"1PAY.SYS.DDF01"))
    assert (select.data, select.sw) == (h(PBOC_PSE_FCI), 0x9000)
    record = transport.send(apdu.read_record(1, 1))
    assert record.data == h(PBOC_DIR_RECORD)
    assert reader.finished
    assert [entry.name for entry in transport.trace] == [
        "SELECT",
        "GET RESPONSE",
        "READ RECORD",
        "READ RECORD",
    ]


def test_published_6c39_read_record() -> None:
    reader = ScriptedReader(
        [("00B2010C00", "6C39"), ("00B2010C39", PUBLISHED_RECORD_SFI1.hex() + "9000")],
    )
    transport = Transport(reader)
    assert transport.send(apdu.read_record(1, 1)).data == PUBLISHED_RECORD_SFI1


def test_chained_get_response_concatenates() -> None:
    reader = ScriptedReader(
        [
            ("80 A8 00 00 02 83 00 00", "61 10"),
            ("00 C0 00 00 10", "77 0E 82 02 19 80 94 08 08 01 01 01 10 01 61 04"),
            ("00 C0 00 00 04", "02 00 90 00"),
        ]
    )
    response = Transport(reader).exchange(apdu.get_processing_options(b""))
    assert response.data == h("77 0E 82 02 19 80 94 08 08 01 01 01 10 01 02 00")
    assert response.sw == 0x9000


def test_get_response_itself_answered_6cxx() -> None:
    reader = ScriptedReader(
        [("00 B2 01 0C 00", "61 00"), ("00 C0 00 00 00", "6C 03"), ("00 C0 00 00 03", "70 01 00 90 00")]
    )
    assert Transport(reader).send(apdu.read_record(1, 1)).data == h("700100")


def test_case4_warning_without_data_fetches_the_data() -> None:
    # Book 1 9.3.1.3: the data of a case 4 command answered '62xx' waits for GET RESPONSE.
    fci = "6F 0B 84 07 A0 00 00 00 03 10 10 A5 00"
    reader = ScriptedReader(
        [("00 A4 04 00 07 A0 00 00 00 03 10 10 00", "62 83"), ("00 C0 00 00 00", fci + " 90 00")]
    )
    response = Transport(reader).exchange(apdu.select_by_name(h("A0000000031010")))
    assert (response.data, response.sw) == (h(fci), 0x6283)


def test_case4_warning_kept_when_get_response_has_nothing() -> None:
    reader = ScriptedReader(
        [("00 A4 04 00 07 A0 00 00 00 03 10 10 00", "62 83"), ("00 C0 00 00 00", "6D 00")]
    )
    response = Transport(reader).exchange(apdu.select_by_name(h("A0000000031010")))
    assert (response.data, response.sw) == (b"", 0x6283)


def test_card_answering_61xx_forever_is_bounded() -> None:
    reader = FakeReader(lambda command: h("61 10"))
    transport = Transport(reader, max_exchanges_per_command=8)
    with pytest.raises(ApduError, match="no final status word"):
        transport.exchange(apdu.read_record(1, 1))
    assert len(transport.trace) == 8


def test_card_answering_6cxx_to_its_own_le_is_refused() -> None:
    reader = FakeReader(lambda command: h("6C 10"))
    with pytest.raises(ApduError):
        Transport(reader).exchange(apdu.read_record(1, 1))


def test_6cxx_on_a_command_without_le_is_refused() -> None:
    reader = FakeReader(lambda command: h("6C 10"))
    with pytest.raises(ApduError):
        Transport(reader).exchange(apdu.verify(h("2412 34FF FFFF FFFF")))


def test_response_longer_than_the_bound_is_refused() -> None:
    reader = FakeReader(lambda command: bytes(250) + h("61 00"))
    with pytest.raises(ApduError, match="longer than"):
        Transport(reader, max_exchanges_per_command=100).exchange(apdu.read_record(1, 1))


@pytest.mark.parametrize("raw", [b"", h("90")])
def test_reader_answer_without_status_word(raw: bytes) -> None:
    transport = Transport(FakeReader(lambda command: raw))
    with pytest.raises(ApduError):
        transport.exchange(apdu.get_challenge())
    assert transport.trace[0].response == raw


def test_send_refuses_a_status_word_not_allowed() -> None:
    transport = Transport(FakeReader(lambda command: h("6A 83")))
    with pytest.raises(StatusWordError) as caught:
        transport.send(apdu.read_record(1, 3))
    assert caught.value.sw == 0x6A83
    assert "READ RECORD" in str(caught.value)
    assert transport.send(apdu.read_record(1, 3), allowed=(0x9000, 0x6A83)).sw == 0x6A83


def test_no_card_at_power_on() -> None:
    with pytest.raises(NoCardError):
        Transport(FakeReader(None)).power_on()


def test_card_removed_mid_dialogue_and_power_off_stays_quiet() -> None:
    reader = FakeReader(lambda command: h("9000"))
    transport = Transport(reader)
    with pytest.raises(CardRemovedError), transport.session():
        transport.exchange(apdu.get_challenge())
        reader.card = None
        transport.exchange(apdu.get_challenge())
    assert reader.power_offs == 1


def test_every_reader_os_error_becomes_a_pos_error() -> None:
    class Broken:
        name = "broken"

        def power_on(self) -> bytes:
            return ATR

        def transmit(self, apdu_bytes: bytes) -> bytes:
            raise CardGone("link dropped")

        def power_off(self) -> None:
            raise OSError("gone")

    transport = Transport(Broken())
    transport.power_on()
    with pytest.raises(PosError):
        transport.exchange(apdu.get_challenge())
    transport.power_off()


def test_trace_times_come_from_the_injected_clock() -> None:
    ticks = itertools.count(start=0, step=0.25)
    reader = ScriptedReader([("00 B2 01 0C 00", "61 05"), ("00 C0 00 00 05", "70 03 5A 01 12 90 00")])
    transport = Transport(reader, clock=lambda: next(ticks))
    transport.send(apdu.read_record(1, 1))
    assert [entry.elapsed for entry in transport.trace] == [0.25, 0.25]
    assert [row["ms"] for row in transport.display_trace()] == [250.0, 250.0]


def test_trace_display_masks_pan_track2_name_and_pin() -> None:
    track2 = h("5413330089020094D25122011234567890123F")
    record = tlv_bytes(
        0x70,
        tlv_bytes(0x5A, h("5413330089020094")) + tlv_bytes(0x57, track2) + tlv_bytes(0x5F20, b"DOE/JOHN"),
    )
    responses = iter([record + h("9000"), h("9000")])
    transport = Transport(FakeReader(lambda command: next(responses)))
    transport.send(apdu.read_record(1, 1))
    transport.send(apdu.verify(h("24 12 34 FF FF FF FF FF")))
    shown = json.dumps(transport.display_trace())
    assert "5413330089020094" not in shown
    assert "D2512201123" not in shown and "DOE" not in shown and "444F45" not in shown
    assert "541333******0094" in shown
    assert "241234" not in shown
    rows = transport.display_trace()
    assert str(rows[1]["command"]).startswith("0020008008<8 bytes of PIN data withheld")
    assert rows[0]["sw"] == "9000"
    # The raw bytes stay available in memory for the kernel.
    assert transport.trace[0].response == record + h("9000")


# --- the CardReader error contract (firmware.emv.reader.CardReader) ---------------------------


class _FailingReader:
    """A reader whose every call fails with the error given."""

    name = "failing"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def power_on(self) -> bytes:
        raise self.error

    def transmit(self, apdu_bytes: bytes) -> bytes:
        raise self.error

    def power_off(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        NoCardError("no card"),
        CardRemovedError("card left"),
        NoReaderError("reader gone"),
        ReaderError("pcscd unreachable"),
    ],
)
def test_reader_errors_pass_through_unchanged(error: ReaderError) -> None:
    transport = Transport(_FailingReader(error))
    with pytest.raises(ReaderError) as at_power_on:
        transport.power_on()
    with pytest.raises(ReaderError) as at_transmit:
        transport.exchange(apdu.get_challenge())
    assert at_power_on.value is error and at_transmit.value is error


@pytest.mark.parametrize("error", [CardGone("link dropped"), OSError("gone")])
def test_reader_os_errors_become_no_card_then_card_removed(error: OSError) -> None:
    transport = Transport(_FailingReader(error))
    with pytest.raises(NoCardError) as at_power_on:
        transport.power_on()
    with pytest.raises(CardRemovedError) as at_transmit:
        transport.exchange(apdu.get_challenge())
    assert at_power_on.value.__cause__ is error and at_transmit.value.__cause__ is error


class _GoneAtPowerOff(_FailingReader):
    """Powers on and answers, then finds the card or itself gone at power off."""

    def power_on(self) -> bytes:
        return ATR

    def transmit(self, apdu_bytes: bytes) -> bytes:
        return h("6D00")


@pytest.mark.parametrize(
    "error", [CardGone("card removed"), CardRemovedError("card left"), NoReaderError("reader gone")]
)
def test_a_failing_power_off_does_not_hide_how_the_dialogue_ended(error: Exception) -> None:
    transport = Transport(_GoneAtPowerOff(error))
    transport.power_off()
    with pytest.raises(StatusWordError), transport.session():
        transport.send(apdu.get_challenge())
