"""The terminal's business service: what `pos-txn` and the kiosk screens call, and nothing else.

`open_terminal(data_dir, link)` opens the books, the keys and the host
profile of a provisioned terminal; a books file that does not load is kept
aside and named, and the terminal refuses to start rather than begin empty.

    service.sign_on()                                     0800 / 0810, working keys installed
    service.sale(reader, amount, order=..., pin=...)      sale (or pre-authorisation) with the card
    service.void(ref, evidence)                           cancel an order (撤销)
    service.refund(ref, amount, to=card|cash, evidence)   refund (退货), to the card or in cash
    service.adjust(ref, original, new, evidence)          adjust the amount (调整金额)
    service.settle()                                      settlement (结算), batch upload if needed
    service.drain()                                       send whatever waits (reversals first)
    service.journal(), service.queue(), service.find()    what the terminal did, what waits

Every online request first lets pending reversals go up: while a reversal
the host has not acknowledged is armed, no new online request is sent. A
settlement cut short after its request left (the host may have closed the
batch) is finished first too: no request goes into a batch the host may
have settled (`PendingSettlementError` while it cannot be finished).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from firmware.emv.reader import CardReader
from firmware.emv.result import Outcome, TransactionResult
from firmware.errors import ConfigError, HostError, PosError
from firmware.host.channel import HostLink
from firmware.host.mac import StoreMac
from firmware.host.messages import TerminalIdentity
from firmware.host.profile import HostProfile, load_host_profile
from firmware.host.signon import SignOnResult, sign_on
from firmware.identity import load_identity
from firmware.keys.device import load_device_key
from firmware.keys.key_history import WorkingKeyHistory
from firmware.keys.layout import KeyLayout, open_key_store, open_monotonic_record, open_record_signer
from firmware.txn.authorise import Authoriser
from firmware.txn.book import ORDER_TYPES, Book
from firmware.txn.card_payment import KernelSetup, PinSource, run_card_payment
from firmware.txn.context import TxnContext
from firmware.txn.model import CashRefund, Evidence, JournalEntry, RefundMethod, TxnStatus, TxnType
from firmware.txn.order_numbers import generated_order
from firmware.txn.pan_vault import PanVault
from firmware.txn.reverse import (
    OriginalRef,
    ReverseResult,
    SupervisorCheck,
    adjust,
    card_refund,
    cash_refund,
    void_order,
)
from firmware.txn.settlement import SettlementResult, settle
from firmware.txn.terms import Terms, load_terms
from firmware.txn.uploader import DrainReport, drain
from firmware.txn.wire import Wire

__all__ = [
    "NotSignedOnError",
    "PendingReversalError",
    "PendingSettlementError",
    "SaleResult",
    "TerminalService",
    "cash_refund_view",
    "entry_view",
    "generated_order",
    "open_terminal",
]


MAK_NAME = "MAK"


class PendingReversalError(HostError):
    """A reversal waits for the host: no new online request goes before it."""


class NotSignedOnError(ConfigError):
    """No working keys: the terminal has not signed on with the host."""


class PendingSettlementError(HostError):
    """A settlement cut short waits to be finished: no new online request goes before it."""


@dataclass(frozen=True)
class SaleResult:
    """A card payment: the kernel's outcome and the journal entry of the request (None if none was sent)."""

    outcome: Outcome
    reason: str
    entry: JournalEntry | None
    reversal_pending: bool

    def to_dict(self) -> dict[str, Any]:
        entry = self.entry
        return {
            "outcome": self.outcome.name,
            "reason": self.reason,
            "trace": entry.trace if entry else None,
            "order": entry.order if entry else None,
            "type": entry.type.value if entry else None,
            "amount": entry.amount if entry else None,
            "status": entry.status.value if entry else None,
            "rrn": entry.rrn if entry else None,
            "auth_code": entry.auth_code if entry else None,
            "masked_pan": entry.masked_pan if entry else None,
            "reversal_pending": self.reversal_pending,
        }


