"""The outbox: what waits for the host, in the open batch's file, in the order it must go up.

Two kinds of thing wait, both in the open-batch file (`firmware.store.tables`),
so a record is queued in the same crash-safe write as the operation it speaks
of:

- armed write-ahead reversals (table ``reversals``, under the trace of the
  request they reverse): the 0400's data, stored before the request is sent
  and disarmed only by a valid answer (`ArmedReversal`);
- signed records (table ``outbox``, under their sequence number): advices
  (a refund or adjust 0220 not yet acknowledged), customer notices and batch
  upload records. A document is
  ``{"record": SIGNED, "attempts": n, "last_error": text|null, "undeliverable": bool}``;
  SIGNED is ``{"id", "sequence", "kind", "created", "payload", "signature"}``,
  signed at enqueue with the device's Ed25519 key (`firmware.keys.signing`:
  the signature covers the canonical JSON of everything but itself; the
  delivery fields beside it are not signed, they change with each try).

``set_aside`` keeps records that failed their signature check or are
malformed, as found, with the reason and the time: never uploaded, never
deleted. ``meta`` (document 1, shared with the book) holds
``next_sequence``, so an acknowledged record's number is never handed out
again.

Order (`next_to_send`): armed reversals first (oldest armed first), then
records by sequence; flagged ones are skipped. One thing is in flight at a
time: the same item comes back until it is acknowledged (`acknowledge`
removes it) or its try is counted (`mark_attempt`: after `max_attempts`
tries it is flagged undeliverable, kept and reported, never dropped).

Every record is verified each time it is read for upload, with the
registered public key: a record edited on disk or signed by another device
never goes up. A malformed reversal is not skipped (that would send the next
request unprotected): reading it raises StoreError naming the file and the
trace. Nothing stored carries clear card data: `enqueue` and `arm` refuse a
value that looks like a clear PAN, or a field named like a PIN or track data
(SensitiveDataError, naming the field). A payload's top-level ``pan_sealed``
(an advice's card, sealed) is held to the sealed PAN's shape instead
(`firmware.txn.documents.check_sealed`), as the journal's is: random hex of
that length holds, now and then, a run of digits that passes Luhn.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.errors import ConfigError, StoreError, TamperedRecordError
from firmware.keys.signing import RecordSigner, canonical_json, verify_record
from firmware.store.sensitive import check_storable, mask_clear_pans
from firmware.store.tables import DocumentTables
from firmware.txn.documents import MAX_TRACE, check_sealed, reversal_document, reversal_from_document
from firmware.txn.model import ArmedReversal, ReversalReason

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DeliveryState",
    "Outbox",
    "OutboxRecord",
    "SetAsideRecord",
    "reversal_id",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS: Final = 3
OUTBOX, SET_ASIDE, REVERSALS, META = "outbox", "set_aside", "reversals", "meta"
META_KEY: Final = 1
_MAX_ERROR_LENGTH: Final = 200
_RECORD_ID: Final = re.compile(r"(\d{10})-([0-9a-f]{32})")
_REVERSAL_ID: Final = re.compile(r"reversal-(\d{6})")
_KIND: Final = re.compile(r"[a-z][a-z_-]{0,31}")
_SIGNED_FIELDS: Final = frozenset({"id", "sequence", "kind", "created", "payload", "signature"})


def reversal_id(trace: int) -> str:
    """The outbox id of the armed reversal of request `trace`."""
    return f"reversal-{trace:06d}"


@dataclass(frozen=True)
class DeliveryState:
    """How the sending of one record or reversal went so far."""

    attempts: int
    last_error: str | None
    undeliverable: bool


@dataclass(frozen=True)
class OutboxRecord:
    """A signed record whose signature verified when it was read.

    `signed_bytes` is exactly what `signature` covers (canonical JSON): what
    goes up in field 62 of the upload and what the host verifies.
    """

    id: str
    sequence: int
    kind: str
    created: datetime
    payload: Mapping[str, Any]
    signature: bytes
    delivery: DeliveryState
    signed_bytes: bytes = field(repr=False)


@dataclass(frozen=True)
class SetAsideRecord:
    """A record taken out of the upload path, as it was found (unverified: do not trust its content)."""

    sequence: int
    record_id: str | None
    reason: str
    set_aside_at: str
    found: Mapping[str, Any] = field(repr=False)


def _check_sealed_pan(value: object) -> None:
    """A payload's sealed PAN: of the sealed shape (a clear one is refused as clear card data first)."""
    try:
        check_sealed(value, "payload.pan_sealed")
    except StoreError:
        check_storable(value, "payload.pan_sealed")
        raise


