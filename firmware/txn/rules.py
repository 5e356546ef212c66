"""The rules of reverse transactions: what the terminal refuses before it sends anything.

Each `check_*` takes the original transaction as the journal keeps it, the
requests and cash refunds that acted on it (`related`, `cash_refunds`: any
list from the journal; entries that do not name the original by batch and
trace are ignored), the amounts, `now`, the open batch and the `Terms`.
It returns a `Decision` (what to send, whether the supervisor password and
which evidence are needed) or raises `RuleViolation` whose `.rule` is a
stable id. There is no clock and no I/O here.

The rules mirror the acquirer's (`sim/acquirer.py`, `_check_void` and
`_check_refund`), so that a request the host would refuse is refused here,
with its reason, before it is sent; the terms add the merchant's own
limits. Ids ``<operation>.<rule>`` are the acquirer's rules, ids
``terms.<operation>.<rule>`` come from the terms file.

A related request counts while it is approved or still pending (it may
yet be approved); a declined, failed or reversed one does not.

Void (撤销; 60.1 = 23, 21 for a completion; a pre-authorisation is
cancelled by its own operation, not this one):
    void.original_type    the original is not a sale or a completion
    void.already_voided   it was voided (or a void of it is pending)
    void.reversed         it was reversed
    void.not_approved     it was declined, failed, or is still pending
    void.refunded         a card or cash refund of it exists
    void.adjusted         its amount was adjusted
    void.same_batch       its batch is not the open one: settled, refund it
    void.full_amount      a void moves the original's full amount

Refund to the card (退货) and in cash (现金退款), ``<op>`` being ``refund``
or ``cash_refund``; a refund is allowed after settlement:
    cash_refund.not_allowed       the terms offer no cash refunds
    <op>.amount_not_positive      the amount is zero or less
    <op>.original_type            not a sale or a completion
    <op>.voided / <op>.reversed / <op>.not_approved
    <op>.exceeds_sale             card and cash refunds of the sale add up past its amount
    terms.<op>.window             more than the terms' days after the sale
    terms.cash_refund.max_amount  past the terms' limit of one cash refund
    terms.refund.per_sale         past the terms' limit per sale (card and cash)
    terms.refund.per_day          past the terms' daily total of the terminal (card and cash)

Adjust (调整金额): the operator enters the original amount again. A sale
gets a tip adjust (0220, 60.1 = 32), once, in the open batch; a
pre-authorisation gets its completion (0200, 60.1 = 20), once:
    adjust.amount_not_positive    the new amount is zero or less
    adjust.original_type          not a sale or a pre-authorisation
    adjust.voided / adjust.reversed / adjust.not_approved / adjust.refunded
    adjust.original_mismatch      the entered original amount is not the journal's
    adjust.already_adjusted       the sale's tip was adjusted already
    adjust.same_batch             the sale's batch is settled
    adjust.unchanged              the new amount is the sale amount
    adjust.below_original         a tip adjust lowers the amount
    terms.adjust.tip_max          more than the terms' percentage above the sale
    adjust.already_completed      the pre-authorisation has its completion
    terms.adjust.completion_window     more than the terms' days after the pre-authorisation
    terms.adjust.completion_tolerance  more than the terms' percentage above it
A completion for exactly the pre-authorised amount is the usual case and
is allowed ("unchanged" is a tip adjust's rule only).

`terms_lines(operation, terms, language)` says the terms that apply, as
lines to show before confirming and to print on the slip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from firmware.errors import RuleViolation
from firmware.txn.model import (
    CashRefund,
    EvidenceField,
    JournalEntry,
    ReverseOperation,
    TxnStatus,
    TxnType,
)
from firmware.txn.money import format_amount
from firmware.txn.terms import Language, Terms

__all__ = [
    "Decision",
    "check_adjust",
    "check_cash_refund",
    "check_refund",
    "check_void",
    "paid_amount",
    "refunded_total",
    "required_evidence",
    "supervisor_required",
    "terms_lines",
]

_COUNTING: Final = frozenset({TxnStatus.APPROVED, TxnStatus.PENDING})
_REFUNDABLE: Final = frozenset({TxnType.SALE, TxnType.COMPLETION})
_VOIDABLE: Final = frozenset({TxnType.SALE, TxnType.COMPLETION})


@dataclass(frozen=True)
class Decision:
    """What the rules allow: the request to send (None for a cash refund: no message) and its needs."""

    operation: ReverseOperation
    request: TxnType | None
    amount: int
    amount_before: int | None
    supervisor: bool
    evidence_required: frozenset[EvidenceField]


def supervisor_required(operation: ReverseOperation, terms: Terms) -> bool:
    """Whether the terms want the supervisor password for `operation`."""
    return terms.of(operation).supervisor


def required_evidence(operation: ReverseOperation, terms: Terms) -> frozenset[EvidenceField]:
    """The evidence fields the terms require for `operation`."""
    return terms.of(operation).evidence_required


def _decision(
    operation: ReverseOperation,
    request: TxnType | None,
    amount: int,
    terms: Terms,
    amount_before: int | None = None,
) -> Decision:
    return Decision(
        operation,
        request,
        amount,
        amount_before,
        supervisor_required(operation, terms),
        required_evidence(operation, terms),
    )


def _refers_to(original: JournalEntry, batch: int | None, trace: int | None) -> bool:
    return batch == original.batch and trace == original.trace


def _live(original: JournalEntry, related: Iterable[JournalEntry], kind: TxnType) -> list[JournalEntry]:
    return [
        entry
        for entry in related
        if entry.type is kind
        and entry.status in _COUNTING
        and _refers_to(original, entry.original_batch, entry.original_trace)
    ]


def refunded_total(
    original: JournalEntry, related: Iterable[JournalEntry], cash_refunds: Iterable[CashRefund]
) -> int:
    """What card refunds (approved or pending) and cash refunds of `original` add up to."""
    card = sum(entry.amount for entry in _live(original, related, TxnType.REFUND))
    cash = sum(
        refund.amount
        for refund in cash_refunds
        if _refers_to(original, refund.original_batch, refund.original_trace)
    )
    return card + cash


def _money(amount: int, terms: Terms) -> str:
    return f"{format_amount(amount)} {terms.currency}"


def _refuse(rule: str, message: str) -> RuleViolation:
    return RuleViolation(rule, message)


def _check_state(
    op: str,
    original: JournalEntry,
    related: list[JournalEntry],
    cash_refunds: list[CashRefund],
    *,
    refunds_matter: bool,
) -> None:
    """The original's own state: voided, reversed, not approved, refunded (in that order)."""
    name = f"{original.type.value} {original.batch:06d}/{original.trace:06d}"
    if original.status is TxnStatus.VOIDED or _live(original, related, TxnType.VOID):
        raise _refuse(f"{op}.{'already_voided' if op == 'void' else 'voided'}", f"{name} was voided")
    if original.status is TxnStatus.REVERSED:
        raise _refuse(f"{op}.reversed", f"{name} was reversed")
    if original.status is not TxnStatus.APPROVED:
        raise _refuse(f"{op}.not_approved", f"{name} is {original.status.value}, not approved")
    if refunds_matter and refunded_total(original, related, cash_refunds):
        raise _refuse(f"{op}.refunded", f"{name} was refunded")


