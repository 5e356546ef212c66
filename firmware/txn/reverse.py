"""The merchant's reverse operations: cancel (void), refund to the card or in cash, adjust the amount.

Each one, in this order:
1. find the original in the books (by order number, trace or RRN);
2. the rules (`firmware.txn.rules`) against its whole history: a request
   outside them is refused naming the rule, before anything is sent;
3. the evidence, checked against the terms and against the original;
4. the supervisor, where the terms want one;
5. one crash-safe write of the request, with what protects it:
   - void and completion (0200): an armed reversal, sent now;
   - refund and tip adjust (0220, an advice): a signed advice in the outbox,
     sent now and retried (as 0221) until the host acknowledges it;
   - cash refund: no message; the cash refund and its notice;
6. the host's answer, in one more write: the entry approved or declined,
   the original's status and history, and the customer notice queued for
   upload.

The PAN goes on the wire from the original's sealed PAN; it is never kept
in clear. The acquirer's answer wins over the terminal's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from firmware.errors import PosError, StoreError
from firmware.host.financial import Original, read_answer
from firmware.txn.book import ORDER_TYPES
from firmware.txn.context import TxnContext
from firmware.txn.evidence import match_original, validate_evidence
from firmware.txn.model import (
    ArmedReversal,
    CashRefund,
    Evidence,
    JournalEntry,
    RefundMethod,
    ReversalReason,
    ReverseOperation,
    TxnStatus,
    TxnType,
)
from firmware.txn.notice import build_notice, notice_reference
from firmware.txn.rules import Decision, check_adjust, check_cash_refund, check_refund, check_void
from firmware.txn.stored_request import RequestKind, StoredRequest
from firmware.txn.uploader import NOTICE, send_advice
from firmware.txn.wire import NotSent, WireError

__all__ = [
    "OrderNotFoundError",
    "OriginalRef",
    "ReverseResult",
    "SupervisorCheck",
    "SupervisorRefusedError",
    "adjust",
    "card_refund",
    "cash_refund",
    "find_original",
    "void_order",
]

# Whether the supervisor approved this operation (asked only where the terms want it).
SupervisorCheck = Callable[[ReverseOperation], bool]


class OrderNotFoundError(PosError):
    """No sale, pre-authorisation or completion in the books matches what was given."""


class SupervisorRefusedError(PosError):
    """The terms want the supervisor for this operation, and the supervisor did not approve."""


@dataclass(frozen=True)
class OriginalRef:
    """How the merchant names the original: its order number, its trace (field 11) or its RRN."""

    order: str | None = None
    trace: int | None = None
    rrn: str | None = None

    def describe(self) -> str:
        parts = [
            f"order {self.order}" if self.order else "",
            f"trace {self.trace:06d}" if self.trace else "",
            f"RRN {self.rrn}" if self.rrn else "",
        ]
        return ", ".join(part for part in parts if part) or "nothing"


@dataclass(frozen=True)
class ReverseResult:
    """What a reverse operation came to: its entry (or cash refund), and what still waits for the host."""

    operation: ReverseOperation
    entry: JournalEntry | None
    cash_refund: CashRefund | None
    notice_queued: bool
    waiting_for_host: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        entry, cash = self.entry, self.cash_refund
        return {
            "operation": self.operation.value,
            "trace": entry.trace if entry else None,
            "type": entry.type.value if entry else "cash_refund",
            "amount": entry.amount if entry else cash.amount if cash else None,
            "status": entry.status.value if entry else "approved",
            "rrn": entry.rrn if entry else None,
            "order": entry.order if entry else cash.order if cash else None,
            "reference": cash.reference if cash else None,
            "notice_queued": self.notice_queued,
            "waiting_for_host": self.waiting_for_host,
            "message": self.message,
        }


def find_original(ctx: TxnContext, ref: OriginalRef, types: frozenset[TxnType] = ORDER_TYPES) -> JournalEntry:
    """The newest order matching `ref` (approved ones first); OrderNotFoundError if none."""
    if not (ref.order or ref.trace or ref.rrn):
        raise OrderNotFoundError("name the original by its order number, trace or RRN")
    found = ctx.book.find(order=ref.order, trace=ref.trace, rrn=ref.rrn, types=types)
    if not found:
        raise OrderNotFoundError(f"no order matches {ref.describe()}")
    approved = [entry for entry in found if entry.status is TxnStatus.APPROVED]
    return (approved or found)[0]


def _original(entry: JournalEntry) -> Original:
    """The original as field 61 names it: its date is the host's booking date (the terminal's clock
    may sit on the other side of midnight), the terminal's own date only when the host gave none."""
    date = entry.host_date or f"{entry.created:%m%d}"
    return Original(entry.batch, entry.trace, date, entry.rrn, entry.auth_code)


