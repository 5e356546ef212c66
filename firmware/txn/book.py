"""The terminal's books: the open batch, its write-ahead reversals and outbox, and the settled batches.

On disk, under the book's directory (the service passes ``D/txn``):

- ``open.json``: the OPEN BATCH, one small TinyDB file (`firmware.store.tables`,
  crash-safe) with the tables
  ``entries`` (JournalEntry documents of this batch, under their trace),
  ``cash_refunds`` (CashRefund documents, under a running number),
  ``reversals`` and ``outbox`` / ``set_aside`` (`firmware.txn.outbox`: armed
  0400s; signed advices, notices and upload records; records set aside) and
  ``meta`` (document 1: ``batch``, ``next_trace`` 1..999999 wrapping,
  ``next_sequence`` of the outbox, and ``settling``: the batch whose
  settlement request was sent, until the batch is closed or the host
  refused it: the host may have closed that batch already).
- ``batches/batch-NNNNNN.json`` and ``batch-NNNNNN.index.json``: settled
  batches, immutable (`firmware.txn.archive`).

Every state change is ONE crash-safe write under the file's lock:
`record_request` writes the pending entry and its armed reversal together,
`settle_request` the outcome and the disarming, `record_reverse` the reverse
entry, the original's history line, its reversal or advice and the customer
notice. `with book.transaction():` groups several operations (take a trace,
record the request) into one write; the write happens when the outermost
block ends without raising.

Settlement (`close_batch`) moves the batch's entries and cash refunds to its
archive (written first, crash-safe, never rewritten) and then rewrites the
open file with what is still waiting: entries still pending (they keep their
own batch number and are archived with the batch in which they are resolved),
armed reversals, the outbox, the counters. A power cut between the two steps
leaves an archive for the batch the open file still names: opening the book
finishes the rotation from the archive, so it is idempotent at every point.

Trace numbers (field 11) come from `take_trace`: never one in use in the open
batch, and never again until the counter wraps after 999999; a trace that a
recorded entry carries beyond the counter moves the counter past it.

Reads validate what they use: a malformed entry raises StoreError naming the
file and the entry, and nothing is changed. At open, the whole open file is
validated: a file that does not load is kept aside and named
(`DamagedStoreError`, from the store) and the book does not open, so the
service refuses online work instead of starting from an empty batch; an open
file missing while archives exist is refused too (StoreError).

Anti-rollback: with the terminal's record (`record`, `firmware.keys.monotonic`)
the open file is known there as ``open-batch``: every read checks its bytes
against the record and every write goes through the record's guarded step,
with the outbox's ``next_sequence`` and ``chain_head`` as facts. An older copy
put back, an edited file or one missing while the record says it exists is
refused (RolledBackError naming the file) and the book does not open. When a
technician starts a lost file again (`start_empty`), the record forgets the
file but not its facts: record numbers and the chain go on from where they
were, never from 1.

Money is int minor units; times are timezone-aware; no clear PAN, track data
or PIN is accepted anywhere (SensitiveDataError naming the field).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firmware.errors import StoreError
from firmware.keys.monotonic import MonotonicRecord
from firmware.keys.signing import RecordSigner
from firmware.store.atomic_file import ensure_private_dir
from firmware.store.guard import Facts
from firmware.store.storage import DAMAGED_SUFFIX, StoreData
from firmware.store.tables import DocumentTables
from firmware.txn.archive import (
    ArchiveIndex,
    Archives,
    EntryRow,
    archive_path,
    index_path,
    read_archive,
    write_archive,
    write_index,
)
from firmware.txn.documents import (
    MAX_TRACE,
    cash_refund_document,
    cash_refund_from_document,
    entry_document,
    entry_from_document,
    last4,
)
from firmware.txn.model import ArmedReversal, CashRefund, JournalEntry, TxnStatus, TxnType
from firmware.txn.outbox import CHAIN_GENESIS, DEFAULT_MAX_ATTEMPTS, META, META_KEY, Outbox

__all__ = ["OPEN_FILE", "ORDER_TYPES", "Book", "History", "ReverseRecorded"]

OPEN_FILE: Final = "open.json"
OPEN_RECORD_NAME: Final = "open-batch"  # its name in the anti-rollback record
ENTRIES, CASH_REFUNDS = "entries", "cash_refunds"
ORDER_TYPES: Final = frozenset({TxnType.SALE, TxnType.PREAUTH, TxnType.COMPLETION})
_REFUND_COUNTED: Final = frozenset({TxnStatus.APPROVED, TxnStatus.PENDING})


@dataclass(frozen=True)
class History:
    """Everything the book holds about one order, across batches, oldest first.

    `originals`: the order's sales and pre-authorisations; `entries`: every
    entry acting on them (voids, refunds, adjusts, completions and what acts
    on those), each with its own status (a reversed one says REVERSED);
    `cash_refunds`: the cash paid back against them.
    """

    order: str
    originals: tuple[JournalEntry, ...]
    entries: tuple[JournalEntry, ...]
    cash_refunds: tuple[CashRefund, ...]


@dataclass(frozen=True)
class ReverseRecorded:
    """What `record_reverse` / `record_cash_refund` queued: the ids of the outbox items, if any."""

    reversal_id: str | None
    advice_id: str | None
    notice_id: str | None


def _book_facts(state: StoreData) -> Facts:
    """What of the open file may only move forward: the outbox's next sequence and its chain head."""
    meta = state.get(META, {}).get(str(META_KEY), {})
    sequence, head = meta.get("next_sequence"), meta.get("chain_head")
    return {
        "next_sequence": sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else None,
        "chain_head": head if isinstance(head, str) else None,
    }