def entry_view(entry: JournalEntry) -> dict[str, Any]:
    """A journal entry as `pos-txn journal` prints it: no sealed PAN."""
    evidence = entry.evidence
    return {
        "trace": entry.trace,
        "type": entry.type.value,
        "amount": entry.amount,
        "status": entry.status.value,
        "rrn": entry.rrn,
        "order": entry.order,
        "batch": entry.batch,
        "created": entry.created.isoformat(),
        "auth_code": entry.auth_code,
        "response_code": entry.response_code,
        "masked_pan": entry.masked_pan,
        "original_batch": entry.original_batch,
        "original_trace": entry.original_trace,
        "amount_before": entry.amount_before,
        "status_reason": entry.status_reason,
        "supervisor": entry.supervisor,
        "evidence": None
        if evidence is None
        else {
            "order": evidence.order,
            "name": evidence.name,
            "contact": evidence.contact,
            "reason": evidence.reason,
            "original_time": evidence.original_time.isoformat() if evidence.original_time else None,
        },
        "history": list(entry.history),
    }


def cash_refund_view(refund: CashRefund) -> dict[str, Any]:
    return {
        "reference": refund.reference,
        "amount": refund.amount,
        "order": refund.order,
        "original_batch": refund.original_batch,
        "original_trace": refund.original_trace,
        "created": refund.created.isoformat(),
        "name": refund.evidence.name,
        "contact": refund.evidence.contact,
        "reason": refund.evidence.reason,
        "supervisor": refund.supervisor,
    }


