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
  ``{"record": SIGNED, "attempts": n, "last_error": text|null, "undeliverable": bool,
  "delivery_signature": HEX}``;
  SIGNED is ``{"id", "sequence", "prev", "kind", "created", "payload", "signature"}``,
  signed at enqueue with the device's Ed25519 key (`firmware.keys.signing`:
  the signature covers the canonical JSON of everything but itself). The
  delivery fields beside it change with each try, so they carry a signature
  of their own (`delivery_signature`, over the canonical JSON of the record
  id, attempts, last error and flag): a flag set by hand to hide a record, or
  a try count changed to make a 0221 go as a 0220, fails it like an edited
  record.

The records form a chain: `prev` is the SHA-256 of the signed bytes of the
record before (`chain_hash`; `CHAIN_GENESIS` for the first one), and the
sequence number is signed with it. ``meta`` keeps ``chain_head`` (the hash of
the last record queued), ``chain_base`` ``[n, hash]`` (every record up to n is
acknowledged or set aside; hash is record n's, "" when unknown) and
``chain_done`` (runs ``[first, last, hash of last]`` of records above the base
acknowledged or set aside while an earlier one still waits). Every read for
upload and every open walks the chain (`check_chain`): each number from the
base to ``next_sequence`` is a waiting record or in a done run, and each
waiting record's `prev` is the hash of the one before. A record cut out is
missing; one put back after its acknowledgement is at or below the base or
in a done run (replayed); one moved is out of its place: each is a StoreError
naming the file and the number, and nothing goes up. (Records written by a
firmware before the chain carry no `prev`; they stay outside it.)

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
trace.

An armed reversal is signed too (the whole document: its data, reason, tries
and flag), again at every change: one added by hand (to reverse an approved
sale), one edited or one flagged to hide it fails its signature, and reading
it raises StoreError. Its fields must name its own trace (``trace`` of the
stored request, field 11 when given). The uploader sends one only while its
request is still PENDING in the books (`set_aside_reversal` otherwise).
Nothing stored carries clear card data: `enqueue` and `arm` refuse a
value that looks like a clear PAN, or a field named like a PIN or track data
(SensitiveDataError, naming the field). A payload's top-level ``pan_sealed``
(an advice's card, sealed) is held to the sealed PAN's shape instead
(`firmware.txn.documents.check_sealed`), as the journal's is: random hex of
that length holds, now and then, a run of digits that passes Luhn.
"""

from __future__ import annotations

import hashlib
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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.errors import ConfigError, StoreError, TamperedRecordError
from firmware.keys.signing import SIGNATURE_FIELD, RecordSigner, canonical_json, verify_record
from firmware.store.sensitive import check_storable, mask_clear_pans
from firmware.store.tables import DocumentTables
from firmware.txn.documents import MAX_TRACE, check_sealed, reversal_document, reversal_from_document
from firmware.txn.model import ArmedReversal, ReversalReason

__all__ = [
    "CHAIN_GENESIS",
    "DEFAULT_MAX_ATTEMPTS",
    "DeliveryState",
    "Outbox",
    "OutboxRecord",
    "SetAsideRecord",
    "chain_hash",
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
_HASH: Final = re.compile(r"[0-9a-f]{64}")
CHAIN_GENESIS: Final = "0" * 64
DELIVERY_SIGNATURE: Final = "delivery_signature"


def chain_hash(signed_bytes: bytes) -> str:
    """The link to a record: SHA-256 of its signed bytes (canonical JSON), lower-case hex."""
    return hashlib.sha256(signed_bytes).hexdigest()


def _delivery_bytes(record_id: str, state: DeliveryState) -> bytes:
    body = {"id": record_id, "attempts": state.attempts, "last_error": state.last_error,
            "undeliverable": state.undeliverable}  # fmt: skip
    return canonical_json(body)


def _trace_problem(fields: Mapping[str, Any], trace: int) -> str | None:
    """Why a reversal's stored fields do not name its own trace (None: they do)."""
    named = [name for name in ("trace", "11") if name in fields]
    if not named:
        return "its stored request names no trace"
    if "trace" in fields and (isinstance(fields["trace"], bool) or fields["trace"] != trace):
        return f"its stored request is of trace {fields['trace']!r}, not {trace:06d}"
    if "11" in fields and fields["11"] != f"{trace:06d}":
        return f"its stored request is of trace {fields['11']!r} (field 11), not {trace:06d}"
    return None


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
    if "prev" in record and not (isinstance(record["prev"], str) and _HASH.fullmatch(record["prev"])):
        raise _Malformed("its link to the record before is not a hash")
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
    if "prev" in record:  # a chained record: its delivery state is signed too
        signature = document.get(DELIVERY_SIGNATURE)
        try:
            public_key.verify(bytes.fromhex(str(signature)), _delivery_bytes(record["id"], delivery))
        except (ValueError, InvalidSignature):
            raise TamperedRecordError(
                f"record {record['id']!r}: its delivery state (tries, flag) fails its signature check "
                "(changed by hand)"
            ) from None
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
            meta = self.tables.get(META, META_KEY) or {}
            head = meta.get("chain_head")
            prev = head if isinstance(head, str) and _HASH.fullmatch(head) else CHAIN_GENESIS
            record = {
                "id": f"{sequence:010d}-{uuid.UUID(bytes=self._rng(16), version=4).hex}",
                "sequence": sequence,
                "prev": prev,
                "kind": kind,
                "created": self._clock().isoformat(),
                "payload": payload,
            }
            signed = self._signer.sign_record(record)
            self.tables.put(OUTBOX, sequence, self._delivery_document(signed, DeliveryState(0, None, False)))
            if "chain_base" not in meta:  # the first record of a chain (a new file, or one from before it)
                meta = {**meta, "chain_base": [sequence - 1, prev], "chain_done": []}
            self.tables.put(META, META_KEY, {**meta, "chain_head": chain_hash(canonical_json(signed))})
        return str(record["id"])

    def _delivery_document(self, signed: Mapping[str, Any], state: DeliveryState) -> dict[str, Any]:
        signature = self._signer.sign_bytes(_delivery_bytes(signed["id"], state)).hex()
        return {"record": dict(signed), "attempts": state.attempts, "last_error": state.last_error,
                "undeliverable": state.undeliverable, DELIVERY_SIGNATURE: signature}  # fmt: skip

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
        """Every record verified (failing ones set aside), then the chain of what is left checked.

        `first_sendable`: only the first record not flagged (what goes up next), if any.
        """
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
            self.check_chain()
        if first_sendable:
            return [record for record in verified if not record.delivery.undeliverable][:1]
        return verified

    def _set_aside(self, doc_id: int, document: Mapping[str, Any], reason: str, kind: str) -> None:
        """Move an outbox document to the set-aside table (same transaction: one write, nothing lost)."""
        now = self._clock().isoformat()
        entry = {"sequence": doc_id, "found": document, "reason": reason, "set_aside_at": now}
        self.tables.put(SET_ASIDE, self.tables.next_key(SET_ASIDE), entry)
        self.tables.remove(OUTBOX, doc_id)
        self._chain_done(doc_id, "")  # accounted for; what it should have been is not known
        label = _record_id_of(document) or f"entry {doc_id}"
        log.warning("outbox %s: record %s set aside (%s)", self.path.name, label, kind)

    def set_aside(self) -> list[SetAsideRecord]:
        """Records taken out of the upload path, oldest first, with why and when."""
        result = []
        for doc_id, entry in self.tables.all(SET_ASIDE):
            found = entry.get("found")
            found = found if isinstance(found, dict) else {}
            sequence, reason, when = entry.get("sequence"), entry.get("reason"), entry.get("set_aside_at")
            trace = entry.get("trace")
            record_id = _record_id_of(found)
            if record_id is None and isinstance(trace, int):
                record_id = reversal_id(trace)
            result.append(
                SetAsideRecord(
                    sequence=sequence if isinstance(sequence, int) else doc_id,
                    record_id=record_id,
                    reason=reason if isinstance(reason, str) else "no reason recorded",
                    set_aside_at=when if isinstance(when, str) else "",
                    found=found,
                )
            )
        return result

    # ----- armed reversals ----------------------------------------------------------------------------

    def arm(self, reversal: ArmedReversal) -> str:
        """Store a reversal before its request is sent; returns its outbox id (StoreError if one is armed)."""
        document = self._signed_reversal(reversal)
        with self.tables.transaction():
            if self.tables.contains(REVERSALS, reversal.trace):
                raise StoreError(f"{self.path}: a reversal of trace {reversal.trace:06d} is already armed")
            self.tables.put(REVERSALS, reversal.trace, document)
        return reversal_id(reversal.trace)

    def _signed_reversal(self, reversal: ArmedReversal) -> dict[str, Any]:
        document = reversal_document(reversal)
        problem = _trace_problem(reversal.fields, reversal.trace)
        if problem is not None:
            raise StoreError(f"reversal of trace {reversal.trace:06d}: {problem}")
        return self._signer.sign_record(document)

    def set_aside_reversal(self, trace: int, reason: str) -> None:
        """Take an armed reversal out of the sending path, as found, with why (never sent, never deleted)."""
        with self.tables.transaction():
            document = self.tables.get(REVERSALS, trace)
            if document is None:
                raise StoreError(f"no reversal of trace {trace:06d} is armed in {self.path}")
            now = self._clock().isoformat()
            entry = {"trace": trace, "found": document, "reason": reason, "set_aside_at": now}
            self.tables.put(SET_ASIDE, self.tables.next_key(SET_ASIDE), entry)
            self.tables.remove(REVERSALS, trace)
        log.warning("outbox %s: reversal of trace %06d set aside (%s)", self.path.name, trace, reason)

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
            self.tables.put(REVERSALS, trace, self._signed_reversal(changed))
        return changed

    def _armed(self, trace: int) -> ArmedReversal:
        reversal = self.reversal(trace)
        if reversal is None:
            raise StoreError(f"no reversal of trace {trace:06d} is armed in {self.path}")
        return reversal

    def _reversal_from(self, trace: int, document: Mapping[str, Any]) -> ArmedReversal:
        where = f"{self.path}: reversal of trace {trace:06d}"
        if not isinstance(document.get(SIGNATURE_FIELD), str):
            raise StoreError(f"{where} carries no signature (not armed by this terminal); it is not sent")
        try:
            verify_record(document, self._public_key)
        except TamperedRecordError:
            raise StoreError(
                f"{where} fails its signature check (edited, flagged by hand, or not armed by this "
                "terminal); it is not sent"
            ) from None
        reversal = reversal_from_document(document, where)
        if reversal.trace != trace:
            raise StoreError(f"{where} is filed under another trace")
        problem = _trace_problem(reversal.fields, trace)
        if problem is not None:
            raise StoreError(f"{where}: {problem}")
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
            if table == OUTBOX:
                document = self.tables.get(OUTBOX, key)
                assert document is not None
                record = document.get("record")
                if isinstance(record, dict) and "prev" in record:
                    self._chain_done(key, chain_hash(canonical_json(record)))
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
                self.tables.put(REVERSALS, key, self._signed_reversal(changed))
            else:
                document = self.tables.get(OUTBOX, key)
                assert document is not None
                try:
                    before = _delivery_of(document)
                except _Malformed as exc:
                    raise StoreError(f"record {item_id} in {self.path} is malformed: {exc}") from None
                state = self._next_state(before, last_error)
                self.tables.put(OUTBOX, key, self._delivery_document(document["record"], state))
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

    # ----- the chain ----------------------------------------------------------------------------------

    def _chain_meta(self) -> tuple[dict[str, Any], tuple[int, str], list[tuple[int, int, str]]] | None:
        """meta, the base and the done runs; None for a file with no chain yet. StoreError if malformed."""
        meta = self.tables.get(META, META_KEY) or {}
        if "chain_base" not in meta:
            return None
        base, runs = meta.get("chain_base"), meta.get("chain_done")
        try:
            assert isinstance(base, list) and isinstance(runs, list)
            number, hash_ = base
            assert isinstance(number, int) and isinstance(hash_, str)
            done = [(int(lo), int(hi), str(h)) for lo, hi, h in runs]
        except (AssertionError, TypeError, ValueError):
            raise StoreError(f"{self.path}: the outbox chain's bookkeeping (meta) is malformed") from None
        return meta, (number, hash_), done

    def _chain_done(self, sequence: int, hash_: str) -> None:
        """Count record `sequence` as acknowledged or set aside (it leaves the outbox in this write)."""
        chain = self._chain_meta()
        if chain is None:
            return
        meta, (base, base_hash), runs = chain
        if sequence <= base or any(lo <= sequence <= hi for lo, hi, _ in runs):
            return
        runs.append((sequence, sequence, hash_))
        runs.sort()
        merged: list[tuple[int, int, str]] = []
        for lo, hi, h in runs:
            if merged and merged[-1][1] + 1 == lo:
                merged[-1] = (merged[-1][0], hi, h)
            else:
                merged.append((lo, hi, h))
        while merged and merged[0][0] == base + 1:
            _, base, base_hash = merged.pop(0)
        self.tables.put(META, META_KEY, {**meta, "chain_base": [base, base_hash],
                                         "chain_done": [list(run) for run in merged]})  # fmt: skip

    def check_chain(self) -> None:
        """StoreError naming the file and the number when a record is missing, replayed or out of place.

        Walks the records as they are: run it after the failing ones are set aside (`pending` does).
        """
        with self.tables.transaction():
            chain = self._chain_meta()
            if chain is None:
                return
            meta, (base, base_hash), runs = chain
            next_sequence = meta.get("next_sequence")
            if not isinstance(next_sequence, int) or isinstance(next_sequence, bool) or next_sequence <= base:
                raise StoreError(f"{self.path}: the outbox's next sequence is not past its chain base")
            live: dict[int, dict[str, Any]] = {}
            for doc_id, document in self.tables.all(OUTBOX):
                record = document.get("record")
                if isinstance(record, dict) and "prev" in record:  # records from before the chain stay out
                    live[doc_id] = record
            spans = sorted([(s, s, "live") for s in live] + [(lo, hi, "done") for lo, hi, _ in runs])
            expected = base + 1
            for lo, hi, what in spans:
                if lo < expected:
                    raise StoreError(
                        f"{self.path}: outbox record {lo} was acknowledged or set aside already: replayed"
                        if what == "live" else f"{self.path}: the outbox chain's bookkeeping overlaps at {lo}"
                    )  # fmt: skip
                if lo > expected:
                    raise StoreError(
                        f"{self.path}: outbox record {expected} is missing (neither acknowledged nor set "
                        "aside): cut out of the file"
                    )
                expected = hi + 1
            if expected > next_sequence:
                raise StoreError(f"{self.path}: outbox record {expected - 1} is past the last number given")
            if expected < next_sequence:
                raise StoreError(f"{self.path}: outbox record {expected} is missing (neither acknowledged "
                                 "nor set aside): cut out of the file")  # fmt: skip
            hashes = {hi: h for _, hi, h in runs} | {base: base_hash}
            hashes |= {s: chain_hash(canonical_json(record)) for s, record in live.items()}
            for sequence in sorted(live):
                before = hashes.get(sequence - 1, "")
                if before and live[sequence].get("prev") != before:
                    raise StoreError(
                        f"{self.path}: outbox record {sequence} does not follow record {sequence - 1} "
                        "(replayed, moved, or from another chain)"
                    )
            head, last = meta.get("chain_head"), hashes.get(next_sequence - 1, "")
            if last and head != last:
                raise StoreError(f"{self.path}: the outbox chain head is not its last record")

    def flagged(self) -> tuple[list[ArmedReversal], list[OutboxRecord]]:
        """What used up its tries (reversals, records): kept for the technician and the slip."""
        with self.tables.transaction():
            return [r for r in self.armed() if r.flagged], self.undeliverable()