def _history_line(entry: JournalEntry) -> str:
    return (f"{entry.created.isoformat(timespec='seconds')} {entry.type.value} {entry.trace:06d} "
            f"{entry.amount} {entry.status.value}")  # fmt: skip


def _cash_line(refund: CashRefund) -> str:
    return f"{refund.created.isoformat(timespec='seconds')} cash_refund {refund.reference} {refund.amount}"


class Book:
    """The books of one terminal in `directory`.

    `signer` / `public_key` sign and verify outbox records; `clock` dates
    records and names damaged files; `rng` makes record ids; `max_attempts`
    bounds the tries of each outbox item; `first_batch` is the batch number
    of a book that starts empty. A missing open file is started empty only
    when nothing says a batch existed (no archives, no damaged file kept
    aside), or when `start_empty` says so (the technician's decision).
    """

    def __init__(
        self,
        directory: Path,
        signer: RecordSigner,
        public_key: Ed25519PublicKey,
        clock: Callable[[], datetime],
        *,
        rng: Callable[[int], bytes] = os.urandom,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        first_batch: int = 1,
        start_empty: bool = False,
        record: MonotonicRecord | None = None,
    ) -> None:
        if not 0 <= first_batch <= MAX_TRACE:
            raise StoreError(f"batch numbers are 0..{MAX_TRACE}, got {first_batch}")
        self.directory = Path(directory)
        self.path = self.directory / OPEN_FILE
        self._clock = clock
        ensure_private_dir(self.directory)
        self.archives = Archives(self.directory)
        if not self.path.exists() and not start_empty:
            kept = sorted(self.directory.glob(f"{OPEN_FILE}{DAMAGED_SUFFIX}*"))
            if kept:
                raise StoreError(
                    f"{self.path} was damaged and kept aside as {kept[-1].name}; refusing to start an empty "
                    "batch in its place (a technician restores it, or starts empty knowingly)"
                )
            if self.archives.batches():
                raise StoreError(
                    f"{self.path} is missing while settled batches are in {self.archives.directory}; "
                    "refusing to start an empty batch (trace and batch numbers would be handed out again)"
                )
        guard = None if record is None else record.guard(OPEN_RECORD_NAME, self.path)
        facts: Mapping[str, Any] = {}
        if guard is not None:
            if start_empty and not self.path.exists():
                guard.forget()  # the technician's decision; the facts stay
            facts = guard.facts()
        # DamagedStoreError: kept aside, not opened; RolledBackError: refused, left in place
        self.tables = DocumentTables(self.path, clock, guard=guard, facts=_book_facts)
        self.outbox = Outbox(self.tables, signer, public_key, clock, rng=rng, max_attempts=max_attempts)
        with self.transaction():
            if self.tables.get(META, META_KEY) is None:
                sequence, head = facts.get("next_sequence"), facts.get("chain_head")
                sequence = sequence if isinstance(sequence, int) and sequence > 1 else 1
                head = head if isinstance(head, str) else CHAIN_GENESIS
                self.tables.put(META, META_KEY, {
                    "batch": first_batch, "next_trace": 1, "next_sequence": sequence, "chain_head": head,
                    "chain_base": [sequence - 1, head], "chain_done": [],
                })  # fmt: skip
            self._finish_rotation()
            self._validate_all()

    def close(self) -> None:
        self.tables.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group book operations into one crash-safe write (under the open file's lock)."""
        with self.tables.transaction():
            yield

    # ----- counters -----------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        meta = self.tables.get(META, META_KEY)
        if meta is None:
            raise StoreError(f"{self.path}: the batch counters (meta) are missing")
        for name, low in (("batch", 0), ("next_trace", 1)):
            value = meta.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_TRACE:
                raise StoreError(f"{self.path}: meta {name} is not a number in {low}..{MAX_TRACE}")
        return meta

    @property
    def batch(self) -> int:
        """The open batch's number (field 60.2 of its requests)."""
        with self.transaction():
            return int(self._meta()["batch"])

    @property
    def settling(self) -> int | None:
        """The open batch, if its settlement was sent and not concluded (the host may have closed it)."""
        with self.transaction():
            meta = self._meta()
            return int(meta["batch"]) if meta.get("settling") == meta["batch"] else None

    def mark_settling(self, settling: bool) -> None:
        """Say that the open batch's settlement goes to the host now (True), or that it did not (False)."""
        with self.transaction():
            meta = self._meta()
            if settling:
                meta["settling"] = meta["batch"]
            else:
                meta.pop("settling", None)
            self.tables.put(META, META_KEY, meta)

    def take_trace(self) -> int:
        """The next trace number (field 11), spent on disk in this write: never handed out twice."""
        with self.transaction():
            meta = self._meta()
            trace = int(meta["next_trace"])
            for _ in range(MAX_TRACE):
                if not self.tables.contains(ENTRIES, trace) and self.outbox.reversal(trace) is None:
                    break
                trace = trace % MAX_TRACE + 1
            else:
                raise StoreError(f"{self.path}: every trace number is in use in the open batch")
            self.tables.put(META, META_KEY, {**meta, "next_trace": trace % MAX_TRACE + 1})
            return trace

    def _spend_trace(self, trace: int) -> None:
        """Move the counter past a trace recorded beyond it (the counter may wrap, the trace not repeat)."""
        meta = self._meta()
        if trace >= int(meta["next_trace"]):
            self.tables.put(META, META_KEY, {**meta, "next_trace": trace % MAX_TRACE + 1})

    # ----- recording ----------------------------------------------------------------------------------

    def record_request(self, entry: JournalEntry, reversal: ArmedReversal | None = None) -> str | None:
        """Write a request's entry (normally PENDING) and its armed reversal in one write, before sending.

        Returns the reversal's outbox id. StoreError if the trace is in use or
        the entry is not of the open batch.
        """
        document = entry_document(entry)
        with self.transaction():
            self._insert_entry(entry, document)
            if reversal is None:
                return None
            if reversal.trace != entry.trace:
                raise StoreError(f"the reversal of trace {reversal.trace:06d} does not protect entry "
                                 f"{entry.trace:06d}")  # fmt: skip
            return self.outbox.arm(reversal)

    def _insert_entry(self, entry: JournalEntry, document: Mapping[str, Any]) -> None:
        batch = self._meta()["batch"]
        if entry.batch != batch:
            raise StoreError(f"entry {entry.trace:06d} names batch {entry.batch}; the open batch is {batch}")
        if self.tables.contains(ENTRIES, entry.trace):
            raise StoreError(f"{self.path}: trace {entry.trace:06d} is already recorded in the open batch")
        self._spend_trace(entry.trace)
        self.tables.put(ENTRIES, entry.trace, document)

    def settle_request(
        self,
        trace: int,
        status: TxnStatus,
        *,
        rrn: str | None = None,
        auth_code: str | None = None,
        response_code: str | None = None,
        status_reason: str | None = None,
        note: str | None = None,
        disarm: bool = True,
        host_date: str | None = None,
    ) -> JournalEntry:
        """Record a request's outcome and (by default) disarm its reversal, in one write.

        Fields left None keep their value; `note` is added to the entry's history.
        """
        with self.transaction():
            entry = self._open_entry(trace)
            changed = replace(
                entry,
                status=TxnStatus(status),
                rrn=entry.rrn if rrn is None else rrn,
                auth_code=entry.auth_code if auth_code is None else auth_code,
                response_code=entry.response_code if response_code is None else response_code,
                status_reason=entry.status_reason if status_reason is None else status_reason,
                history=entry.history if note is None else (*entry.history, note),
                host_date=entry.host_date if host_date is None else host_date,
            )
            self.tables.put(ENTRIES, trace, entry_document(changed))
            if disarm:
                self.outbox.disarm(trace)
        return changed

    def amend(
        self, trace: int, *, status: TxnStatus | None = None, status_reason: str | None = None,
        note: str | None = None,
    ) -> JournalEntry:  # fmt: skip
        """Change an open-batch entry's status or add a history line (e.g. an approved void's original)."""
        with self.transaction():
            entry = self._open_entry(trace)
            changed = replace(
                entry,
                status=entry.status if status is None else TxnStatus(status),
                status_reason=entry.status_reason if status_reason is None else status_reason,
                history=entry.history if note is None else (*entry.history, note),
            )
            self.tables.put(ENTRIES, trace, entry_document(changed))
        return changed

    def record_reverse(
        self,
        entry: JournalEntry,
        *,
        reversal: ArmedReversal | None = None,
        advice: Mapping[str, Any] | None = None,
        notice: Mapping[str, Any] | None = None,
        original_note: str | None = None,
    ) -> ReverseRecorded:
        """Record a reverse request (void, refund, adjust, completion) in one write.

        Written together: the entry; a history line on the original when it is
        in the open batch (an archived original is read-only: the entry's
        `original_batch` / `original_trace` is its link, found by `history`);
        the armed reversal of an online request; the signed advice (kind
        "advice") of a 0220; the signed customer notice (kind "notice").
        """
        if entry.original_batch is None or entry.original_trace is None:
            raise StoreError(f"reverse entry {entry.trace:06d} names no original (batch and trace)")
        document = entry_document(entry)
        with self.transaction():
            self._insert_entry(entry, document)
            self._note_original(entry.original_batch, entry.original_trace,
                                original_note or _history_line(entry))  # fmt: skip
            reversal_id = None
            if reversal is not None:
                if reversal.trace != entry.trace:
                    raise StoreError(f"the reversal of trace {reversal.trace:06d} does not protect entry "
                                     f"{entry.trace:06d}")  # fmt: skip
                reversal_id = self.outbox.arm(reversal)
            advice_id = None if advice is None else self.outbox.enqueue("advice", advice)
            notice_id = None if notice is None else self.outbox.enqueue("notice", notice)
        return ReverseRecorded(reversal_id, advice_id, notice_id)

    def record_cash_refund(
        self, refund: CashRefund, *, notice: Mapping[str, Any] | None = None
    ) -> ReverseRecorded:
        """Record a cash refund, its line in the original's history and its notice, in one write."""
        document = cash_refund_document(refund)
        with self.transaction():
            for _, stored in self.tables.all(CASH_REFUNDS):
                if stored.get("reference") == refund.reference:
                    raise StoreError(f"{self.path}: cash refund {refund.reference} is already recorded")
            self.tables.put(CASH_REFUNDS, self.tables.next_key(CASH_REFUNDS), document)
            self._note_original(refund.original_batch, refund.original_trace, _cash_line(refund))
            notice_id = None if notice is None else self.outbox.enqueue("notice", notice)
        return ReverseRecorded(None, None, notice_id)

    def _note_original(self, original_batch: int, original_trace: int, line: str) -> None:
        original = self._entry_in_open(original_trace)
        if original is not None and original.batch == original_batch:
            changed = replace(original, history=(*original.history, line))
            self.tables.put(ENTRIES, original_trace, entry_document(changed))

    # ----- the open batch -----------------------------------------------------------------------------

    def _entry_in_open(self, trace: int) -> JournalEntry | None:
        document = self.tables.get(ENTRIES, trace)
        if document is None:
            return None
        entry = entry_from_document(document, f"{self.path}: entry {trace:06d}")
        if entry.trace != trace:
            raise StoreError(f"{self.path}: entry {trace:06d} is filed under another trace than its own")
        return entry

    def _open_entry(self, trace: int) -> JournalEntry:
        entry = self._entry_in_open(trace)
        if entry is None:
            raise StoreError(f"trace {trace:06d} is not in the open batch {self.path}")
        return entry

    def entry(self, trace: int) -> JournalEntry | None:
        """The open batch's entry of `trace`, or None."""
        with self.transaction():
            return self._entry_in_open(trace)

    def open_entries(self) -> list[JournalEntry]:
        """The open batch's entries (pending ones carried from earlier batches too), oldest first."""
        with self.transaction():
            entries = [self._entry_of(trace, doc) for trace, doc in self.tables.all(ENTRIES)]
        return sorted(entries, key=lambda entry: entry.created)

    def _entry_of(self, trace: int, document: Mapping[str, Any]) -> JournalEntry:
        entry = entry_from_document(document, f"{self.path}: entry {trace:06d}")
        if entry.trace != trace:
            raise StoreError(f"{self.path}: entry {trace:06d} is filed under another trace than its own")
        return entry

    def open_cash_refunds(self) -> list[CashRefund]:
        with self.transaction():
            return [
                cash_refund_from_document(doc, f"{self.path}: cash refund {key}")
                for key, doc in self.tables.all(CASH_REFUNDS)
            ]

    def _validate_all(self) -> None:
        self._meta()
        self.open_entries()
        self.open_cash_refunds()
        self.outbox.armed()
        self.outbox.pending()  # records failing their signature set aside, then the chain walked

    # ----- settlement ---------------------------------------------------------------------------------


    def close_batch(self, new_batch: int) -> Path:
        """Archive the open batch and open batch `new_batch` (pending entries and the outbox carry over).

        Returns the archive's path. StoreError if `new_batch` is the open one
        or already archived.
        """
        if isinstance(new_batch, bool) or not isinstance(new_batch, int) or not 0 <= new_batch <= MAX_TRACE:
            raise StoreError(f"batch numbers are 0..{MAX_TRACE}, got {new_batch!r}")
        with self.transaction():
            batch = int(self._meta()["batch"])
            if new_batch == batch or self.archives.exists(new_batch):
                raise StoreError(f"batch {new_batch} is the open batch or already settled")
            entries = self.open_entries()
            settled = [entry for entry in entries if entry.status != TxnStatus.PENDING]
            path = write_archive(
                self.directory, batch, new_batch, settled, self.open_cash_refunds(), self._clock()
            )
            self._drop_archived(batch)
        return path

    def _finish_rotation(self) -> None:
        """If the open batch is already archived (cut after the archive was written), finish rotating."""
        batch = int(self._meta()["batch"])
        if not self.archives.exists(batch):
            return
        archive = read_archive(archive_path(self.directory, batch))
        if not index_path(self.directory, batch).exists():
            write_index(self.directory, batch, archive, archive_path(self.directory, batch).stat().st_size)
        self._drop_archived(batch)

    def _drop_archived(self, batch: int) -> None:
        """Remove from the open file what the archive of `batch` holds, and open its next batch."""
        path = archive_path(self.directory, batch)
        archive = read_archive(path)
        archived = {(doc["trace"], doc.get("batch")) for doc in archive["entries"]}
        for trace, document in self.tables.all(ENTRIES):
            if (trace, document.get("batch")) in archived:
                self.tables.remove(ENTRIES, trace)
        references = {doc.get("reference") for doc in archive["cash_refunds"] if isinstance(doc, dict)}
        for key, document in self.tables.all(CASH_REFUNDS):
            if document.get("reference") in references:
                self.tables.remove(CASH_REFUNDS, key)
        next_batch = archive["next_batch"]
        meta = {key: value for key, value in self._meta().items() if key != "settling"}
        self.tables.put(META, META_KEY, {**meta, "batch": next_batch})

    # ----- lookups ------------------------------------------------------------------------------------

    def find(
        self,
        *,
        order: str | None = None,
        trace: int | None = None,
        rrn: str | None = None,
        on: date | None = None,
        amount: int | None = None,
        last4: str | None = None,
        types: frozenset[TxnType] = ORDER_TYPES,
    ) -> list[JournalEntry]:
        """Orders (sales, pre-authorisations, completions) matching every criterion given, newest first.

        Searches the open batch and every archived one; `on` is the local date
        of the entry's creation, `last4` the last four digits of the card.
        """
        wanted_date = None if on is None else on.isoformat()

        def matches(kind: str, o: str, t: int, r: str | None, d: str, a: int, four: str | None) -> bool:
            return (kind in types and (order is None or o == order) and (trace is None or t == trace)
                    and (rrn is None or r == rrn) and (wanted_date is None or d == wanted_date)
                    and (amount is None or a == amount) and (last4 is None or four == last4))  # fmt: skip

        found = [
            entry for entry in self.open_entries()
            if matches(entry.type, entry.order, entry.trace, entry.rrn, entry.created.date().isoformat(),
                       entry.amount, _last4(entry))
        ]  # fmt: skip
        for index in self.archives.indexes():
            rows = [
                row for row in _candidates(index, order, last4)
                if matches(row.type, row.order, row.trace, row.rrn, row.date, row.amount, row.last4)
            ]  # fmt: skip
            if rows:
                found.extend(self.archives.entries(index.batch, rows))
        return sorted(found, key=lambda entry: entry.created, reverse=True)

    def history(self, order: str) -> History:
        """Every entry and cash refund of an order, across the open batch and the archives, oldest first."""
        open_entries = self.open_entries()
        open_cash = self.open_cash_refunds()
        indexes = self.archives.indexes()
        mine = {(e.batch, e.trace) for e in open_entries if e.order == order}
        for index in indexes:
            mine |= {(row.batch, row.trace) for row in index.by_order.get(order, ())}
        entries = [
            e for e in open_entries if e.order == order or (e.original_batch, e.original_trace) in mine
        ]
        cash = [c for c in open_cash if c.order == order or (c.original_batch, c.original_trace) in mine]
        for index in indexes:
            rows = {row.position: row for row in index.by_order.get(order, ())}
            for reference in mine:
                rows.update((row.position, row) for row in index.by_original.get(reference, ()))
            if rows:
                entries.extend(self.archives.entries(index.batch, rows.values()))
            cash_rows = {row.position: row for row in index.cash_by_order.get(order, ())}
            for reference in mine:
                cash_rows.update((row.position, row) for row in index.cash_by_original.get(reference, ()))
            if cash_rows:
                cash.extend(self.archives.cash_refunds(index.batch, cash_rows.values()))
        entries.sort(key=lambda entry: entry.created)
        cash.sort(key=lambda refund: refund.created)
        return History(
            order=order,
            originals=tuple(e for e in entries if e.original_trace is None),
            entries=tuple(e for e in entries if e.original_trace is not None),
            cash_refunds=tuple(cash),
        )

    def refunded_total(self, original_batch: int, original_trace: int) -> int:
        """What is refunded of an original so far: approved and pending card refunds, and cash refunds."""
        reference = (original_batch, original_trace)
        total = sum(
            entry.amount for entry in self.open_entries()
            if entry.type == TxnType.REFUND and entry.status in _REFUND_COUNTED
            and (entry.original_batch, entry.original_trace) == reference
        )  # fmt: skip
        total += sum(
            refund.amount for refund in self.open_cash_refunds()
            if (refund.original_batch, refund.original_trace) == reference
        )  # fmt: skip
        for index in self.archives.indexes():
            total += sum(
                row.amount for row in index.by_original.get(reference, ())
                if row.type == TxnType.REFUND and row.status in _REFUND_COUNTED
            )  # fmt: skip
            total += sum(row.amount for row in index.cash_by_original.get(reference, ()))
        return total


def _last4(entry: JournalEntry) -> str | None:
    return last4(entry.masked_pan)


def _candidates(
    index: ArchiveIndex, order: str | None, four: str | None
) -> tuple[EntryRow, ...] | list[EntryRow]:
    """The rows worth testing: through a look-up table when the search names one of its keys."""
    if order is not None:
        return index.by_order.get(order, [])
    if four is not None:
        return index.by_last4.get(four, [])
    return index.entries