class TerminalService:
    """The business operations over one terminal's books, keys and host link."""

    def __init__(
        self,
        ctx: TxnContext,
        link: HostLink,
        profile: HostProfile,
        *,
        kernel: KernelSetup | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        key_history: WorkingKeyHistory | None = None,
    ) -> None:
        """`key_history` None: no replay check of sign-on answers (`open_terminal` always gives one)."""
        self.ctx = ctx
        self._key_history = key_history
        self._link = link
        self.profile = profile
        self._kernel = kernel
        self._random_bytes = random_bytes
        self._sequence_counter = 0

    def close(self) -> None:
        self.ctx.book.close()

    # ----- host -----------------------------------------------------------------------------------

    def sign_on(self, operator: str = "001") -> SignOnResult:
        """签到: new working keys from the host (installed only if every check value matches)."""
        return sign_on(
            self._link,
            self.ctx.keys,
            self.ctx.identity,
            stan=self.ctx.book.take_trace(),
            batch_number=self.ctx.book.batch,
            operator=operator,
            key_scheme=self.profile.key_scheme,
            timeout=self.profile.answer_timeout,
            history=self._key_history,
            allow_single_des=self.profile.legacy_single_des,
        )

    def drain(self) -> DrainReport:
        """The operator's "send now": everything waiting, the items that used up their tries included."""
        self._require_working_keys()
        return drain(self.ctx, include_flagged=True)

    def _require_working_keys(self) -> None:
        """Every message to the host is MACed: without working keys, the terminal must sign on first."""
        if MAK_NAME not in self.ctx.keys:
            raise NotSignedOnError("the terminal has no working keys: sign on first (pos-txn sign-on)")

    def _reversals_first(self) -> None:
        """Before a request: what waits goes up, reversals first; an unacknowledged reversal blocks.

        A reversal that used up its tries (flagged) blocks too: it is tried again by an explicit
        drain (`pos-txn drain`, "retry now"), never dropped. A settlement cut short is finished
        first (the host may have closed the batch already).
        """
        self._require_working_keys()
        report = drain(self.ctx)
        waiting = self.ctx.book.outbox.armed()
        if waiting:
            flagged = sum(1 for reversal in waiting if reversal.flagged)
            why = report.stopped or (
                f"{flagged} used up their tries: retry with pos-txn drain"
                if flagged
                else "not acknowledged yet"
            )
            raise PendingReversalError(f"{len(waiting)} reversal(s) wait for the host ({why}); try again")
        self._settlement_finished()

    def _settlement_finished(self) -> None:
        """Finish a settlement whose request left before the terminal heard the end of it."""
        batch = self.ctx.book.settling
        if batch is None:
            return
        try:
            settle(self.ctx)
        except PosError as exc:
            raise PendingSettlementError(
                f"the settlement of batch {batch:06d} was cut short and could not be finished ({exc}); "
                "try again"
            ) from exc

    # ----- card payments --------------------------------------------------------------------------

    def sale(
        self,
        reader: CardReader,
        amount: int,
        *,
        order: str | None = None,
        pin: PinSource | None = None,
        kind: TxnType = TxnType.SALE,
    ) -> SaleResult:
        """A sale (消费) or pre-authorisation (预授权) with the card in `reader`.

        Without `order`, the order number is `generated_order(now)`.
        """
        if kind not in (TxnType.SALE, TxnType.PREAUTH):
            raise PosError(f"a card payment is a sale or a pre-authorisation, not a {kind.value}")
        if amount <= 0:
            raise PosError("the amount of a card payment must be more than zero")
        self._reversals_first()
        if self._kernel is None:
            self._kernel = KernelSetup.load()
        config = self._kernel.config
        now = self.ctx.now()
        order = order or generated_order(now, self._random_bytes(2))
        authoriser = Authoriser(
            self.ctx,
            kind,
            amount,
            order,
            approval_codes=frozenset(config.approval_response_codes),
            partial_approval_codes=frozenset(config.partial_approval_response_codes),
        )
        self._sequence_counter = self._sequence_counter % 9999 + 1
        result: TransactionResult = run_card_payment(
            reader,
            setup=self._kernel,
            keys=self.ctx.keys,
            amount=amount,
            refund=False,
            now=now,
            sequence_counter=self._sequence_counter,
            random_bytes=self._random_bytes,
            online=authoriser.online,
            pin=pin,
        )
        entry = authoriser.conclude(result)
        armed = authoriser.trace is not None and self.ctx.book.outbox.reversal(authoriser.trace) is not None
        if armed:
            drain(self.ctx, reversals_only=True)
            entry = self.ctx.book.entry(authoriser.trace) if authoriser.trace is not None else entry
            armed = (
                authoriser.trace is not None and self.ctx.book.outbox.reversal(authoriser.trace) is not None
            )
        reason = result.reason
        if entry is not None and entry.status is not TxnStatus.APPROVED and entry.status_reason:
            reason = entry.status_reason
        return SaleResult(result.outcome, reason, entry, armed)

    # ----- reverse operations ---------------------------------------------------------------------

    def void(
        self, ref: OriginalRef, evidence: Evidence, *, supervisor: SupervisorCheck | None = None
    ) -> ReverseResult:
        self._reversals_first()
        return void_order(self.ctx, ref, evidence, supervisor=supervisor)

    def refund(
        self,
        ref: OriginalRef,
        amount: int,
        to: RefundMethod,
        evidence: Evidence,
        *,
        supervisor: SupervisorCheck | None = None,
    ) -> ReverseResult:
        self._reversals_first()
        if to is RefundMethod.CASH:
            return cash_refund(self.ctx, ref, amount, evidence, supervisor=supervisor)
        return card_refund(self.ctx, ref, amount, evidence, supervisor=supervisor)

    def adjust(
        self,
        ref: OriginalRef,
        original_amount: int,
        new_amount: int,
        evidence: Evidence,
        *,
        supervisor: SupervisorCheck | None = None,
    ) -> ReverseResult:
        self._reversals_first()
        return adjust(self.ctx, ref, original_amount, new_amount, evidence, supervisor=supervisor)

    def settle(self) -> SettlementResult:
        self._require_working_keys()
        return settle(self.ctx)

    # ----- views ----------------------------------------------------------------------------------

    def journal(self) -> list[JournalEntry]:
        """Every financial request the terminal made, settled batches first, oldest first."""
        archives = self.ctx.book.archives
        entries: list[JournalEntry] = []
        for batch in self._settled_batches():
            entries.extend(archives.entries(batch, archives.index(batch).entries))
        entries.extend(self.ctx.book.open_entries())
        return entries

    def _settled_batches(self) -> list[int]:
        """The settled batches in the order they were closed (batch numbers wrap after 999999)."""
        archives = self.ctx.book.archives
        return sorted(archives.batches(), key=lambda batch: archives.index(batch).closed)

    def cash_refunds(self) -> list[CashRefund]:
        archives = self.ctx.book.archives
        refunds: list[CashRefund] = []
        for batch in self._settled_batches():
            refunds.extend(archives.cash_refunds(batch, archives.index(batch).cash_refunds))
        refunds.extend(self.ctx.book.open_cash_refunds())
        return refunds

    def find(
        self,
        *,
        order: str | None = None,
        trace: int | None = None,
        rrn: str | None = None,
        on: date | None = None,
        amount: int | None = None,
        last4: str | None = None,
    ) -> list[JournalEntry]:
        return self.ctx.book.find(
            order=order, trace=trace, rrn=rrn, on=on, amount=amount, last4=last4, types=ORDER_TYPES
        )

    def queue(self) -> dict[str, Any]:
        """What waits for the host, what is flagged, and what was set aside (with why)."""
        outbox = self.ctx.book.outbox
        flagged_records = outbox.flagged()[1]
        reversal_rows = [
            {
                "id": f"reversal-{r.trace:06d}",
                "kind": "reversal",
                "trace": r.trace,
                "reason": r.reason.value,
                "amount": r.amount,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "flagged": r.flagged,
                "status": "failed" if r.flagged else "waiting",
            }
            for r in outbox.armed()
        ]
        record_rows = [
            {
                "id": r.id,
                "kind": r.kind,
                "trace": r.payload.get("trace"),
                "attempts": r.delivery.attempts,
                "last_error": r.delivery.last_error,
                "flagged": r.delivery.undeliverable,
                "status": "failed" if r.delivery.undeliverable else "waiting",
            }
            for r in [*outbox.pending(), *flagged_records]
        ]
        pending_entries = [
            entry_view(e) for e in self.ctx.book.open_entries() if e.status is TxnStatus.PENDING
        ]
        return {
            "batch": self.ctx.book.batch,
            "waiting": [row for row in reversal_rows + record_rows if not row["flagged"]],
            "flagged": [row for row in reversal_rows + record_rows if row["flagged"]],
            "pending_requests": pending_entries,
            "set_aside": [
                {"sequence": s.sequence, "id": s.record_id, "reason": s.reason, "at": s.set_aside_at}
                for s in outbox.set_aside()
            ],
            "count": len(reversal_rows) + len(record_rows),
        }


