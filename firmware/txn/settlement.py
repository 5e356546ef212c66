"""Settlement (结算): the batch's totals against the host's, batch upload when they differ, a new batch.

1. Everything waiting goes up first (`uploader.drain`); a reversal the host
   has not acknowledged keeps the batch open (its totals are not known).
2. 0500 with the terminal's totals of the open batch (field 48): sales and
   completions at their adjusted amounts are debits, card refunds credits;
   voided, reversed, declined and failed requests count for nothing. The
   host answers balanced (1) or not (2): its first verdict is the result.
3. Not balanced: each approved request of the batch goes up as a signed
   record (0320, 60.3 203), then the batch-upload end (0320, 60.3 207) with
   the count; the host takes the terminal's records.
4. The open batch is archived and the next one opened, in the books.

Nothing is closed unless the host answered: a settlement cut short is run
again and sends the same totals. The books say when the 0500 goes
(`Book.mark_settling`, written with its trace): from then until the batch is
closed the host may have closed it already, so the service finishes the
settlement before any other online request (`TerminalService`), rather than
add requests to a batch the host has settled. A host that refused the
settlement, or a 0500 that never left, clears the mark, unless an earlier
0500 of the batch left unanswered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from firmware.errors import PosError
from firmware.host.financial import (
    NetworkCode,
    SettlementTotals,
    batch_upload_end,
    read_answer,
    record_upload,
    settlement,
)
from firmware.keys.signing import canonical_json
from firmware.txn.context import TxnContext
from firmware.txn.documents import MAX_TRACE
from firmware.txn.model import JournalEntry, TxnStatus, TxnType
from firmware.txn.uploader import DrainReport, drain
from firmware.txn.wire import NotSent

__all__ = ["SettlementError", "SettlementResult", "batch_totals", "settle"]

_DEBITS: Final = frozenset({TxnType.SALE, TxnType.COMPLETION})


class SettlementError(PosError):
    """The batch could not be settled now; nothing was closed."""


@dataclass(frozen=True)
class SettlementResult:
    batch: int
    totals: SettlementTotals
    balanced: bool
    uploaded: int
    new_batch: int
    drained: DrainReport

    def to_dict(self) -> dict[str, Any]:
        totals = self.totals
        return {
            "batch": self.batch,
            "balanced": self.balanced,
            "debit_amount": totals.debit_amount,
            "debit_count": totals.debit_count,
            "credit_amount": totals.credit_amount,
            "credit_count": totals.credit_count,
            "uploaded": self.uploaded,
            "new_batch": self.new_batch,
            "drained": self.drained.to_dict(),
        }


def _adjusted_amounts(entries: Sequence[JournalEntry], batch: int) -> dict[int, int]:
    """Trace of a sale -> its amount after an approved tip adjust."""
    return {
        entry.original_trace: entry.amount
        for entry in entries
        if entry.type is TxnType.ADJUST
        and entry.status is TxnStatus.APPROVED
        and entry.original_batch == batch
        and entry.original_trace is not None
    }


def batch_totals(entries: Sequence[JournalEntry], batch: int) -> SettlementTotals:
    """Field 48 of the settlement of `batch`, from its journal entries."""
    own = [entry for entry in entries if entry.batch == batch and entry.status is TxnStatus.APPROVED]
    adjusted = _adjusted_amounts(own, batch)
    debits = [adjusted.get(entry.trace, entry.amount) for entry in own if entry.type in _DEBITS]
    credits = [entry.amount for entry in own if entry.type is TxnType.REFUND]
    return SettlementTotals(sum(debits), len(debits), sum(credits), len(credits))


def _upload_record(entry: JournalEntry, batch: int, created: str, amount: int) -> dict[str, Any]:
    return {
        "id": f"batch-{batch:06d}-{entry.trace:06d}",
        "sequence": entry.trace,
        "kind": "batch",
        "created": created,
        "payload": {
            "trace": entry.trace,
            "type": entry.type.value,
            "amount": amount,
            "rrn": entry.rrn,
            "auth_code": entry.auth_code,
            "original_trace": entry.original_trace,
            "masked_pan": entry.masked_pan,
        },
    }


def _batch_upload(ctx: TxnContext, entries: Sequence[JournalEntry], batch: int) -> int:
    created = ctx.now().isoformat()
    uploaded = [entry for entry in entries if entry.batch == batch and entry.status is TxnStatus.APPROVED]
    adjusted = _adjusted_amounts(uploaded, batch)
    for entry in uploaded:
        body = canonical_json(_upload_record(entry, batch, created, adjusted.get(entry.trace, entry.amount)))
        message = record_upload(
            ctx.identity,
            stan=ctx.book.take_trace(),
            batch=batch,
            record=body,
            signature=ctx.signer.sign_bytes(body),
            network_code=NetworkCode.BATCH_UPLOAD,
        )
        code = read_answer(ctx.wire.exchange(message)).response_code
        if code != "00":
            raise SettlementError(f"batch upload of trace {entry.trace:06d} refused by the host ({code})")
    summary = canonical_json(
        {
            "id": f"batch-{batch:06d}-end",
            "sequence": 0,
            "kind": "batch-end",
            "created": created,
            "payload": {"count": len(uploaded)},
        }
    )
    end = batch_upload_end(
        ctx.identity,
        stan=ctx.book.take_trace(),
        batch=batch,
        count=len(uploaded),
        record=summary,
        signature=ctx.signer.sign_bytes(summary),
    )
    code = read_answer(ctx.wire.exchange(end)).response_code
    if code != "00":
        raise SettlementError(f"the host refused the end of the batch upload ({code})")
    return len(uploaded)


def settle(ctx: TxnContext) -> SettlementResult:
    """Settle the open batch (see the module's docstring); SettlementError or a WireError if not now.

    The 0500 is noted in the books before it goes out: until the host has answered one, the batch
    takes no new request (`settling`), and settling again sends the same totals.
    """
    drained = drain(ctx, include_flagged=True)
    if drained.stopped is not None:
        raise SettlementError(f"nothing settled: {drained.stopped}")
    waiting = ctx.book.outbox.armed()
    if waiting:
        raise SettlementError(f"nothing settled: {len(waiting)} reversal(s) still wait for the host")
    batch = ctx.book.batch
    entries = ctx.book.open_entries()
    if any(entry.status is TxnStatus.PENDING and entry.batch == batch for entry in entries):
        raise SettlementError(
            "nothing settled: requests of this batch still wait for the host (pos-txn queue)"
        )
    totals = batch_totals(entries, batch)
    with ctx.book.transaction():
        again = ctx.book.settling is not None  # an earlier 0500 may have closed the batch at the host
        stan = ctx.book.take_trace()
        ctx.book.mark_settling(True)
    try:
        answer = read_answer(
            ctx.wire.exchange(settlement(ctx.identity, stan=stan, batch=batch, totals=totals))
        )
    except NotSent:
        ctx.book.mark_settling(again)
        raise
    if not answer.approved or answer.balanced is None:
        ctx.book.mark_settling(again)
        raise SettlementError(f"the host refused the settlement ({answer.response_code})")
    uploaded = 0 if answer.balanced else _batch_upload(ctx, entries, batch)
    new_batch = batch % MAX_TRACE + 1
    ctx.book.close_batch(new_batch)
    return SettlementResult(batch, totals, answer.balanced, uploaded, new_batch, drained)