def check_void(
    original: JournalEntry,
    related: Iterable[JournalEntry],
    cash_refunds: Iterable[CashRefund],
    *,
    open_batch: int,
    now: datetime,
    terms: Terms,
    amount: int | None = None,
) -> Decision:
    """Allow the void of `original` (for `amount`, its full amount by default) or raise `RuleViolation`.

    `now` is taken for one signature across decisions; a void's window is the open batch.
    """
    related, cash_refunds = list(related), list(cash_refunds)
    if original.type not in _VOIDABLE:
        extra = "; a pre-authorisation has its own void" if original.type is TxnType.PREAUTH else ""
        raise _refuse("void.original_type", f"a {original.type.value} cannot be voided{extra}")
    _check_state("void", original, related, cash_refunds, refunds_matter=True)
    if _live(original, related, TxnType.ADJUST):
        raise _refuse("void.adjusted", "its amount was adjusted")
    if original.batch != open_batch:
        raise _refuse(
            "void.same_batch",
            f"batch {original.batch:06d} is settled (open: {open_batch:06d}); refund it instead",
        )
    amount = original.amount if amount is None else amount
    if amount != original.amount:
        raise _refuse(
            "void.full_amount",
            f"a void moves the full amount {_money(original.amount, terms)}, not {_money(amount, terms)}",
        )
    return _decision(ReverseOperation.VOID, TxnType.VOID, amount, terms)


