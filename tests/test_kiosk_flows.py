"""The kiosk's flows with keypad events alone, through the real screens, against the simulated host.

A sale, a cancel order, a partial refund to the card, a cash refund and an adjust, each typed
at the keypad (keys as the PC keyboard's KEYDOWN events), then the acquirer's ledger held
against the terminal's journal (tests/txn_rig.assert_books_balance).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.app import Kiosk
from firmware.screens.base import Receipt
from firmware.txn.model import JournalEntry, TxnStatus, TxnType
from tests.kiosk_rig import kiosk_on, play, tapped, typed
from tests.txn_rig import SUPERVISOR_PASSWORD, Rig, assert_books_balance, ledger_rows, rig_fixture


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _sale(kiosk: Kiosk, rig: Rig, amount_digits: str, *, language: str = "zh") -> JournalEntry:
    approved = "交易成功" if language == "zh" else "Approved"
    play(
        kiosk,
        "ENTER",  # main menu
        "1",  # sale
        *typed(amount_digits),
        "ENTER",
        "CARD INSERT visa-credit",
        "EXPECT " + ("请持卡人输入密码" if language == "zh" else "Cardholder: enter your PIN"),
        *typed("1234"),
        "ENTER",
        "EXPECT " + approved,
        "ENTER",  # done: the receipt
        "EXPECT " + ("签购单预览" if language == "zh" else "Receipt"),
        "ENTER",  # back to idle
        "CARD REMOVE",
    )
    sales = [e for e in rig.service.journal() if e.type is TxnType.SALE]
    return sales[-1]


def _evidence(original: JournalEntry, *, reason: bool) -> list[str]:
    keys = [*typed(f"{original.created:%Y%m%d%H%M}"), "ENTER"]
    keys += [*tapped("LI LEI"), "ENTER"]
    keys += [*typed("13800138000"), "ENTER"]
    if reason:
        keys.append("1")  # goods returned
    return keys


def _authorise() -> list[str]:
    return ["ENTER", "ENTER", *typed(SUPERVISOR_PASSWORD), "ENTER"]  # terms, confirm, password


def test_a_sale_typed_at_the_keypad_is_approved_and_in_the_ledger(rig: Rig) -> None:
    receipts: list[Receipt] = []
    with kiosk_on(rig, receipts=receipts) as kiosk:
        sale = _sale(kiosk, rig, "1234")
    assert (sale.amount, sale.status) == (1234, TxnStatus.APPROVED)
    assert sale.order.isdigit() and len(sale.order) == 14
    assert [r.kind for r in receipts] == ["sale"]
    assert ledger_rows(rig.acquirer)[sale.trace]["amount"] == 1234
    assert_books_balance(rig)


def test_cancel_order_with_evidence_terms_and_supervisor(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        sale = _sale(kiosk, rig, "5000")
        play(
            kiosk,
            "ENTER",
            "2",  # cancel order
            *typed(sale.order),
            "ENTER",
            *_evidence(sale, reason=False),
            "EXPECT 交易条款",
            "EXPECT 撤销：仅限当前未结算批次内的原交易，全额撤销",
            "ENTER",
            "EXPECT 请确认",
            "EXPECT 申请人姓名：LI LEI",
            "ENTER",
            "EXPECT 请输入主管密码",
            *typed(SUPERVISOR_PASSWORD),
            "EXPECT ******",
            "ENTER",
            "EXPECT 交易成功",
            "EXPECT 客户通知已排队上送",
        )
    original = rig.service.ctx.book.entry(sale.trace)
    assert original is not None and original.status is TxnStatus.VOIDED
    voids = [e for e in rig.service.journal() if e.type is TxnType.VOID]
    assert len(voids) == 1 and voids[0].status is TxnStatus.APPROVED
    assert voids[0].evidence is not None and voids[0].evidence.name == "LI LEI"
    assert voids[0].evidence.contact == "13800138000"
    assert voids[0].supervisor
    assert_books_balance(rig)


def test_partial_refund_to_the_card(rig: Rig) -> None:
    with kiosk_on(rig, language="en") as kiosk:
        sale = _sale(kiosk, rig, "10000", language="en")
        play(
            kiosk,
            "ENTER",
            "3",  # refund
            *typed(sale.order),
            "ENTER",
            *typed("3000"),
            "EXPECT 30.00",
            "ENTER",
            "EXPECT To the card",
            "1",
            *_evidence(sale, reason=True),
            "EXPECT Terms",
            "ENTER",
            "EXPECT Refund amount: CNY 30.00",
            "EXPECT Refund to: To the card",
            "ENTER",
            *typed(SUPERVISOR_PASSWORD),
            "ENTER",
            "EXPECT Approved",
        )
    refunds = [e for e in rig.service.journal() if e.type is TxnType.REFUND]
    assert [(r.amount, r.status) for r in refunds] == [(3000, TxnStatus.APPROVED)]
    assert refunds[0].evidence is not None and refunds[0].evidence.reason == "Goods returned"
    row = ledger_rows(rig.acquirer)[refunds[0].trace]
    assert (row["type"], row["amount"], row["status"], row["rrn"]) == (
        "refund",
        3000,
        "approved",
        refunds[0].rrn,
    )
    assert_books_balance(rig)


def test_cash_refund_moves_nothing_on_the_wire(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        sale = _sale(kiosk, rig, "8000")
        sent_before = len(rig.acquirer.ledger)
        play(
            kiosk,
            "ENTER",
            "3",
            *typed(sale.order),
            "ENTER",
            *typed("2000"),
            "ENTER",
            "2",  # in cash
            *_evidence(sale, reason=True),
            "EXPECT 现金",
            *_authorise(),
            "EXPECT 现金退款已登记，请当面付现",
            "EXPECT 20.00 元",
        )
    assert len(rig.acquirer.ledger) == sent_before
    assert [r.amount for r in rig.service.cash_refunds()] == [2000]
    assert_books_balance(rig)


def test_adjust_the_amount_tip(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        sale = _sale(kiosk, rig, "10000")
        play(
            kiosk,
            "ENTER",
            "4",  # adjust
            *typed(sale.order),
            "ENTER",
            *typed("10000"),  # the original amount, typed again
            "ENTER",
            *typed("11500"),  # the new amount: a 15 % tip
            "ENTER",
            *_evidence(sale, reason=False),
            "EXPECT 交易条款",
            "ENTER",
            "EXPECT 新金额：115.00 元",
            "ENTER",
            *typed(SUPERVISOR_PASSWORD),
            "ENTER",
            "EXPECT 交易成功",
        )
    adjusts = [e for e in rig.service.journal() if e.type is TxnType.ADJUST]
    assert [(a.amount, a.amount_before, a.status) for a in adjusts] == [(11500, 10000, TxnStatus.APPROVED)]
    assert ledger_rows(rig.acquirer)[adjusts[0].trace]["type"] == "adjust"
    assert_books_balance(rig)


def test_a_refund_past_the_sale_is_refused_on_screen_before_anything_is_sent(rig: Rig) -> None:
    with kiosk_on(rig, language="en") as kiosk:
        sale = _sale(kiosk, rig, "1000", language="en")
        sent_before = len(rig.acquirer.ledger)
        play(
            kiosk,
            "ENTER",
            "3",
            *typed(sale.order),
            "ENTER",
            *typed("1001"),
            "ENTER",
            "1",
            *_evidence(sale, reason=True),
            *_authorise(),
            "EXPECT Refunds would exceed the sale",
            "EXPECT refund.exceeds_sale",
        )
    assert len(rig.acquirer.ledger) == sent_before
    assert_books_balance(rig)


def test_a_wrong_original_date_is_shown_on_its_field(rig: Rig) -> None:
    with kiosk_on(rig, language="en") as kiosk:
        sale = _sale(kiosk, rig, "1000", language="en")
        play(
            kiosk,
            "ENTER",
            "2",
            *typed(sale.order),
            "ENTER",
            *typed("20200101"),
            "ENTER",
            "EXPECT Original date and time: not accepted",
            "EXPECT Original date and time",
        )


def test_cancel_while_the_host_answers_ends_the_card_session_and_the_approval_is_reversed(rig: Rig) -> None:
    rig.acquirer.set_faults("delay=0.8,only=0200,times=1")  # the 0200 is answered after 0.8 s
    with kiosk_on(rig) as kiosk:
        play(
            kiosk,
            "ENTER",
            "1",
            *typed("4200"),
            "ENTER",
            "CARD INSERT visa-credit",
            "EXPECT 请持卡人输入密码",
            *typed("1234"),
            "ENTER",
            "EXPECT 已用时",
            "WAIT 400",  # the 0200 is with the host now
            "CANCEL",
            "EXPECT 正在中止",
            "EXPECT 交易失败",
            "EXPECT 主机批准但卡片拒绝，已冲正",
        )
    sale = next(e for e in rig.service.journal() if e.type is TxnType.SALE)
    assert sale.status is TxnStatus.REVERSED
    assert_books_balance(rig)