def _prepare(
    ctx: TxnContext,
    original: JournalEntry,
    decision: Decision,
    evidence: Evidence,
    supervisor: SupervisorCheck | None,
    now: datetime,
) -> Evidence:
    checked = validate_evidence(evidence, decision.evidence_required, now)
    match_original(checked, original)
    if decision.supervisor and (supervisor is None or not supervisor(decision.operation)):
        raise SupervisorRefusedError(
            f"the terms want the supervisor's password for {decision.operation.value}"
        )
    return checked


def _history(ctx: TxnContext, original: JournalEntry) -> tuple[list[JournalEntry], list[CashRefund]]:
    history = ctx.book.history(original.order)
    return list(history.entries), list(history.cash_refunds)


def _notice(
    ctx: TxnContext, operation: ReverseOperation, entry: JournalEntry, now: datetime
) -> dict[str, Any]:
    assert entry.evidence is not None
    notice = build_notice(
        operation=operation,
        reference=notice_reference(entry.batch, entry.trace),
        amount=entry.amount,
        masked_pan=entry.masked_pan,
        evidence=entry.evidence,
        terms=ctx.terms,
        created=now,
        trace=entry.trace,
        rrn=entry.rrn,
    )
    return upload_record(notice.record())


_UPLOADED_NOTICE_FIELDS = (
    "format",
    "reference",
    "type",
    "operation",
    "masked_pan",
    "amount",
    "currency",
    "order",
    "name",
    "contact",
    "terms_reference",
    "trace",
    "rrn",
    "created",
)


def upload_record(notice: dict[str, Any]) -> dict[str, Any]:
    """What of a notice goes up to the acquirer (field 62 holds at most 999 bytes): no texts, no reason."""
    return {key: notice[key] for key in _UPLOADED_NOTICE_FIELDS if key in notice}


def _new_entry(
    ctx: TxnContext,
    trace: int,
    kind: TxnType,
    amount: int,
    original: JournalEntry,
    evidence: Evidence,
    decision: Decision,
    now: datetime,
) -> JournalEntry:
    return JournalEntry(
        trace=trace,
        type=kind,
        amount=amount,
        status=TxnStatus.PENDING,
        order=original.order,
        batch=ctx.book.batch,
        created=now,
        masked_pan=original.masked_pan,
        pan_sealed=original.pan_sealed,
        original_batch=original.batch,
        original_trace=original.trace,
        amount_before=decision.amount_before,
        evidence=evidence,
        supervisor=decision.supervisor,
    )


def _in_open_batch(ctx: TxnContext, original: JournalEntry) -> bool:
    """Whether the original is still in the open batch's file (an archived one is read-only)."""
    open_entry = ctx.book.entry(original.trace)
    return open_entry is not None and open_entry.batch == original.batch


def _pan(ctx: TxnContext, original: JournalEntry) -> str:
    if original.pan_sealed is None:
        raise OrderNotFoundError(
            f"order {original.order} has no card on file: only a cash refund is possible"
        )
    binding = ctx.pan_binding(original.batch, original.trace)
    return ctx.vault.open_for(original.pan_sealed, binding, original.masked_pan)