def paid_amount(original: JournalEntry, related: Iterable[JournalEntry]) -> int:
    """What the customer paid on `original`: its amount, or its total after an approved tip adjust."""
    adjusts = [
        entry
        for entry in related
        if entry.type is TxnType.ADJUST
        and entry.status is TxnStatus.APPROVED
        and _refers_to(original, entry.original_batch, entry.original_trace)
    ]
    return adjusts[-1].amount if adjusts else original.amount


def _check_refund(
    operation: ReverseOperation,
    original: JournalEntry,
    related: list[JournalEntry],
    cash_refunds: list[CashRefund],
    amount: int,
    refunded_today: int,
    now: datetime,
    terms: Terms,
) -> None:
    op = operation.value
    if amount <= 0:
        raise _refuse(f"{op}.amount_not_positive", "the amount must be more than zero")
    if original.type not in _REFUNDABLE:
        raise _refuse(f"{op}.original_type", f"a {original.type.value} cannot be refunded")
    _check_state(op, original, related, cash_refunds, refunds_matter=False)
    refunded = refunded_total(original, related, cash_refunds)
    paid = paid_amount(original, related)
    if refunded + amount > paid:
        raise _refuse(
            f"{op}.exceeds_sale",
            f"{_money(refunded, terms)} already refunded of {_money(paid, terms)}: "
            f"at most {_money(paid - refunded, terms)} more",
        )
    days = (
        terms.cash_refund.max_days_after_sale
        if operation is ReverseOperation.CASH_REFUND
        else terms.refund.max_days_after_sale
    )
    if now - original.created > timedelta(days=days):
        raise _refuse(f"terms.{op}.window", f"the sale is more than {days} days old")
    if operation is ReverseOperation.CASH_REFUND and amount > terms.cash_refund.max_amount:
        raise _refuse(
            "terms.cash_refund.max_amount",
            f"a cash refund is at most {_money(terms.cash_refund.max_amount, terms)}",
        )
    per_sale = terms.refund.max_per_sale
    if per_sale is not None and refunded + amount > per_sale:
        raise _refuse(
            "terms.refund.per_sale",
            f"refunds of one sale are at most {_money(per_sale, terms)}; "
            f"{_money(refunded, terms)} already refunded",
        )
    per_day = terms.refund.max_per_day
    if per_day is not None and refunded_today + amount > per_day:
        raise _refuse(
            "terms.refund.per_day",
            f"refunds are at most {_money(per_day, terms)} a day; {_money(refunded_today, terms)} today",
        )


def check_refund(
    original: JournalEntry,
    related: Iterable[JournalEntry],
    cash_refunds: Iterable[CashRefund],
    *,
    amount: int,
    refunded_today: int,
    open_batch: int,
    now: datetime,
    terms: Terms,
) -> Decision:
    """Allow a refund of `amount` to the card, or raise `RuleViolation`.

    `refunded_today` is what the terminal's card and cash refunds (approved or pending) of the
    day add up to; `open_batch` is taken for one signature (a refund may follow settlement).
    """
    related, cash_refunds = list(related), list(cash_refunds)
    _check_refund(
        ReverseOperation.REFUND, original, related, cash_refunds, amount, refunded_today, now, terms
    )
    return _decision(ReverseOperation.REFUND, TxnType.REFUND, amount, terms)