def open_terminal(
    data_dir: Path,
    link: HostLink,
    *,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    random_bytes: Callable[[int], bytes] = os.urandom,
    profile: HostProfile | None = None,
    terms: Terms | None = None,
    identity: TerminalIdentity | None = None,
    kernel: KernelSetup | None = None,
    device_key: Path | None = None,
) -> TerminalService:
    """The service over a provisioned terminal's data directory (KeyStoreError if not provisioned)."""
    layout = KeyLayout.under(Path(data_dir), device_key)
    record = open_monotonic_record(layout, load_device_key(layout.device_key_path))
    keys = open_key_store(layout, record)
    signer = open_record_signer(keys)
    profile = profile or load_host_profile()
    wall_clock = clock or (lambda: datetime.now().astimezone())
    book = Book(
        Path(data_dir) / "txn",
        signer,
        signer.public_key(),
        wall_clock,
        rng=random_bytes,
        max_attempts=profile.max_attempts,
        record=record,
    )
    wire = Wire(link, StoreMac(keys, profile.mac_profile), profile.answer_timeout)
    ctx = TxnContext(
        book=book,
        wire=wire,
        keys=keys,
        vault=PanVault(keys, random_bytes),
        signer=signer,
        identity=identity or TerminalIdentity.of(load_identity()),
        terms=terms or load_terms(),
        clock=wall_clock,
        sleep=sleep,
        backoff=profile.backoff,
    )
    history = WorkingKeyHistory(layout.keys_dir, load_device_key(layout.device_key_path), random_bytes)
    return TerminalService(ctx, link, profile, kernel=kernel, random_bytes=random_bytes, key_history=history)
