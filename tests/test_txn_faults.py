"""Every fault of the simulated acquirer and of the card, on a sale and on a void, ends in the right reversal.

Field 39 of the 0400: 98 no (valid) answer, A0 an answer whose MAC does not verify, 06 the card declined
after the host approved, 96 the terminal could not complete. What never left the terminal is not reversed.
At the end of each: everything drained, the ledger equal to the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.emv.result import Outcome
from firmware.errors import HostError
from firmware.host.spec import pack, unpack
from firmware.txn.model import ReversalReason, TxnStatus
from firmware.txn.reverse import OriginalRef
from firmware.txn.service import PendingReversalError, PendingSettlementError
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_rig import Rig, assert_books_balance, evidence, rig_fixture, supervisor_approves


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path, answer_timeout=1.5)


def _pay(rig: Rig, amount: int, order: str, profile: str = "visa-credit") -> object:
    return rig.service.sale(
        SimReader(load_profile_card(profile)), amount, order=order, pin=lambda k, t: "1234"
    )


def _answered(rig: Rig) -> dict:  # type: ignore[type-arg]
    state = next(iter(rig.acquirer._terminals.values()))

    state = next(iter(rig.acquirer._terminals.values()))  # the host's own record
    return dict(state.answered)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("drop", ReversalReason.NO_ANSWER),
        ("close", ReversalReason.NO_ANSWER),
        ("garbage", ReversalReason.NO_ANSWER),
        ("bad_mac", ReversalReason.BAD_MAC),
        ("delay=3", ReversalReason.NO_ANSWER),
    ],
)
def test_a_sale_without_a_valid_answer_is_reversed(rig: Rig, fault: str, reason: ReversalReason) -> None:
    rig.acquirer.set_faults(f"{fault},only=0200,times=1")
    result = _pay(rig, 2500, "F1")
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None
    # the reversal went up right after the card was done, and the host took it
    assert entry.status is TxnStatus.REVERSED, entry
    assert f"({reason.value})" in entry.status_reason
    assert rig.service.ctx.book.outbox.reversal(entry.trace) is None
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == entry.trace] in ([], ["reversed"])
    assert_books_balance(rig)


def test_a_host_that_cannot_be_reached_moves_nothing_and_reverses_nothing(rig: Rig) -> None:
    rig.sim.stop()
    result = _pay(rig, 2500, "F2")
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.FAILED
    assert rig.service.ctx.book.outbox.armed() == []
    assert rig.acquirer.ledger == []


def test_a_reversal_that_cannot_go_up_blocks_the_next_online_request_until_it_does(rig: Rig) -> None:
    rig.acquirer.set_faults("drop,only=0200,times=1")
    rig.link.down_after(1)  # the 0200 leaves, then the network is gone
    result = _pay(rig, 3000, "F3")
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.PENDING
    armed = rig.service.ctx.book.outbox.reversal(entry.trace)
    assert armed is not None and armed.reason is ReversalReason.NO_ANSWER
    with pytest.raises(PendingReversalError):
        _pay(rig, 100, "F4")
    assert rig.service.drain().stopped is not None  # still down: nothing counted as a try
    assert rig.service.ctx.book.outbox.reversal(entry.trace).attempts == 0  # type: ignore[union-attr]
    rig.link.down_after(None)
    report = rig.service.drain()
    assert report.waiting == 0 and report.flagged == 0
    reversed_entry = rig.service.ctx.book.entry(entry.trace)
    assert reversed_entry is not None and reversed_entry.status is TxnStatus.REVERSED
    assert any(mti == "0400" and int(stan) == entry.trace for mti, stan in _answered(rig))
    assert_books_balance(rig)


def test_a_reversal_that_never_gets_through_is_kept_flagged_and_still_blocks(rig: Rig) -> None:
    rig.acquirer.set_faults("drop,only=0200+0400+0401")
    _pay(rig, 3100, "F5")
    flagged, _ = rig.service.ctx.book.outbox.flagged()
    assert len(flagged) == 1 and flagged[0].attempts == rig.profile.max_attempts
    assert rig.service.queue()["flagged"][0]["kind"] == "reversal"
    rig.acquirer.set_faults("")
    with pytest.raises(PendingReversalError, match="used up their tries"):
        _pay(rig, 100, "F6")  # a flagged reversal is not dropped: nothing goes online past it
    report = rig.service.drain()  # the operator's "send now" tries it again
    assert report.flagged == 0 and report.waiting == 0
    assert rig.service.ctx.book.entry(flagged[0].trace).status is TxnStatus.REVERSED  # type: ignore[union-attr]
    _pay(rig, 100, "F6")
    assert_books_balance(rig)


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ("fault-aac-after-approval", ReversalReason.CARD_DECLINED_AFTER_APPROVAL),
        ("fault-removed-before-second-ac", ReversalReason.CARD_DECLINED_AFTER_APPROVAL),
    ],
)
def test_the_card_declining_after_the_host_approved_is_reversed_06(
    rig: Rig, profile: str, reason: ReversalReason
) -> None:
    result = _pay(rig, 4200, "F6", profile)
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED  # type: ignore[attr-defined]
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.REVERSED
    assert f"({reason.value})" in entry.status_reason
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == entry.trace] == ["reversed"]
    assert_books_balance(rig)


def test_a_host_decline_is_a_decline_and_not_reversed(rig: Rig) -> None:
    rig.acquirer.set_faults("decline=51,only=0200,times=1")
    result = _pay(rig, 5100, "F7")
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.DECLINED and entry.response_code == "51"
    assert rig.service.ctx.book.outbox.armed() == []
    assert_books_balance(rig)


@pytest.mark.parametrize("fault", ["drop", "bad_mac", "garbage"])
def test_a_void_without_a_valid_answer_is_reversed_and_the_sale_stands(rig: Rig, fault: str) -> None:
    sale = _pay(rig, 6000, "V1").entry  # type: ignore[attr-defined]
    rig.acquirer.set_faults(f"{fault},only=0200,times=1")
    result = rig.service.void(OriginalRef(order="V1"), evidence("V1"), supervisor=supervisor_approves)
    assert result.waiting_for_host and result.entry is not None
    report = rig.service.drain()
    assert report.waiting == 0
    void_entry = rig.service.ctx.book.entry(result.entry.trace)
    assert void_entry is not None and void_entry.status is TxnStatus.REVERSED
    original = rig.service.ctx.book.entry(sale.trace)
    assert original is not None and original.status is TxnStatus.APPROVED
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == sale.trace] == ["approved"]
    assert_books_balance(rig)


def test_a_refund_without_an_answer_waits_and_goes_up_as_a_repeat(rig: Rig) -> None:
    _pay(rig, 9000, "W1")
    rig.acquirer.set_faults("drop,only=0220,times=1")
    from firmware.txn.model import RefundMethod

    result = rig.service.refund(
        OriginalRef(order="W1"), 4000, RefundMethod.CARD, evidence("W1"), supervisor=supervisor_approves
    )
    assert result.waiting_for_host
    assert rig.service.drain().waiting == 0
    refund = rig.service.ctx.book.entry(result.entry.trace)  # type: ignore[union-attr]
    assert refund is not None and refund.status is TxnStatus.APPROVED
    assert [e.amount for e in rig.acquirer.ledger if e.type_code == "25"] == [4000]  # applied once
    assert_books_balance(rig)


class _ForgedDecline:
    """A man in the middle: the request reaches the host, the terminal gets an unMACed 0210 / A0 back."""

    def __init__(self, link: object) -> None:
        self.link = link
        self.armed = True

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        answer = self.link.exchange(packed, timeout)  # type: ignore[attr-defined]
        if self.armed and packed[11:13] == bytes.fromhex("0200"):
            self.armed = False
            request = unpack(packed)
            forged = {
                "t": "0210",
                "tpdu": request["tpdu"],
                "header": request["header"],
                "11": request["11"],
                "41": request["41"],
                "42": request["42"],
                "39": "A0",
            }
            return pack(forged)
        return answer


def test_an_unmaced_decline_proves_nothing_and_the_sale_is_reversed(rig: Rig) -> None:
    forged = _ForgedDecline(rig.link.link)
    rig.link.link = forged  # type: ignore[assignment]
    result = _pay(rig, 6100, "M1")
    entry = result.entry  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.REVERSED and "(A0)" in entry.status_reason
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == entry.trace] == ["reversed"]
    assert_books_balance(rig)


def test_an_unmaced_decline_of_a_void_keeps_its_reversal_and_the_void_is_undone(rig: Rig) -> None:
    sale = _pay(rig, 6200, "M2").entry  # type: ignore[attr-defined]
    rig.link.link = _ForgedDecline(rig.link.link)  # type: ignore[assignment]
    result = rig.service.void(OriginalRef(order="M2"), evidence("M2"), supervisor=supervisor_approves)
    assert result.waiting_for_host and result.entry is not None
    rig.service.drain()
    assert rig.service.ctx.book.entry(result.entry.trace).status is TxnStatus.REVERSED  # type: ignore[union-attr]
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == sale.trace] == ["approved"]
    assert_books_balance(rig)


@pytest.mark.parametrize("code", ["08", "11"])
def test_an_approval_other_than_00_is_an_approval(rig: Rig, code: str) -> None:
    rig.acquirer.set_faults(f"decline={code},only=0200,times=1")
    result = _pay(rig, 7300, f"A{code}")
    entry = result.entry  # type: ignore[attr-defined]
    assert result.outcome is Outcome.APPROVED_ONLINE  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.APPROVED and entry.response_code == code
    assert rig.service.ctx.book.outbox.armed() == []
    assert_books_balance(rig)


def test_a_partial_approval_is_not_completed_and_is_reversed_06(rig: Rig) -> None:
    rig.acquirer.set_faults("decline=10,only=0200,times=1")
    result = _pay(rig, 8000, "A10")
    entry = result.entry  # type: ignore[attr-defined]
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED  # type: ignore[attr-defined]
    assert entry is not None and entry.status is TxnStatus.REVERSED and "(06)" in entry.status_reason
    assert [e.status for e in rig.acquirer.ledger if int(e.stan) == entry.trace] == ["reversed"]


def test_a_settlement_whose_answer_was_lost_is_finished_before_the_next_online_request(rig: Rig) -> None:
    _pay(rig, 3000, "P1")
    rig.acquirer.set_faults("drop,only=0500,times=1")  # the host closes the batch; its answer is lost
    with pytest.raises(HostError):
        rig.service.settle()
    assert rig.service.ctx.book.settling == 1
    rig.service = rig.reopen()  # as after a power cut: the books remember the settlement left
    assert rig.service.ctx.book.settling == 1
    # the next sale finishes the settlement first, and goes into the next batch, as at the host
    second = _pay(rig, 4000, "P2").entry  # type: ignore[attr-defined]
    assert second is not None and second.status is TxnStatus.APPROVED and second.batch == 2
    assert rig.service.ctx.book.settling is None and rig.service.ctx.book.batch == 2
    void = rig.service.void(OriginalRef(order="P2"), evidence("P2"), supervisor=supervisor_approves)
    assert void.entry is not None and void.entry.status is TxnStatus.APPROVED, void
    assert_books_balance(rig)


def test_a_settlement_that_cannot_be_finished_holds_back_online_requests(rig: Rig) -> None:
    _pay(rig, 3000, "Q1")
    rig.acquirer.set_faults("drop,only=0500,times=1")
    with pytest.raises(HostError):
        rig.service.settle()
    rig.link.down_after(0)
    with pytest.raises(PendingSettlementError):
        _pay(rig, 4000, "Q2")
    rig.link.down_after(None)
    assert rig.service.ctx.book.settling == 1  # still to be finished
    assert rig.service.settle().new_batch == 2 and rig.service.ctx.book.settling is None
    assert_books_balance(rig)


def test_a_settlement_the_host_refused_or_never_got_holds_nothing_back(rig: Rig) -> None:
    _pay(rig, 3000, "R1")
    rig.link.down_after(0)
    with pytest.raises(HostError):
        rig.service.settle()
    rig.link.down_after(None)
    assert rig.service.ctx.book.settling is None
    assert rig.service.ctx.book.batch == 1
