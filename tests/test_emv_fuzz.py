"""Fuzzing the whole reading path: random, truncated and corrupted responses,
random status words, '61xx'/'6Cxx' storms and a card pulled out mid-way.

Only firmware errors (PosError subclasses) may come out, never a built-in
error, never a hang or an allocation above the bound (`bounded`); and whatever
is displayed never holds the clear PAN. `pos-emv read` says every error in
one line and an exit code; a whole transaction ends in an outcome whatever
the card does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from firmware.cli.emv import main as pos_emv
from firmware.emv.application import read_application
from firmware.emv.application_list import load_application_list
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.online import OnlineRequest, OnlineResponse
from firmware.emv.report import read_report, technician_chooser
from firmware.emv.transaction import TransactionInput
from firmware.emv.transport import Transport
from firmware.txn.card_payment import KernelSetup
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.emv_fakes import MC_AID, VISA_AID, CardGone, FakeCard, complete_app, directory_record
from tests.fuzz_targets import bounded, fuzz_settings

CLEAR_PAN = "5413330089020094"
CONFIG = load_application_list()


def make_card(t0: bool, pse: bool) -> FakeCard:
    apps = [complete_app(MC_AID, priority=0x01), complete_app(VISA_AID, priority=0x82)]
    records = [directory_record((MC_AID, b"MC", 0x01), (VISA_AID, b"VISA", 0x82))] if pse else None
    return FakeCard(apps, pse_records=records, t0=t0)


class FuzzReader:
    """Answers like the card, except that each answer is, with a chance of
    `fault_percent` %, truncated, corrupted, given another status word,
    replaced by noise or a '61xx'/'6Cxx'/warning, or the card is pulled out."""

    def __init__(
        self,
        card: Callable[[bytes], bytes],
        draw: Callable[[st.SearchStrategy[int]], int],
        draw_bytes: Callable[[st.SearchStrategy[bytes]], bytes],
        fault_percent: int,
    ) -> None:
        self.name = "Fuzz Reader"
        self._card = card
        self._draw = draw
        self._draw_bytes = draw_bytes
        self._fault_percent = fault_percent
        self._gone = False

    def power_on(self) -> bytes:
        if self._draw(st.integers(0, 99)) < self._fault_percent // 4:
            raise CardGone("no card")
        return bytes.fromhex("3B6800000073C84000009000")

    def transmit(self, apdu: bytes) -> bytes:
        if self._gone:
            raise CardGone("card removed")
        response = self._card(apdu)
        if self._draw(st.integers(0, 99)) >= self._fault_percent:
            return response
        fault = self._draw(st.integers(0, 7))
        data, sw = response[:-2], response[-2:]
        if fault == 0:  # the data cut short, the status word kept
            return data[: len(data) - self._draw(st.integers(1, max(1, len(data))))] + sw
        if fault == 1 and data:  # one byte of the data corrupted
            flipped = bytearray(data)
            flipped[self._draw(st.integers(0, len(data) - 1))] ^= self._draw(st.integers(1, 255))
            return bytes(flipped) + sw
        if fault == 7 and response:  # the whole answer cut short
            return response[: len(response) - self._draw(st.integers(1, len(response)))]
        if fault == 2:
            return response[:-2] + self._draw_bytes(st.binary(min_size=2, max_size=2))
        if fault == 3:
            return self._draw_bytes(st.binary(max_size=300))
        if fault == 4:
            return bytes(
                [self._draw(st.sampled_from([0x61, 0x6C, 0x62, 0x63])), self._draw(st.integers(0, 255))]
            )
        if fault == 5:
            return response + self._draw_bytes(st.binary(min_size=1, max_size=8))
        self._gone = True
        raise CardGone("card removed")

    def power_off(self) -> None:
        if self._gone:
            raise CardGone("card removed")


def fuzz_reader(data: st.DataObject, card: Callable[[bytes], bytes]) -> FuzzReader:
    return FuzzReader(card, data.draw, data.draw, data.draw(st.integers(0, 40), label="fault percent"))


def _read(transport: Transport) -> str:
    """Read the card's application and its technician's report (as shown: JSON)."""
    with transport.session():
        result = read_application(transport, CONFIG, choose=technician_chooser(None))
        return json.dumps(read_report(transport, result))


@pytest.mark.timeout(120)
@fuzz_settings(250)
@given(st.data(), st.booleans(), st.booleans())
def test_reading_path_only_raises_firmware_errors(data: st.DataObject, t0: bool, pse: bool) -> None:
    reader = fuzz_reader(data, make_card(t0, pse))
    transport = Transport(reader, clock=lambda: 0.0)
    shown = bounded("emv reading path", lambda: _read(transport))
    if shown.startswith("{"):
        assert CLEAR_PAN not in shown
        event("read completed")
    assert CLEAR_PAN not in json.dumps(transport.display_trace())


@pytest.mark.timeout(120)
@fuzz_settings(150)
@given(st.data())
def test_random_answers_to_every_command(data: st.DataObject) -> None:
    def card(apdu: bytes) -> bytes:
        return data.draw(st.binary(max_size=260))

    transport = Transport(fuzz_reader(data, card))
    shown = bounded("emv random answers", lambda: _read(transport))
    assert CLEAR_PAN not in shown


@pytest.mark.timeout(120)
@fuzz_settings(100)
@given(st.data(), st.booleans())
def test_pos_emv_read_never_tracebacks(data: st.DataObject, t0: bool) -> None:
    reader = fuzz_reader(data, make_card(t0, True))
    out, err = io.StringIO(), io.StringIO()
    code = bounded(
        "emv pos-emv read",
        lambda: pos_emv(
            ["read", "--reader", "sim:fuzz"],
            open_reader=lambda spec: reader,
            clock=lambda: 0.0,
            now=lambda: datetime(2025, 6, 1, 12, 0, 0),
            random_bytes=lambda n: bytes(n),
            stdout=out,
            stderr=err,
        ),
    )
    assert isinstance(code, int), f"pos-emv let out a {code}"  # the command says it on stderr, exit code
    if code == 0:
        assert err.getvalue() == ""
        assert CLEAR_PAN not in out.getvalue()
        json.loads(out.getvalue())
    else:
        assert out.getvalue() == ""
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("pos-emv: ")
        assert "Traceback" not in err.getvalue()


_KERNEL = KernelSetup.load()


@pytest.mark.timeout(120)
@fuzz_settings(80)
@given(st.data(), st.sampled_from(["visa-credit", "mastercard-credit", "unionpay-debit", "multi-app"]),
       st.sampled_from([None, "approve", "decline"]))  # fmt: skip
def test_whole_transaction_with_a_faulty_card_only_raises_firmware_errors(
    data: st.DataObject, profile: str, host: str | None
) -> None:
    """GPO, records, ODA, CVM, risk, both GENERATE ACs and issuer scripts with answers damaged anywhere."""
    sim = SimReader(load_profile_card(profile))
    sim.power_on()
    reader = fuzz_reader(data, sim.transmit)

    def online(request: OnlineRequest) -> OnlineResponse | None:
        if host is None:
            return None
        return OnlineResponse(response_code="00" if host == "approve" else "51")

    services = KernelServices(
        terminal=_KERNEL.applications,
        config=_KERNEL.config,
        capks=_KERNEL.capks,
        random_bytes=lambda n: bytes(n),
        pin_entry=lambda kind, tries: "1234",
        online_pin_block=lambda pin, pan: bytes(8),
        online=online,
    )
    txn = TransactionInput(
        amount=12_345,
        now=datetime(2025, 6, 1, 12, 0, 0),
        unpredictable_number=b"\x01\x02\x03\x04",
        random_selection_number=50,
        sequence_counter=1,
        merchant_forced_online=True,
    )
    outcome = bounded("emv whole transaction", lambda: run_transaction(reader, txn, services))
    # The card's faults are outcomes (TERMINATED, declined...): the kernel raises only for the caller's
    # own errors and this caller makes none.
    assert not isinstance(outcome, str), f"the kernel raised {outcome} over a faulty card"
    assert CLEAR_PAN not in repr(outcome)
