"""Store and forward: what waits in the outbox goes up, in order, one message in flight.

Order (`Outbox.next_to_send`): armed reversals first, then advices (refund and
tip-adjust 0220s) and customer notices (0320) in the order they were queued.
Each item is tried until the host acknowledges it or its tries are used up
(the outbox's limit, 3 by default): between tries the uploader waits the
context's backoff. A reversal or advice sent again goes as a repeat (0401,
0221) with the same trace and content. An item that used up its tries stays
in the outbox, flagged and reported, never dropped.

What an answer means:
- reversal (0400): any answer whose MAC checks disarms it; the request it
  protected becomes REVERSED in the journal. A reversal goes up only while
  that request is PENDING in the books: one whose request is approved,
  declined, reversed or not in the open batch is set aside (kept, with why,
  for the technician) and never sent.
- advice (0220): ``00`` approves the refund or adjust (and queues its
  customer notice in the same write); another code declines it; either way
  it leaves the outbox.
- notice and other records (0320): ``00`` acknowledges; anything else is a
  failed try.
A host that answers without a MAC it could check (A0, 77, 97) has not
processed the request: that is a failed try too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from firmware.errors import MessageFormatError, PosError, StoreError
from firmware.host.financial import (
    NetworkCode,
    read_answer,
    record_upload,
    repeat,
    reversal,
)
from firmware.host.mac import UNMACED_DECLINE_CODES
from firmware.txn.context import TxnContext
from firmware.txn.model import ArmedReversal, TxnStatus
from firmware.txn.outbox import OutboxRecord, reversal_id
from firmware.txn.stored_request import StoredRequest
from firmware.txn.wire import NotSent, WireError

__all__ = ["ADVICE", "NOTICE", "DrainReport", "drain", "send_advice", "send_reversal"]

ADVICE: Final = "advice"
NOTICE: Final = "notice"


@dataclass
class DrainReport:
    """What one drain did: items acknowledged, failed tries, and what is still waiting or flagged."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: int = 0
    flagged: int = 0
    stopped: str | None = None  # why the drain stopped early (host unreachable), or None
    set_aside: list[str] = field(default_factory=list)  # reversals refused: their request is not pending

    def to_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "waiting": self.waiting,
            "flagged": self.flagged,
            "stopped": self.stopped,
            "set_aside": self.set_aside,
        }


class _NotProcessed(PosError):
    """The host answered but did not process the request (unMACed decline): try again later."""


class _SetAside(PosError):
    """A reversal whose request is not pending: set aside, not sent."""


def _checked(answer: Mapping[str, str]) -> str:
    code = read_answer(answer).response_code
    if code in UNMACED_DECLINE_CODES:
        raise _NotProcessed(f"host did not process it ({code})")
    return code


def send_reversal(ctx: TxnContext, armed: ArmedReversal) -> str:
    """Send one armed reversal (a repeat after its first try); disarm it on a valid answer.

    Only while its request is PENDING in the books: otherwise it is set aside, nothing is sent,
    and `_SetAside` says so.
    """
    entry = ctx.book.entry(armed.trace)
    if entry is None or entry.status is not TxnStatus.PENDING:
        why = "not in the open batch" if entry is None else entry.status.value
        ctx.book.outbox.set_aside_reversal(
            armed.trace, f"not sent: its request {armed.trace:06d} is {why}, not pending"
        )
        raise _SetAside(f"reversal of trace {armed.trace:06d}: its request is {why}, not pending")
    original = ctx.rebuild(armed.fields, armed.pan_sealed, f"reversal of trace {armed.trace:06d}")
    message = reversal(original, armed.reason.value, armed.armed_at)
    code = _checked(ctx.wire.exchange(repeat(message) if armed.attempts else message))
    with ctx.book.transaction():
        entry = ctx.book.entry(armed.trace)
        if entry is not None:
            reversed_ = f"reversed ({armed.reason.value}), host answered {code}"
            reason = f"{entry.status_reason}; {reversed_}" if entry.status_reason else reversed_
            ctx.book.settle_request(armed.trace, TxnStatus.REVERSED, disarm=True, status_reason=reason)
        else:
            ctx.book.outbox.disarm(armed.trace)
    return code