class _Malformed(Exception):
    """An outbox document that is not a record this outbox wrote (internal; the caller sets it aside)."""


def _record_id_of(document: Mapping[str, Any]) -> str | None:
    """The record's id if it has the shape of one (only such ids are shown or logged)."""
    record = document.get("record")
    record_id = record.get("id") if isinstance(record, dict) else None
    return record_id if isinstance(record_id, str) and _RECORD_ID.fullmatch(record_id) else None


def _delivery_of(document: Mapping[str, Any]) -> DeliveryState:
    attempts, last_error, undeliverable = (
        document.get("attempts"),
        document.get("last_error"),
        document.get("undeliverable"),
    )
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise _Malformed("its attempt count is not a number of tries")
    if last_error is not None and not isinstance(last_error, str):
        raise _Malformed("its last error is not text")
    if not isinstance(undeliverable, bool):
        raise _Malformed("its undeliverable flag is not true or false")
    return DeliveryState(attempts, last_error, undeliverable)


def _check_shape(doc_id: int, document: Mapping[str, Any]) -> dict[str, Any]:
    """The signed record of an outbox document, once its shape is that of one this outbox wrote."""
    record = document.get("record")
    if not isinstance(record, dict):
        raise _Malformed("it holds no record")
    missing = sorted(_SIGNED_FIELDS - record.keys())
    if missing:
        raise _Malformed(f"its record lacks {', '.join(missing)}")
    record_id = _record_id_of(document)
    if record_id is None:
        raise _Malformed("its record id is not one this outbox makes")
    sequence = record["sequence"]
    if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence != doc_id:
        raise _Malformed(f"its record is not filed under its own sequence number ({doc_id})")
    if int(record_id[:10]) != sequence:
        raise _Malformed("its record id does not carry its sequence number")
    if not isinstance(record["kind"], str) or not _KIND.fullmatch(record["kind"]):
        raise _Malformed("its kind is not a record kind")
    if not isinstance(record["payload"], dict):
        raise _Malformed("its payload is not an object")
    if not isinstance(record["created"], str):
        raise _Malformed("its creation time is not text")
    try:
        datetime.fromisoformat(record["created"])
    except ValueError:
        raise _Malformed("its creation time is not an ISO 8601 time") from None
    return record


def _outbox_record(doc_id: int, document: Mapping[str, Any], public_key: Ed25519PublicKey) -> OutboxRecord:
    """The verified record of an outbox document (_Malformed or TamperedRecordError otherwise)."""
    record = _check_shape(doc_id, document)
    delivery = _delivery_of(document)
    verify_record(record, public_key)
    signed_bytes = canonical_json(record)
    body = json.loads(signed_bytes)  # a copy of exactly what was verified
    return OutboxRecord(
        id=body["id"],
        sequence=body["sequence"],
        kind=body["kind"],
        created=datetime.fromisoformat(body["created"]),
        payload=body["payload"],
        signature=bytes.fromhex(record["signature"]),
        delivery=delivery,
        signed_bytes=signed_bytes,
    )


