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
from tests.txn_rig import Rig, assert_books_balance, evidence, rig_fixture, supervisor_approves


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
