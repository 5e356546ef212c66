"""Sales and their reverse operations end to end: the service, real TCP, the simulated acquirer.

Every test ends with the acquirer's ledger held against the terminal's journal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from firmware.errors import RuleViolation
from firmware.store.sensitive import luhn_valid
from firmware.txn.model import RefundMethod, TxnStatus, TxnType
from firmware.txn.reverse import OriginalRef, SupervisorRefusedError
from firmware.txn.service import TerminalService, open_terminal
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_rig import TERMINAL_ID, Rig, assert_books_balance, evidence, rig_fixture, supervisor_approves


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _card(profile: str = "visa-credit") -> SimReader:
    return SimReader(load_profile_card(profile))


def _sale(service: TerminalService, amount: int, order: str, profile: str = "visa-credit") -> int:
    result = service.sale(_card(profile), amount, order=order, pin=lambda kind, tries: "1234")
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED, result
    return result.entry.trace


def test_sale_then_cancel_order(rig: Rig) -> None:
    trace = _sale(rig.service, 1234, "A1")
    result = rig.service.void(OriginalRef(order="A1"), evidence("A1"), supervisor=supervisor_approves)
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED
    assert result.notice_queued
    original = rig.service.ctx.book.entry(trace)
    assert original is not None and original.status is TxnStatus.VOIDED
    assert rig.service.drain().waiting == 0
    notices = [n.record["payload"] for n in rig.acquirer.notices]
    assert [(n["type"], n["order"], n["amount"], n["trace"]) for n in notices] == [
        ("cancellation", "A1", 1234, result.entry.trace)
    ]
    assert notices[0]["masked_pan"].startswith("476173") and "*" in notices[0]["masked_pan"]
    assert_books_balance(rig)
    with pytest.raises(RuleViolation) as again:
        rig.service.void(OriginalRef(order="A1"), evidence("A1"), supervisor=supervisor_approves)
    assert again.value.rule == "void.already_voided"


def test_partial_refunds_up_to_the_sale_and_one_beyond_is_refused_on_the_terminal(rig: Rig) -> None:
    _sale(rig.service, 10000, "R1")
    for amount in (3000, 7000):
        result = rig.service.refund(
            OriginalRef(order="R1"), amount, RefundMethod.CARD, evidence("R1"), supervisor=supervisor_approves
        )
        assert result.entry is not None and result.entry.status is TxnStatus.APPROVED, result
    [sale] = rig.service.find(order="R1")
    assert [line.split()[-1] for line in sale.history if line.startswith("refund")] == [
        "approved",
        "approved",
    ]
    sent_before = len(rig.acquirer.ledger)
    with pytest.raises(RuleViolation) as beyond:
        rig.service.refund(
            OriginalRef(order="R1"), 1, RefundMethod.CARD, evidence("R1"), supervisor=supervisor_approves
        )
    assert beyond.value.rule == "refund.exceeds_sale"
    assert len(rig.acquirer.ledger) == sent_before  # refused before anything was sent
    assert_books_balance(rig)


def test_cash_refund_sends_nothing_and_is_listed_apart(rig: Rig) -> None:
    _sale(rig.service, 8000, "C1")
    sent_before = len(rig.acquirer.ledger)
    result = rig.service.refund(
        OriginalRef(order="C1"), 2000, RefundMethod.CASH, evidence("C1"), supervisor=supervisor_approves
    )
    assert result.cash_refund is not None and result.cash_refund.amount == 2000
    assert len(rig.acquirer.ledger) == sent_before
    assert [r.amount for r in rig.service.cash_refunds()] == [2000]
    assert all(e.type is not TxnType.REFUND for e in rig.service.journal())
    # the cash refund counts against what may still go back to the card
    with pytest.raises(RuleViolation) as beyond:
        rig.service.refund(
            OriginalRef(order="C1"), 6001, RefundMethod.CARD, evidence("C1"), supervisor=supervisor_approves
        )
    assert beyond.value.rule == "refund.exceeds_sale"
    assert_books_balance(rig)


def test_the_supervisor_is_asked_where_the_terms_want_it(rig: Rig) -> None:
    _sale(rig.service, 500, "S1")
    with pytest.raises(SupervisorRefusedError):
        rig.service.void(OriginalRef(order="S1"), evidence("S1"), supervisor=lambda operation: False)
    with pytest.raises(SupervisorRefusedError):
        rig.service.void(OriginalRef(order="S1"), evidence("S1"))
    assert_books_balance(rig)


def test_settlement_balances_and_opens_the_next_batch_and_a_refund_follows_it(rig: Rig) -> None:
    _sale(rig.service, 5000, "T1")
    _sale(rig.service, 7000, "T2")
    rig.service.refund(
        OriginalRef(order="T2"), 1000, RefundMethod.CARD, evidence("T2"), supervisor=supervisor_approves
    )
    settled = rig.service.settle()
    assert settled.balanced is True and settled.uploaded == 0
    assert (settled.totals.debit_amount, settled.totals.debit_count) == (12000, 2)
    assert (settled.totals.credit_amount, settled.totals.credit_count) == (1000, 1)
    assert rig.service.ctx.book.batch == settled.new_batch == 2
    with pytest.raises(RuleViolation) as settled_void:
        rig.service.void(OriginalRef(order="T1"), evidence("T1"), supervisor=supervisor_approves)
    assert settled_void.value.rule == "void.same_batch"
    after = rig.service.refund(
        OriginalRef(order="T1"), 500, RefundMethod.CARD, evidence("T1"), supervisor=supervisor_approves
    )
    assert after.entry is not None and after.entry.status is TxnStatus.APPROVED and after.entry.batch == 2
    assert_books_balance(rig)


def test_tip_adjust_counts_at_its_new_amount_in_settlement(rig: Rig) -> None:
    _sale(rig.service, 10000, "J1")
    _sale(rig.service, 2000, "J2")
    with pytest.raises(RuleViolation) as mismatch:
        rig.service.adjust(
            OriginalRef(order="J1"), 9999, 11000, evidence("J1"), supervisor=supervisor_approves
        )
    assert mismatch.value.rule == "adjust.original_mismatch"
    with pytest.raises(RuleViolation) as too_much:
        rig.service.adjust(
            OriginalRef(order="J1"), 10000, 12001, evidence("J1"), supervisor=supervisor_approves
        )
    assert too_much.value.rule == "terms.adjust.tip_max"
    result = rig.service.adjust(
        OriginalRef(order="J1"), 10000, 11500, evidence("J1"), supervisor=supervisor_approves
    )
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED
    assert (result.entry.type, result.entry.amount, result.entry.amount_before) == (
        TxnType.ADJUST,
        11500,
        10000,
    )
    settled = rig.service.settle()
    assert settled.balanced is True
    assert (settled.totals.debit_amount, settled.totals.debit_count) == (13500, 2)
    assert_books_balance(rig)


def test_preauthorisation_completion_and_its_void(rig: Rig) -> None:
    preauth = rig.service.sale(_card(), 20000, order="P1", pin=lambda k, t: "1234", kind=TxnType.PREAUTH)
    assert preauth.entry is not None and preauth.entry.status is TxnStatus.APPROVED
    with pytest.raises(RuleViolation) as beyond:
        rig.service.adjust(
            OriginalRef(order="P1"), 20000, 23001, evidence("P1"), supervisor=supervisor_approves
        )
    assert beyond.value.rule == "terms.adjust.completion_tolerance"
    completed = rig.service.adjust(
        OriginalRef(order="P1"), 20000, 22000, evidence("P1"), supervisor=supervisor_approves
    )
    assert completed.entry is not None and completed.entry.status is TxnStatus.APPROVED
    assert completed.entry.type is TxnType.COMPLETION and completed.entry.amount == 22000
    voided = rig.service.void(
        OriginalRef(trace=completed.entry.trace), evidence("P1"), supervisor=supervisor_approves
    )
    assert voided.entry is not None and voided.entry.status is TxnStatus.APPROVED
    settled = rig.service.settle()
    assert settled.balanced is True and settled.totals.debit_count == 0
    assert_books_balance(rig)


def test_an_unbalanced_settlement_uploads_the_batch_and_closes_it(rig: Rig) -> None:
    _sale(rig.service, 3000, "U1")
    _sale(rig.service, 4000, "U2")
    # the host counts one sale more than the terminal (say, one it approved whose answer was lost and
    # whose reversal it never got): its totals differ
    from dataclasses import replace

    ghost = replace(rig.acquirer.ledger[-1], stan="999999", rrn="GHOST0000001")
    rig.acquirer.ledger.append(ghost)
    settled = rig.service.settle()
    assert settled.balanced is False and settled.uploaded == 2
    uploaded = sorted(u.record["payload"]["trace"] for u in rig.acquirer.batch_uploads)
    assert uploaded == sorted(e.trace for e in rig.service.journal() if e.type is TxnType.SALE)
    assert rig.service.ctx.book.batch == 2
    assert rig.acquirer.batch_number(TERMINAL_ID) == "000002"  # the host closed the batch too
    rig.acquirer.ledger.remove(ghost)
    assert_books_balance(rig)


def test_a_cash_refund_notice_goes_up_with_the_queue(rig: Rig) -> None:
    _sale(rig.service, 6000, "N1")
    rig.service.refund(
        OriginalRef(order="N1"), 1500, RefundMethod.CASH, evidence("N1"), supervisor=supervisor_approves
    )
    report = rig.service.drain()
    assert report.waiting == 0 and len(report.sent) == 1
    [notice] = [n.record["payload"] for n in rig.acquirer.notices]
    assert (notice["operation"], notice["amount"], notice["reference"][0]) == ("cash_refund", 1500, "C")
    assert "next_steps" not in notice  # the texts stay on the terminal; field 62 carries the facts


def test_field_61_names_the_original_by_the_hosts_date_not_the_terminals_clock(rig: Rig) -> None:
    from datetime import datetime, timedelta

    rig.clock = lambda: datetime.now().astimezone() - timedelta(days=1)  # the clock sits before midnight
    rig.reopen()
    trace = _sale(rig.service, 9000, "D1")
    sold = rig.service.ctx.book.entry(trace)
    assert sold is not None
    rig.clock = None
    rig.reopen()
    result = rig.service.refund(
        OriginalRef(order="D1"),
        1000,
        RefundMethod.CARD,
        evidence("D1", sold.created, reason="late"),
        supervisor=supervisor_approves,
    )
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED, result.message
    assert_books_balance(rig)


def test_a_tip_adjusted_sale_can_be_refunded_up_to_what_was_paid(rig: Rig) -> None:
    _sale(rig.service, 10000, "K1")
    rig.service.adjust(OriginalRef(order="K1"), 10000, 11500, evidence("K1"), supervisor=supervisor_approves)
    result = rig.service.refund(
        OriginalRef(order="K1"), 11500, RefundMethod.CARD, evidence("K1"), supervisor=supervisor_approves
    )
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED, result.message
    assert_books_balance(rig)


def test_the_daily_refund_limit_counts_refunds_settled_earlier_today(rig: Rig) -> None:
    from dataclasses import replace

    terms = rig.service.ctx.terms
    rig.service.ctx = replace(
        rig.service.ctx, terms=replace(terms, refund=replace(terms.refund, max_per_day=3000))
    )
    _sale(rig.service, 5000, "Y1")
    rig.service.refund(
        OriginalRef(order="Y1"), 2000, RefundMethod.CARD, evidence("Y1"), supervisor=supervisor_approves
    )
    rig.service.settle()
    _sale(rig.service, 5000, "Y2")
    with pytest.raises(RuleViolation) as over:
        rig.service.refund(
            OriginalRef(order="Y2"), 1500, RefundMethod.CARD, evidence("Y2"), supervisor=supervisor_approves
        )
    assert over.value.rule == "terms.refund.per_day"


def test_a_sale_without_an_order_number_gets_one_that_never_looks_like_a_card_number(rig: Rig) -> None:
    # The generated number starts from the date and time: 2026-03-14 15:09:35 as 14 digits passes Luhn,
    # and a run of 13 to 19 digits passing Luhn is what the books refuse as a clear PAN.
    when = datetime(2026, 3, 14, 15, 9, 35, tzinfo=timezone(timedelta(hours=8)))
    assert luhn_valid(f"{when:%Y%m%d%H%M%S}")
    rig.service.close()
    rig.service = open_terminal(
        rig.data_dir, rig.link, clock=lambda: when, sleep=lambda seconds: None, profile=rig.profile,
        random_bytes=lambda count: b"\xab" * count if count == 2 else os.urandom(count),
    )  # fmt: skip
    result = rig.service.sale(_card(), 1500, pin=lambda kind, tries: "1234")
    assert result.entry is not None and result.entry.status is TxnStatus.APPROVED, result
    assert not any(luhn_valid(run) for run in re.findall(r"\d{13,19}", result.entry.order))
    assert rig.service.find(order=result.entry.order) == [result.entry]
    assert_books_balance(rig)