def check_cash_refund(
    original: JournalEntry,
    related: Iterable[JournalEntry],
    cash_refunds: Iterable[CashRefund],
    *,
    amount: int,
    refunded_today: int,
    open_batch: int,
    now: datetime,
    terms: Terms,
) -> Decision:
    """Allow a refund of `amount` in cash (no message to the host), or raise `RuleViolation`."""
    if not terms.cash_refund.allowed:
        raise _refuse("cash_refund.not_allowed", f"the terms ({terms.reference}) offer no cash refunds")
    _check_refund(
        ReverseOperation.CASH_REFUND,
        original,
        list(related),
        list(cash_refunds),
        amount,
        refunded_today,
        now,
        terms,
    )
    return _decision(ReverseOperation.CASH_REFUND, None, amount, terms)


def _at_most_percent_above(new_amount: int, base: int, percent: int) -> bool:
    return new_amount * 100 <= base * (100 + percent)


def check_adjust(
    original: JournalEntry,
    related: Iterable[JournalEntry],
    cash_refunds: Iterable[CashRefund],
    *,
    entered_original: int,
    new_amount: int,
    open_batch: int,
    now: datetime,
    terms: Terms,
) -> Decision:
    """Allow a tip adjust of a sale or the completion of a pre-authorisation, or raise `RuleViolation`.

    `entered_original` is the original amount as the operator typed it again.
    """
    related, cash_refunds = list(related), list(cash_refunds)
    if new_amount <= 0:
        raise _refuse("adjust.amount_not_positive", "the new amount must be more than zero")
    if original.type not in (TxnType.SALE, TxnType.PREAUTH):
        raise _refuse("adjust.original_type", f"a {original.type.value} cannot be adjusted")
    _check_state("adjust", original, related, cash_refunds, refunds_matter=True)
    if entered_original != original.amount:
        raise _refuse(
            "adjust.original_mismatch",
            f"the original amount entered, {_money(entered_original, terms)}, is not the journal's",
        )
    base = original.amount
    if original.type is TxnType.PREAUTH:
        if _live(original, related, TxnType.COMPLETION):
            raise _refuse("adjust.already_completed", "the pre-authorisation has its completion already")
        days = terms.adjust.completion_max_days_after_preauth
        if now - original.created > timedelta(days=days):
            raise _refuse("terms.adjust.completion_window", f"the pre-authorisation is over {days} days old")
        tolerance = terms.adjust.completion_tolerance_percent
        if not _at_most_percent_above(new_amount, base, tolerance):
            raise _refuse(
                "terms.adjust.completion_tolerance",
                f"a completion is at most {tolerance}% above the pre-authorised {_money(base, terms)}",
            )
        return _decision(ReverseOperation.ADJUST, TxnType.COMPLETION, new_amount, terms, base)
    if _live(original, related, TxnType.ADJUST):
        raise _refuse("adjust.already_adjusted", "the sale's amount was adjusted already")
    if original.batch != open_batch:
        raise _refuse("adjust.same_batch", f"batch {original.batch:06d} is settled (open: {open_batch:06d})")
    if new_amount == base:
        raise _refuse("adjust.unchanged", "the new amount is the sale amount")
    if new_amount < base:
        raise _refuse("adjust.below_original", "a tip adjust cannot lower the sale amount; refund instead")
    percent = terms.adjust.tip_max_percent
    if not _at_most_percent_above(new_amount, base, percent):
        raise _refuse(
            "terms.adjust.tip_max", f"a tip is at most {percent}% of the sale, {_money(base, terms)}"
        )
    return _decision(ReverseOperation.ADJUST, TxnType.ADJUST, new_amount, terms, base)


_EVIDENCE_NAMES: Final = {
    EvidenceField.ORDER: ("订单号", "order number"),
    EvidenceField.ORIGINAL_TIME: ("原交易时间", "original date and time"),
    EvidenceField.NAME: ("姓名", "name"),
    EvidenceField.CONTACT: ("联系方式", "contact"),
    EvidenceField.REASON: ("原因", "reason"),
}