def _online(
    ctx: TxnContext,
    operation: ReverseOperation,
    original: JournalEntry,
    decision: Decision,
    evidence: Evidence,
    request: RequestKind,
    kind: TxnType,
    original_status_on_approval: TxnStatus | None,
) -> ReverseResult:
    """A reverse request that goes online now with a write-ahead reversal (void, completion)."""
    now = ctx.now()
    pan = _pan(ctx, original)
    with ctx.book.transaction():
        trace = ctx.book.take_trace()
        stored = StoredRequest(request, trace, ctx.book.batch, decision.amount, original=_original(original))
        message = stored.build(ctx.identity, pan)
        entry = _new_entry(ctx, trace, kind, decision.amount, original, evidence, decision, now)
        if kind is TxnType.COMPLETION:
            # a completion is an order of its own (voided, refunded later): its PAN sealed for it
            own = ctx.vault.seal(pan, ctx.pan_binding(entry.batch, entry.trace))
            entry = replace(entry, pan_sealed=own)
        armed = ArmedReversal(
            trace=trace,
            original_mti=message["t"],
            amount=decision.amount,
            fields=stored.to_json(),
            reason=ReversalReason.NO_ANSWER,
            armed_at=now,
            pan_sealed=original.pan_sealed,
        )
        ctx.book.record_reverse(entry, reversal=armed)
    try:
        answer = ctx.wire.exchange(message)
    except NotSent as exc:
        settled = ctx.book.settle_request(trace, TxnStatus.FAILED, status_reason=str(exc), disarm=True)
        return ReverseResult(operation, settled, None, False, False, f"not sent: {exc}")
    except WireError as exc:
        if exc.reversal_reason is not None and exc.reversal_reason is not ReversalReason.NO_ANSWER:
            ctx.book.outbox.set_reversal_reason(trace, exc.reversal_reason)
        pending = ctx.book.amend(trace, status_reason=str(exc))
        return ReverseResult(
            operation,
            pending,
            None,
            False,
            True,
            f"{exc}; a reversal ({(exc.reversal_reason or ReversalReason.NO_ANSWER).value}) "
            "waits for the host",
        )
    read = read_answer(answer)
    with ctx.book.transaction():
        if read.approved:
            settled = ctx.book.settle_request(
                trace,
                TxnStatus.APPROVED,
                rrn=read.rrn,
                auth_code=read.auth_code,
                response_code=read.response_code,
                host_date=read.host_date,
            )
            if _in_open_batch(ctx, original):
                ctx.book.amend(
                    original.trace,
                    status=original_status_on_approval,
                    note=f"{kind.value} {trace:06d} approved",
                )
            ctx.book.outbox.enqueue(NOTICE, _notice(ctx, operation, settled, now))
            return ReverseResult(operation, settled, None, True, False, "approved")
        settled = ctx.book.settle_request(
            trace,
            TxnStatus.DECLINED,
            rrn=read.rrn,
            response_code=read.response_code,
            status_reason=f"host declined ({read.response_code})",
        )
    return ReverseResult(operation, settled, None, False, False, f"host declined ({read.response_code})")


def _advice(
    ctx: TxnContext,
    operation: ReverseOperation,
    original: JournalEntry,
    decision: Decision,
    evidence: Evidence,
    request: RequestKind,
    kind: TxnType,
) -> ReverseResult:
    """A reverse request sent as an advice (0220): stored first, sent now, retried until acknowledged."""
    now = ctx.now()
    _pan(ctx, original)
    with ctx.book.transaction():
        trace = ctx.book.take_trace()
        stored = StoredRequest(request, trace, ctx.book.batch, decision.amount, original=_original(original))
        entry = _new_entry(ctx, trace, kind, decision.amount, original, evidence, decision, now)
        advice = {
            "request": stored.to_json(),
            "pan_sealed": original.pan_sealed,
            "notice": _notice(ctx, operation, entry, now),
        }
        recorded = ctx.book.record_reverse(entry, advice=advice)
    assert recorded.advice_id is not None
    record = next((r for r in ctx.book.outbox.pending() if r.id == recorded.advice_id), None)
    if record is None:
        raise StoreError(f"the advice {recorded.advice_id} just queued does not read back; it is kept aside")
    try:
        send_advice(ctx, record)
    except NotSent as exc:
        pending = ctx.book.amend(trace, status_reason=f"waiting to be sent: {exc}")
        return ReverseResult(operation, pending, None, False, True, f"saved, waiting for the host: {exc}")
    except (WireError, PosError) as exc:
        ctx.book.outbox.mark_attempt(recorded.advice_id, str(exc))
        pending = ctx.book.amend(trace, status_reason=f"waiting to be retried: {exc}")
        return ReverseResult(operation, pending, None, False, True, f"saved, to be retried: {exc}")
    settled = ctx.book.entry(trace)
    approved = settled is not None and settled.status is TxnStatus.APPROVED
    code = settled.response_code if settled else None
    return ReverseResult(
        operation, settled, None, approved, False, "approved" if approved else f"host declined ({code})"
    )


def void_order(
    ctx: TxnContext, ref: OriginalRef, evidence: Evidence, *, supervisor: SupervisorCheck | None = None
) -> ReverseResult:
    """Cancel an order (撤销): the void of a sale or a completion of the open batch, for its full amount."""
    now = ctx.now()
    original = find_original(ctx, ref, frozenset({TxnType.SALE, TxnType.COMPLETION}))
    related, cash = _history(ctx, original)
    decision = check_void(original, related, cash, open_batch=ctx.book.batch, now=now, terms=ctx.terms)
    checked = _prepare(ctx, original, decision, evidence, supervisor, now)
    request = RequestKind.COMPLETION_VOID if original.type is TxnType.COMPLETION else RequestKind.VOID
    return _online(
        ctx, ReverseOperation.VOID, original, decision, checked, request, TxnType.VOID, TxnStatus.VOIDED
    )