class Outbox:
    """Armed reversals and signed records waiting for the host, in the tables of the open-batch file.

    `signer` signs at enqueue; `public_key` (the key registered with the host)
    verifies every record read for upload. `clock` dates records and
    set-aside entries; `rng` makes the random half of each record id.
    Each method is one transaction of `tables` (part of the caller's, inside
    `tables.transaction()`).
    """

    def __init__(
        self,
        tables: DocumentTables,
        signer: RecordSigner,
        public_key: Ed25519PublicKey,
        clock: Callable[[], datetime],
        *,
        rng: Callable[[int], bytes] = os.urandom,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        if signer.public_key_bytes() != public_key.public_bytes(Encoding.Raw, PublicFormat.Raw):
            raise ConfigError("the record signing key is not the key records are verified with")
        self.tables = tables
        self._signer = signer
        self._public_key = public_key
        self._clock = clock
        self._rng = rng
        self._max_attempts = max_attempts

    @property
    def path(self) -> Path:
        return self.tables.path

    # ----- signed records -----------------------------------------------------------------------------

    def enqueue(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Sign and store a record; returns its id. Refuses clear card data (SensitiveDataError)."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise StoreError("record kind must be 1 to 32 lower-case letters, '-' or '_'")
        if not isinstance(payload, Mapping):
            raise StoreError("record payload must be a mapping")
        payload = dict(payload)
        check_storable({key: value for key, value in payload.items() if key != "pan_sealed"}, "payload")
        _check_sealed_pan(payload.get("pan_sealed"))
        with self.tables.transaction():
            sequence = self._take_sequence()
            record = {
                "id": f"{sequence:010d}-{uuid.UUID(bytes=self._rng(16), version=4).hex}",
                "sequence": sequence,
                "kind": kind,
                "created": self._clock().isoformat(),
                "payload": payload,
            }
            signed = self._signer.sign_record(record)
            document = {"record": signed, "attempts": 0, "last_error": None, "undeliverable": False}
            self.tables.put(OUTBOX, sequence, document)
        return str(record["id"])

    def _take_sequence(self) -> int:
        meta = self.tables.get(META, META_KEY) or {}
        stored = meta.get("next_sequence")
        # The stored counter, but never below a number in use (a meta table lost or edited by hand).
        used: list[object] = list(self.tables.keys(OUTBOX))
        used += [entry.get("sequence") for _, entry in self.tables.all(SET_ASIDE)]
        floor = stored if isinstance(stored, int) and not isinstance(stored, bool) else 1
        sequence = max([floor, *(n + 1 for n in used if isinstance(n, int))])
        if sequence >= 10**10:
            raise StoreError(f"{self.path}: the record sequence is exhausted")
        self.tables.put(META, META_KEY, {**meta, "next_sequence": sequence + 1})
        return sequence

    def pending(self) -> list[OutboxRecord]:
        """Records to upload, in sequence order, each verified; failing ones are set aside, not returned."""
        return [record for record in self._verified() if not record.delivery.undeliverable]

    def undeliverable(self) -> list[OutboxRecord]:
        """Records that used up their tries: kept, verified, flagged for the technician."""
        return [record for record in self._verified() if record.delivery.undeliverable]

    def _verified(self, *, first_sendable: bool = False) -> list[OutboxRecord]:
        verified: list[OutboxRecord] = []
        with self.tables.transaction():
            for doc_id, document in self.tables.all(OUTBOX):
                try:
                    record = _outbox_record(doc_id, document, self._public_key)
                except TamperedRecordError as exc:
                    self._set_aside(doc_id, document, str(exc), "signature check failed")
                    continue
                except _Malformed as exc:
                    reason = f"outbox entry {doc_id} is malformed: {exc}"
                    self._set_aside(doc_id, document, reason, "malformed")
                    continue
                verified.append(record)
                if first_sendable and not record.delivery.undeliverable:
                    break
        return verified

    def _set_aside(self, doc_id: int, document: Mapping[str, Any], reason: str, kind: str) -> None:
        """Move an outbox document to the set-aside table (same transaction: one write, nothing lost)."""
        now = self._clock().isoformat()
        entry = {"sequence": doc_id, "found": document, "reason": reason, "set_aside_at": now}
        self.tables.put(SET_ASIDE, self.tables.next_key(SET_ASIDE), entry)
        self.tables.remove(OUTBOX, doc_id)
        label = _record_id_of(document) or f"entry {doc_id}"
        log.warning("outbox %s: record %s set aside (%s)", self.path.name, label, kind)

    def set_aside(self) -> list[SetAsideRecord]:
        """Records taken out of the upload path, oldest first, with why and when."""
        result = []
        for doc_id, entry in self.tables.all(SET_ASIDE):
            found = entry.get("found")
            found = found if isinstance(found, dict) else {}
            sequence, reason, when = entry.get("sequence"), entry.get("reason"), entry.get("set_aside_at")
            result.append(
                SetAsideRecord(
                    sequence=sequence if isinstance(sequence, int) else doc_id,
                    record_id=_record_id_of(found),
                    reason=reason if isinstance(reason, str) else "no reason recorded",
                    set_aside_at=when if isinstance(when, str) else "",
                    found=found,
                )
            )
        return result

    # ----- armed reversals ----------------------------------------------------------------------------

    def arm(self, reversal: ArmedReversal) -> str:
        """Store a reversal before its request is sent; returns its outbox id (StoreError if one is armed)."""
        document = reversal_document(reversal)
        with self.tables.transaction():
            if self.tables.contains(REVERSALS, reversal.trace):
                raise StoreError(f"{self.path}: a reversal of trace {reversal.trace:06d} is already armed")
            self.tables.put(REVERSALS, reversal.trace, document)
        return reversal_id(reversal.trace)

    def disarm(self, trace: int) -> bool:
        """Remove the armed reversal of `trace` (a valid answer came); False if none was armed."""
        return self.tables.remove(REVERSALS, trace)

    def reversal(self, trace: int) -> ArmedReversal | None:
        """The armed reversal of `trace`, or None (StoreError if its document is malformed)."""
        document = self.tables.get(REVERSALS, trace)
        return None if document is None else self._reversal_from(trace, document)

    def armed(self) -> list[ArmedReversal]:
        """Every armed reversal, flagged ones too, oldest armed first."""
        with self.tables.transaction():
            reversals = [self._reversal_from(trace, doc) for trace, doc in self.tables.all(REVERSALS)]
        return sorted(reversals, key=lambda reversal: reversal.armed_at)

    def set_reversal_reason(self, trace: int, reason: ReversalReason) -> ArmedReversal:
        """Change what field 39 of an armed reversal will say (e.g. 06 once the card declined)."""
        with self.tables.transaction():
            reversal = self._armed(trace)
            changed = replace(reversal, reason=ReversalReason(reason))
            self.tables.put(REVERSALS, trace, reversal_document(changed))
        return changed

    def _armed(self, trace: int) -> ArmedReversal:
        reversal = self.reversal(trace)
        if reversal is None:
            raise StoreError(f"no reversal of trace {trace:06d} is armed in {self.path}")
        return reversal

    def _reversal_from(self, trace: int, document: Mapping[str, Any]) -> ArmedReversal:
        reversal = reversal_from_document(document, f"{self.path}: reversal of trace {trace:06d}")
        if reversal.trace != trace:
            raise StoreError(f"{self.path}: reversal of trace {trace:06d} is filed under another trace")
        return reversal

    # ----- sending ------------------------------------------------------------------------------------

    def next_to_send(self) -> ArmedReversal | OutboxRecord | None:
        """What goes up next: the oldest armed reversal not flagged, else the first sendable record."""
        with self.tables.transaction():
            for reversal in self.armed():
                if not reversal.flagged:
                    return reversal
            for record in self._verified(first_sendable=True):
                if not record.delivery.undeliverable:
                    return record
        return None

    def acknowledge(self, item_id: str) -> None:
        """Remove what the host acknowledged: a record by its id, a reversal by `reversal_id(trace)`."""
        with self.tables.transaction():
            table, key = self._locate(item_id)
            self.tables.remove(table, key)

    def mark_attempt(self, item_id: str, error: str) -> DeliveryState:
        """Count a failed try; after `max_attempts` tries the record or reversal is flagged, and kept."""
        last_error = mask_clear_pans(str(error))[:_MAX_ERROR_LENGTH]
        with self.tables.transaction():
            table, key = self._locate(item_id)
            if table == REVERSALS:
                reversal = self._armed(key)
                before = DeliveryState(reversal.attempts, reversal.last_error, reversal.flagged)
                state = self._next_state(before, last_error)
                changed = replace(reversal, attempts=state.attempts, last_error=last_error,
                                  flagged=state.undeliverable)  # fmt: skip
                self.tables.put(REVERSALS, key, reversal_document(changed))
            else:
                document = self.tables.get(OUTBOX, key)
                assert document is not None
                try:
                    before = _delivery_of(document)
                except _Malformed as exc:
                    raise StoreError(f"record {item_id} in {self.path} is malformed: {exc}") from None
                state = self._next_state(before, last_error)
                document.update(attempts=state.attempts, last_error=state.last_error,
                                undeliverable=state.undeliverable)  # fmt: skip
                self.tables.put(OUTBOX, key, document)
        if state.undeliverable and not before.undeliverable:
            log.warning("outbox %s: %s undeliverable after %d tries, kept",
                        self.path.name, item_id, state.attempts)  # fmt: skip
        return state

    def _next_state(self, before: DeliveryState, last_error: str) -> DeliveryState:
        return DeliveryState(
            attempts=before.attempts + 1,
            last_error=last_error,
            undeliverable=before.undeliverable or before.attempts + 1 >= self._max_attempts,
        )

    def _locate(self, item_id: str) -> tuple[str, int]:
        """The table and key of an outbox id (StoreError if nothing waits under it)."""
        if isinstance(item_id, str) and (match := _REVERSAL_ID.fullmatch(item_id)):
            trace = int(match.group(1))
            if 1 <= trace <= MAX_TRACE and self.tables.contains(REVERSALS, trace):
                return REVERSALS, trace
            raise StoreError(f"no reversal {item_id} is armed in {self.path}")
        match = _RECORD_ID.fullmatch(item_id) if isinstance(item_id, str) else None
        if match is None:
            raise StoreError("not an outbox record id")
        doc_id = int(match.group(1))
        document = self.tables.get(OUTBOX, doc_id)
        if document is None or _record_id_of(document) != item_id:
            raise StoreError(f"record {item_id} is not in the outbox {self.path}")
        return OUTBOX, doc_id

    def flagged(self) -> tuple[list[ArmedReversal], list[OutboxRecord]]:
        """What used up its tries (reversals, records): kept for the technician and the slip."""
        with self.tables.transaction():
            return [r for r in self.armed() if r.flagged], self.undeliverable()