def _amount_text(amount: int, terms: Terms, language: Language) -> str:
    if language is Language.ZH and terms.currency == "CNY":
        return f"{format_amount(amount)}元"
    return _money(amount, terms)


def _lines(operation: ReverseOperation, terms: Terms, language: Language) -> list[tuple[str, str]]:
    def money(amount: int) -> str:
        return _amount_text(amount, terms, language)

    lines: list[tuple[str, str]] = []
    if operation is ReverseOperation.VOID:
        lines.append(
            (
                "撤销：仅限当前未结算批次内的原交易，全额撤销",
                "Void: a sale of the open batch only, in full",
            )
        )
    if operation is ReverseOperation.CASH_REFUND:
        cash = terms.cash_refund
        if not cash.allowed:
            return [("本商户不办理现金退款", "Cash refunds are not offered")]
        lines.append(
            (
                f"现金退款：原消费后{cash.max_days_after_sale}天内办理，每笔不超过{money(cash.max_amount)}",
                f"Cash refund: within {cash.max_days_after_sale} days of the sale, "
                f"at most {money(cash.max_amount)} each",
            )
        )
    if operation is ReverseOperation.REFUND:
        days = terms.refund.max_days_after_sale
        lines.append(
            (
                f"退货：原消费后{days}天内办理，可部分或全额退货，退回原卡",
                f"Refund: within {days} days of the sale, in part or in full, to the card",
            )
        )
    if operation in (ReverseOperation.REFUND, ReverseOperation.CASH_REFUND):
        per_sale = terms.refund.max_per_sale
        lines.append(
            (
                "同一笔消费的退款（含现金退款）合计不超过原消费金额"
                + (f"，且不超过{money(per_sale)}" if per_sale is not None else ""),
                "All refunds of one sale (card and cash) add up to at most its amount"
                + (f", and at most {money(per_sale)}" if per_sale is not None else ""),
            )
        )
        if terms.refund.max_per_day is not None:
            lines.append(
                (
                    f"本终端每日退款合计不超过{money(terms.refund.max_per_day)}",
                    f"Refunds at this terminal: at most {money(terms.refund.max_per_day)} a day in total",
                )
            )
    if operation is ReverseOperation.ADJUST:
        adjust = terms.adjust
        lines += [
            (
                f"小费调整：仅限当前未结算批次，每笔一次，小费不超过原金额的{adjust.tip_max_percent}%",
                f"Tip adjust: in the open batch only, once, a tip of at most {adjust.tip_max_percent}% "
                "of the sale",
            ),
            (
                f"预授权完成：预授权后{adjust.completion_max_days_after_preauth}天内，"
                f"金额不超过预授权金额的{100 + adjust.completion_tolerance_percent}%",
                f"Pre-auth completion: within {adjust.completion_max_days_after_preauth} days, up to "
                f"{adjust.completion_tolerance_percent}% above the authorised amount",
            ),
            ("调整前须重新输入原金额核对", "The original amount is entered again and checked"),
        ]
    own = terms.of(operation)
    if own.supervisor:
        lines.append(("需主管密码", "Supervisor password required"))
    if own.evidence_required:
        names = [_EVIDENCE_NAMES[field] for field in EvidenceField if field in own.evidence_required]
        lines.append(
            (
                "需提供：" + "、".join(zh for zh, _ in names),
                "Evidence required: " + ", ".join(en for _, en in names),
            )
        )
    lines += [
        (f"预计处理时间：{own.processing_time.zh}", f"Expected processing time: {own.processing_time.en}"),
        (f"条款版本：{terms.reference}", f"Terms: {terms.reference}"),
    ]
    return lines


def terms_lines(operation: ReverseOperation, terms: Terms, language: Language) -> tuple[str, ...]:
    """The terms that apply to `operation`, one line each, in `language`: shown, then printed."""
    index = 0 if language is Language.ZH else 1
    return tuple(pair[index] for pair in _lines(operation, terms, language))