def send_advice(ctx: TxnContext, record: OutboxRecord) -> str:
    """Send one advice (0220, a repeat 0221 after its first try) and record the host's decision."""
    payload = record.payload
    stored = payload.get("request")
    if not isinstance(stored, dict):
        raise StoreError(f"advice {record.id} has no request to send")
    message = ctx.rebuild(stored, payload.get("pan_sealed"), f"advice {record.id}")
    trace = int(message["11"])
    answer = ctx.wire.exchange(repeat(message) if record.delivery.attempts else message)
    code = _checked(answer)
    read = read_answer(answer)
    notice = payload.get("notice") if code == "00" else None
    with ctx.book.transaction():
        ctx.book.settle_request(
            trace,
            TxnStatus.APPROVED if code == "00" else TxnStatus.DECLINED,
            rrn=read.rrn,
            auth_code=read.auth_code,
            response_code=code,
            status_reason="" if code == "00" else f"host declined ({code})",
            disarm=False,
            host_date=read.host_date,
        )
        ctx.book.outbox.acknowledge(record.id)
        if isinstance(notice, dict):
            ctx.book.outbox.enqueue(NOTICE, {**notice, "rrn": read.rrn})
        request = StoredRequest.from_json(stored, f"advice {record.id}")
        original = request.original
        open_original = ctx.book.entry(original.trace) if original is not None else None
        if open_original is not None and original is not None and open_original.batch == original.batch:
            verdict = "approved" if code == "00" else f"declined ({code})"
            ctx.book.amend(original.trace, note=f"{request.kind.value} {trace:06d} {verdict}")
    return code


def _send_record(ctx: TxnContext, record: OutboxRecord) -> str:
    stan = ctx.book.take_trace()
    network = NetworkCode.NOTICE_UPLOAD if record.kind == NOTICE else NetworkCode.BATCH_UPLOAD
    message = record_upload(
        ctx.identity,
        stan=stan,
        batch=ctx.book.batch,
        record=record.signed_bytes,
        signature=record.signature,
        network_code=network,
    )
    code = _checked(ctx.wire.exchange(message))
    if code != "00":
        raise _NotProcessed(f"host refused the {record.kind} ({code})")
    ctx.book.outbox.acknowledge(record.id)
    return code


def _send_one(ctx: TxnContext, item: ArmedReversal | OutboxRecord) -> str:
    if isinstance(item, ArmedReversal):
        return send_reversal(ctx, item)
    if item.kind == ADVICE:
        return send_advice(ctx, item)
    return _send_record(ctx, item)


def _item_id(item: ArmedReversal | OutboxRecord) -> str:
    return reversal_id(item.trace) if isinstance(item, ArmedReversal) else item.id


def _retry_flagged(ctx: TxnContext, report: DrainReport) -> bool:
    """One more try of each item that used up its tries (the operator asked); False: host unreachable."""
    flagged_reversals, flagged_records = ctx.book.outbox.flagged()
    items: list[ArmedReversal | OutboxRecord] = [*flagged_reversals, *flagged_records]
    for item in items:
        item_id = _item_id(item)
        try:
            _send_one(ctx, item)
        except NotSent as exc:
            report.stopped = str(exc)
            return False
        except _SetAside:
            report.set_aside.append(item_id)
            continue
        except (WireError, _NotProcessed, MessageFormatError) as exc:
            ctx.book.outbox.mark_attempt(item_id, str(exc))
            report.failed.append(item_id)
            continue
        report.sent.append(item_id)
    return True


def drain(ctx: TxnContext, *, reversals_only: bool = False, include_flagged: bool = False) -> DrainReport:
    """Send what waits, in order, until nothing is left, the host is unreachable, or all left is flagged.

    An item that fails is tried again after the context's backoff until it is acknowledged or has
    used up its tries (then it is flagged: kept, reported, and skipped by later drains unless
    `include_flagged`, the operator's explicit "send now", gives each flagged item one more try).
    """
    report = DrainReport()
    if include_flagged and not _retry_flagged(ctx, report):
        return _summary(ctx, report)
    tries = 0
    while True:
        item = ctx.book.outbox.next_to_send()
        if item is None or (reversals_only and not isinstance(item, ArmedReversal)):
            break
        item_id = _item_id(item)
        try:
            _send_one(ctx, item)
        except NotSent as exc:
            report.stopped = str(exc)
            break
        except _SetAside:
            report.set_aside.append(item_id)
            continue
        except (WireError, _NotProcessed, MessageFormatError) as exc:
            ctx.book.outbox.mark_attempt(item_id, str(exc))
            report.failed.append(item_id)
            ctx.sleep(ctx.backoff[min(tries, len(ctx.backoff) - 1)] if ctx.backoff else 0.0)
            tries += 1
            continue
        report.sent.append(item_id)
        tries = 0
    return _summary(ctx, report)


def _summary(ctx: TxnContext, report: DrainReport) -> DrainReport:
    flagged_reversals, flagged_records = ctx.book.outbox.flagged()
    report.flagged = len(flagged_reversals) + len(flagged_records)
    armed = [reversal for reversal in ctx.book.outbox.armed() if not reversal.flagged]
    report.waiting = len(armed) + len(ctx.book.outbox.pending())
    return report
