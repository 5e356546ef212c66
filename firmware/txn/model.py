"""The business vocabulary: operations, statuses, evidence, journal entries (no I/O).

One table per code, in the words the journal, `pos-txn` and the screens use:

- `TxnType`: what a financial request was (sale, preauth, completion, void,
  refund, adjust). Cash refunds never reach the host and are `CashRefund`s,
  kept apart from the journal.
- `TxnStatus`: where it stands (approved, voided, reversed, declined,
  pending, failed). `pending` means a request, reversal or advice still
  waits for the host's acknowledgement.
- `ReverseOperation`: the merchant's reverse operations that the terms
  govern (void, card refund, cash refund, adjust).
- `EvidenceField`: the fields of `Evidence`, which the terms may require.
- `ArmedReversal`: a write-ahead reversal, stored before the request it
  protects is sent, with what is needed to rebuild its 0400.

Amounts are integers in minor units (fen); times are timezone-aware
datetimes. A PAN appears here only masked (first 6, last 4) or sealed under
the terminal's data key (`pan_sealed`, hex), never in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ArmedReversal",
    "CashRefund",
    "Evidence",
    "EvidenceField",
    "JournalEntry",
    "RefundMethod",
    "ReversalReason",
    "ReverseOperation",
    "TxnStatus",
    "TxnType",
]


class TxnType(StrEnum):
    SALE = "sale"
    PREAUTH = "preauth"
    COMPLETION = "completion"
    VOID = "void"
    REFUND = "refund"
    ADJUST = "adjust"


class TxnStatus(StrEnum):
    APPROVED = "approved"
    VOIDED = "voided"
    REVERSED = "reversed"
    DECLINED = "declined"
    PENDING = "pending"
    FAILED = "failed"


class RefundMethod(StrEnum):
    CARD = "card"
    CASH = "cash"


class ReverseOperation(StrEnum):
    """What the terms speak of (time windows, limits, supervisor, evidence)."""

    VOID = "void"
    REFUND = "refund"
    CASH_REFUND = "cash_refund"
    ADJUST = "adjust"


class ReversalReason(StrEnum):
    """Field 39 of a 0400: why the terminal reverses what it sent."""

    NO_ANSWER = "98"
    BAD_MAC = "A0"
    CARD_DECLINED_AFTER_APPROVAL = "06"
    TERMINAL_COULD_NOT_COMPLETE = "96"


class EvidenceField(StrEnum):
    """The fields of `Evidence`, by their attribute names: the terms list the required ones."""

    ORDER = "order"
    ORIGINAL_TIME = "original_time"
    NAME = "name"
    CONTACT = "contact"
    REASON = "reason"


@dataclass(frozen=True)
class Evidence:
    """What a reverse request must carry (凭证): which fields are required is in the terms."""

    order: str
    original_time: datetime | None
    name: str
    contact: str
    reason: str


@dataclass(frozen=True)
class JournalEntry:
    """One financial request the terminal made, as the journal keeps it.

    `trace` is field 11 and unique within the terminal's trace cycle; `batch`
    is 60.2. For a void, refund, adjust or completion, `original_batch` and
    `original_trace` name the sale (or pre-authorisation) it acts on; `order`
    is then the original's order number. `amount` is what this request moved:
    for an adjust, the new amount, with `amount_before` the amount it replaced.
    """

    trace: int
    type: TxnType
    amount: int
    status: TxnStatus
    order: str
    batch: int
    created: datetime
    rrn: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    masked_pan: str | None = None
    pan_sealed: str | None = None
    original_batch: int | None = None
    original_trace: int | None = None
    amount_before: int | None = None
    evidence: Evidence | None = None
    supervisor: bool = False
    status_reason: str = ""
    history: tuple[str, ...] = field(default_factory=tuple)
    host_date: str | None = None  # MMDD the host booked it on (field 13 of its answer): 61.3 of what follows


@dataclass(frozen=True)
class CashRefund:
    """A refund paid in cash: no message to the host; journal, slip and notice only."""

    reference: str
    amount: int
    order: str
    original_batch: int
    original_trace: int
    created: datetime
    evidence: Evidence
    supervisor: bool = False


@dataclass(frozen=True)
class ArmedReversal:
    """A write-ahead reversal (冲正): stored before the request it protects is sent.

    `trace` is the trace (field 11) of the request it reverses, `original_mti`
    that request's message type ("0200"), `amount` what it moved. `fields`
    holds the request's data elements as JSON data (field number -> text) so
    the 0400 can be rebuilt after a restart: never a clear PAN (field 2 only
    sealed, in `pan_sealed`, never in `fields`), field 55 as hex. `reason` is
    what field 39 of the 0400 will say;
    `attempts`, `last_error` and `flagged` (undeliverable after the bounded
    tries: kept, printed, never dropped) track its sending.
    """

    trace: int
    original_mti: str
    amount: int
    fields: Mapping[str, Any]
    reason: ReversalReason
    armed_at: datetime
    attempts: int = 0
    last_error: str | None = None
    flagged: bool = False
    pan_sealed: str | None = None