def _refunded_today(ctx: TxnContext, now: datetime) -> int:
    """Card refunds (approved, pending) and cash refunds of today: open batch and today's settled ones."""
    today = now.date()
    counted = (TxnStatus.APPROVED.value, TxnStatus.PENDING.value)
    card = sum(
        e.amount
        for e in ctx.book.open_entries()
        if e.type is TxnType.REFUND and e.status.value in counted and e.created.date() == today
    )
    cash = sum(c.amount for c in ctx.book.open_cash_refunds() if c.created.date() == today)
    archives = ctx.book.archives
    for batch in archives.batches():
        index = archives.index(batch)
        if index.closed.astimezone(now.tzinfo).date() < today:
            continue  # a batch closed before today holds nothing of today
        card += sum(
            row.amount
            for row in index.entries
            if row.type == TxnType.REFUND.value and row.status in counted and row.date == today.isoformat()
        )
        cash += sum(row.amount for row in index.cash_refunds if row.created[:10] == today.isoformat())
    return card + cash


def _refund_decided(
    ctx: TxnContext,
    ref: OriginalRef,
    amount: int,
    evidence: Evidence,
    supervisor: SupervisorCheck | None,
    check: Callable[..., Decision],
) -> tuple[JournalEntry, Decision, Evidence, datetime]:
    """The original of a refund, the rules' decision (`check_refund` or `check_cash_refund`), the evidence."""
    now = ctx.now()
    original = find_original(ctx, ref, frozenset({TxnType.SALE, TxnType.COMPLETION}))
    related, cash = _history(ctx, original)
    decision = check(
        original,
        related,
        cash,
        amount=amount,
        refunded_today=_refunded_today(ctx, now),
        open_batch=ctx.book.batch,
        now=now,
        terms=ctx.terms,
    )
    return original, decision, _prepare(ctx, original, decision, evidence, supervisor, now), now


def card_refund(
    ctx: TxnContext,
    ref: OriginalRef,
    amount: int,
    evidence: Evidence,
    *,
    supervisor: SupervisorCheck | None = None,
) -> ReverseResult:
    """Refund to the card (退货), partial or full, before or after settlement: a 0220 advice."""
    original, decision, checked, _ = _refund_decided(ctx, ref, amount, evidence, supervisor, check_refund)
    return _advice(
        ctx, ReverseOperation.REFUND, original, decision, checked, RequestKind.REFUND, TxnType.REFUND
    )


def cash_refund(
    ctx: TxnContext,
    ref: OriginalRef,
    amount: int,
    evidence: Evidence,
    *,
    supervisor: SupervisorCheck | None = None,
) -> ReverseResult:
    """Refund in cash (现金退款): no message to the host; the cash refund and its notice in one write."""
    original, decision, checked, now = _refund_decided(
        ctx, ref, amount, evidence, supervisor, check_cash_refund
    )
    with ctx.book.transaction():
        number = len(ctx.book.open_cash_refunds()) + 1
        reference = notice_reference(ctx.book.batch, number, RefundMethod.CASH)
        refund_record = CashRefund(
            reference=reference,
            amount=amount,
            order=original.order,
            original_batch=original.batch,
            original_trace=original.trace,
            created=now,
            evidence=checked,
            supervisor=decision.supervisor,
        )
        notice = build_notice(
            operation=ReverseOperation.CASH_REFUND,
            reference=reference,
            amount=amount,
            masked_pan=original.masked_pan,
            evidence=checked,
            terms=ctx.terms,
            created=now,
        )
        ctx.book.record_cash_refund(refund_record, notice=upload_record(notice.record()))
    return ReverseResult(ReverseOperation.CASH_REFUND, None, refund_record, True, False, "paid in cash")


def adjust(
    ctx: TxnContext,
    ref: OriginalRef,
    entered_original: int,
    new_amount: int,
    evidence: Evidence,
    *,
    supervisor: SupervisorCheck | None = None,
) -> ReverseResult:
    """Adjust the amount (调整金额): tip adjust of a sale (0220/32), completion of a pre-auth (0200/20)."""
    now = ctx.now()
    original = find_original(ctx, ref, frozenset({TxnType.SALE, TxnType.PREAUTH}))
    related, cash = _history(ctx, original)
    decision = check_adjust(
        original,
        related,
        cash,
        entered_original=entered_original,
        new_amount=new_amount,
        open_batch=ctx.book.batch,
        now=now,
        terms=ctx.terms,
    )
    checked = _prepare(ctx, original, decision, evidence, supervisor, now)
    if decision.request is TxnType.COMPLETION:
        return _online(
            ctx,
            ReverseOperation.ADJUST,
            original,
            decision,
            checked,
            RequestKind.COMPLETION,
            TxnType.COMPLETION,
            None,
        )
    return _advice(
        ctx, ReverseOperation.ADJUST, original, decision, checked, RequestKind.TIP_ADJUST, TxnType.ADJUST
    )
