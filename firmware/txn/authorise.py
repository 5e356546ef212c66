"""A card payment (sale or pre-authorisation) with its write-ahead reversal.

The EMV kernel calls `Authoriser.online` with the card's ARQC. Before the
request leaves the terminal, its journal entry (PENDING) and its armed 0400
(field 39 ``98``) are written in one crash-safe step; then it is sent:

- no connection: nothing left, the entry FAILED, the reversal disarmed;
- no valid answer: the reversal stays armed (``98``, or ``A0`` for an
  answer whose MAC does not verify) and the kernel goes on as "unable to go
  online";
- a valid decline: the entry DECLINED, the reversal disarmed;
- a valid approval: the host's RRN and code are kept and the reversal now
  says ``96`` (a cut from here on leaves the terminal unable to complete),
  until the card's second GENERATE AC: a TC approves the entry and disarms
  the reversal in one write; an AAC (or the card pulled) makes it ``06``.

Whatever stays armed goes up before any other online request
(`firmware.txn.uploader`), and the entry becomes REVERSED when the host
acknowledges the reversal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from firmware.emv import tlv
from firmware.emv.online import OnlineRequest, OnlineResponse
from firmware.emv.result import Outcome, TransactionResult
from firmware.errors import MessageFieldError, TlvError
from firmware.host.codes import TransactionCode
from firmware.host.financial import CardData, authorisation, read_answer
from firmware.txn.context import TxnContext
from firmware.txn.model import ArmedReversal, JournalEntry, ReversalReason, TxnStatus, TxnType
from firmware.txn.stored_request import RequestKind, StoredRequest
from firmware.txn.wire import NotSent, WireError

__all__ = ["Authoriser", "issuer_response"]

_TYPE_CODE = {TxnType.SALE: TransactionCode.SALE, TxnType.PREAUTH: TransactionCode.PREAUTH}
_ISSUER_AUTHENTICATION_DATA = 0x91
_SCRIPT_TEMPLATES = (0x71, 0x72)


def issuer_response(
    code: str, auth_code: str | None, field55: bytes, approved_amount: int | None = None
) -> OnlineResponse:
    """The kernel's view of an answer: response code, 91 and the 71/72 scripts of field 55."""
    try:
        objects = tlv.parse(field55)
    except TlvError as exc:
        raise MessageFieldError(f"ICC data in the answer is not TLV: {exc}", "55") from None
    authentication = next((o.value for o in objects if o.tag == _ISSUER_AUTHENTICATION_DATA), None)
    scripts = b"".join(tlv.encode(o.tag, o.value) for o in objects if o.tag in _SCRIPT_TEMPLATES)
    return OnlineResponse(code, authentication, scripts, auth_code, approved_amount)


def _answer_amount(answer: Mapping[str, str]) -> int | None:
    """Field 4 of an answer: the amount the host approved (a partial approval says it there)."""
    value = answer.get("4", "")
    return int(value) if value.isdigit() else None


@dataclass
class Authoriser:
    """The online callback of one card payment; `trace` is set once its request is recorded."""

    ctx: TxnContext
    kind: TxnType
    amount: int
    order: str
    approval_codes: frozenset[str] = frozenset({"00"})
    partial_approval_codes: frozenset[str] = frozenset()
    trace: int | None = None
    host_code: str | None = None
    failure: str = field(default="")

    def online(self, request: OnlineRequest) -> OnlineResponse | None:
        ctx = self.ctx
        now = ctx.now()
        expiry = request.expiry[:4] if request.expiry else None
        card = CardData(
            request.pan,
            request.field55,
            expiry,
            request.pan_sequence_number,
            request.track2,
            request.online_pin_block,
        )
        with ctx.book.transaction():
            trace = ctx.book.take_trace()
            batch = ctx.book.batch
            pan_sealed = ctx.vault.seal(request.pan, ctx.pan_binding(batch, trace))
            message = authorisation(
                ctx.identity,
                type_code=_TYPE_CODE[self.kind],
                stan=trace,
                batch=batch,
                amount=self.amount,
                card=card,
            )
            entry = JournalEntry(
                trace=trace,
                type=self.kind,
                amount=self.amount,
                status=TxnStatus.PENDING,
                order=self.order,
                batch=batch,
                created=now,
                masked_pan=request.masked_pan,
                pan_sealed=pan_sealed,
            )
            stored = StoredRequest(
                RequestKind(self.kind.value),
                trace,
                batch,
                self.amount,
                icc=request.field55,
                expiry=expiry,
                pan_sequence_number=request.pan_sequence_number,
                entry_mode=message.get("22"),
            )
            armed = ArmedReversal(
                trace=trace,
                original_mti=message["t"],
                amount=self.amount,
                fields=stored.to_json(),
                reason=ReversalReason.NO_ANSWER,
                armed_at=now,
                pan_sealed=pan_sealed,
            )
            ctx.book.record_request(entry, armed)
        self.trace = trace
        try:
            answer = ctx.wire.exchange(message)
        except NotSent as exc:
            ctx.book.settle_request(trace, TxnStatus.FAILED, status_reason=str(exc), disarm=True)
            self.failure = str(exc)
            raise
        except WireError as exc:
            self.failure = str(exc)
            if exc.reversal_reason is not None and exc.reversal_reason is not ReversalReason.NO_ANSWER:
                ctx.book.outbox.set_reversal_reason(trace, exc.reversal_reason)
            raise
        read = read_answer(answer)
        code = self.host_code = read.response_code
        partial = code in self.partial_approval_codes
        with ctx.book.transaction():
            if code in self.approval_codes or partial:
                # the host moved money: only the card's TC completes it; until then a cut means 96
                ctx.book.settle_request(
                    trace,
                    TxnStatus.PENDING,
                    rrn=read.rrn,
                    auth_code=read.auth_code,
                    response_code=code,
                    disarm=False,
                    host_date=read.host_date,
                )
                ctx.book.outbox.set_reversal_reason(trace, ReversalReason.TERMINAL_COULD_NOT_COMPLETE)
            else:
                ctx.book.settle_request(
                    trace,
                    TxnStatus.DECLINED,
                    rrn=read.rrn,
                    response_code=code,
                    status_reason=f"host declined ({code})",
                )
        approved_amount = _answer_amount(answer) if partial else None
        return issuer_response(code, read.auth_code, read.field55, approved_amount)

    def conclude(self, result: TransactionResult) -> JournalEntry | None:
        """Record what the card made of the host's answer; the entry, or None if nothing was sent."""
        trace = self.trace
        if trace is None:
            return None
        book = self.ctx.book
        entry = book.entry(trace)
        if entry is None or entry.status is not TxnStatus.PENDING:
            return entry
        armed = book.outbox.reversal(trace)
        if (
            result.outcome is Outcome.APPROVED_ONLINE
            and armed is not None
            and self.host_code in self.approval_codes
        ):
            return book.settle_request(trace, TxnStatus.APPROVED, disarm=True)
        if armed is not None and armed.reason is ReversalReason.TERMINAL_COULD_NOT_COMPLETE:
            book.outbox.set_reversal_reason(trace, ReversalReason.CARD_DECLINED_AFTER_APPROVAL)
            return book.amend(trace, status_reason=f"card declined after host approval: {result.reason}")
        return book.amend(trace, status_reason=self.failure or result.reason)
