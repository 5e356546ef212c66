"""The store-and-forward upload queue: signed records that wait for the host's acknowledgement.

One small TinyDB file (the queue only) over `CrashSafeStorage`, three tables:

- ``queue``: one document per record, under its sequence number:
  ``{"record": SIGNED, "attempts": n, "last_error": text|null, "undeliverable": bool}``.
  SIGNED is ``{"id", "sequence", "kind", "created", "payload", "signature"}``,
  signed at enqueue with the device's Ed25519 key (`firmware.keys.signing`:
  the signature covers the canonical JSON of everything but itself; the
  delivery fields beside it are not signed, they change with each try).
- ``set_aside``: records that failed their signature check or are malformed,
  as found, with the reason and the time; never uploaded, never deleted.
- ``meta``: the next sequence number, so an acknowledged record's number is
  never handed out again.

Each operation is one transaction of the storage: under the file's lock, and
one crash-safe write (or none) at its end. Every record is verified each time
it is read for upload; the verifying key is the registered public key, so a
record edited on disk or signed by another device never goes up.

Records carry no clear card data: `enqueue` refuses a payload with a value
that looks like a clear PAN, or a field named like a PIN or track data.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tinydb import TinyDB
from tinydb.table import Document, Table

from firmware.clocks import WallClock
from firmware.errors import ConfigError, StoreError, TamperedRecordError
from firmware.keys.signing import RecordSigner, canonical_json, verify_record
from firmware.randomness import Rng
from firmware.store.sensitive import check_storable, mask_clear_pans
from firmware.store.storage import DAMAGED_SUFFIX, CrashSafeStorage

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DeliveryState",
    "QueuedRecord",
    "SetAsideRecord",
    "UploadQueue",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS: Final = 5
_MAX_ERROR_LENGTH: Final = 200
_QUEUE, _SET_ASIDE, _META = "queue", "set_aside", "meta"
_META_DOC_ID: Final = 1
_RECORD_ID: Final = re.compile(r"(\d{10})-([0-9a-f]{32})")
_KIND: Final = re.compile(r"[a-z][a-z_-]{0,31}")
_SIGNED_FIELDS: Final = frozenset({"id", "sequence", "kind", "created", "payload", "signature"})


@dataclass(frozen=True)
class DeliveryState:
    """How the uploads of one record went so far."""

    attempts: int
    last_error: str | None
    undeliverable: bool


@dataclass(frozen=True)
class QueuedRecord:
    """A queued record whose signature verified when it was read.

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


class _Malformed(Exception):
    """A queue document that is not a record this queue wrote (internal; the caller sets it aside)."""


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
    """The signed record of a queue document, once its shape is that of one this queue wrote."""
    record = document.get("record")
    if not isinstance(record, dict):
        raise _Malformed("it holds no record")
    missing = sorted(_SIGNED_FIELDS - record.keys())
    if missing:
        raise _Malformed(f"its record lacks {', '.join(missing)}")
    record_id = _record_id_of(document)
    if record_id is None:
        raise _Malformed("its record id is not one this queue makes")
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


def _queued_record(doc_id: int, document: Mapping[str, Any], public_key: Ed25519PublicKey) -> QueuedRecord:
    """The verified record of a queue document (_Malformed or TamperedRecordError otherwise)."""
    record = _check_shape(doc_id, document)
    delivery = _delivery_of(document)
    verify_record(record, public_key)
    signed_bytes = canonical_json(record)
    body = json.loads(signed_bytes)  # a copy of exactly what was verified
    return QueuedRecord(
        id=body["id"],
        sequence=body["sequence"],
        kind=body["kind"],
        created=datetime.fromisoformat(body["created"]),
        payload=body["payload"],
        signature=bytes.fromhex(record["signature"]),
        delivery=delivery,
        signed_bytes=signed_bytes,
    )


class UploadQueue:
    """Signed records waiting for the host, in one crash-safe TinyDB file at `path`.

    `signer` signs at enqueue; `public_key` (the key registered with the host)
    verifies every record read for upload. `clock` dates records and set-aside
    entries; `rng` makes the random half of each record id.
    """

    def __init__(
        self,
        path: Path,
        signer: RecordSigner,
        public_key: Ed25519PublicKey,
        clock: WallClock,
        *,
        rng: Rng = os.urandom,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        if signer.public_key_bytes() != public_key.public_bytes(Encoding.Raw, PublicFormat.Raw):
            raise ConfigError("the record signing key is not the key records are verified with")
        self.path = Path(path)
        self._signer = signer
        self._public_key = public_key
        self._clock = clock
        self._rng = rng
        self._max_attempts = max_attempts
        self._storage = CrashSafeStorage(self.path, clock)
        self._db = TinyDB(storage=lambda: self._storage)
        self._storage.read()  # a damaged file is reported (and kept aside) at open, not at first use

    def _table(self, name: str) -> Table:
        return self._db.table(name, cache_size=0)

    def close(self) -> None:
        self._db.close()

    # ----- enqueue ------------------------------------------------------------------------------------

    def enqueue(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Sign and store a record; returns its id. Refuses clear card data (SensitiveDataError)."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise StoreError("record kind must be 1 to 32 lower-case letters, '-' or '_'")
        if not isinstance(payload, Mapping):
            raise StoreError("record payload must be a mapping")
        payload = dict(payload)
        check_storable(payload, "payload")
        with self._storage.transaction():
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
            self._table(_QUEUE).insert(Document(document, doc_id=sequence))
        return str(record["id"])

    def _take_sequence(self) -> int:
        meta = self._table(_META).get(doc_id=_META_DOC_ID)
        stored = meta.get("next_sequence") if isinstance(meta, dict) else None
        # The stored counter, but never below a number in use (a meta table lost or edited by hand).
        used: list[object] = [doc_id for doc_id, _ in self._documents(_QUEUE)]
        used += [entry.get("sequence") for _, entry in self._documents(_SET_ASIDE)]
        floor = stored if isinstance(stored, int) else 1
        sequence = max([floor, *(n + 1 for n in used if isinstance(n, int))])
        if sequence >= 10**10:
            raise StoreError(f"{self.path}: the record sequence is exhausted")
        self._table(_META).upsert(Document({"next_sequence": sequence + 1}, doc_id=_META_DOC_ID))
        return sequence

    def _raw_table(self, name: str) -> dict[str, Any]:
        tables = self._storage.read() or {}
        return tables.get(name, {})

    def _documents(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """The documents of a table by number, lowest first (a list: safe to change the table meanwhile)."""
        return sorted(((int(doc_id), document) for doc_id, document in self._raw_table(name).items()),
                      key=lambda item: item[0])  # fmt: skip

    # ----- reading for upload -------------------------------------------------------------------------

    def pending(self) -> list[QueuedRecord]:
        """Records to upload, in enqueue order, each verified; failing ones are set aside, not returned."""
        return [record for record in self._verified() if not record.delivery.undeliverable]

    def undeliverable(self) -> list[QueuedRecord]:
        """Records that used up their tries: kept, verified, flagged for the technician."""
        return [record for record in self._verified() if record.delivery.undeliverable]

    def _verified(self) -> list[QueuedRecord]:
        verified: list[QueuedRecord] = []
        with self._storage.transaction():
            for doc_id, document in self._documents(_QUEUE):
                try:
                    verified.append(_queued_record(doc_id, document, self._public_key))
                except TamperedRecordError as exc:
                    self._set_aside(doc_id, document, str(exc), "signature check failed")
                except _Malformed as exc:
                    reason = f"queue entry {doc_id} is malformed: {exc}"
                    self._set_aside(doc_id, document, reason, "malformed")
        return verified

    def _set_aside(self, doc_id: int, document: Mapping[str, Any], reason: str, kind: str) -> None:
        """Move a queue document to the set-aside table (same transaction: one write, nothing lost)."""
        now = self._clock().isoformat()
        entry = {"sequence": doc_id, "found": document, "reason": reason, "set_aside_at": now}
        self._table(_SET_ASIDE).insert(Document(entry, doc_id=self._next_doc_id(_SET_ASIDE)))
        self._table(_QUEUE).remove(doc_ids=[doc_id])
        label = _record_id_of(document) or f"entry {doc_id}"
        log.warning("upload queue %s: record %s set aside (%s)", self.path.name, label, kind)

    def _next_doc_id(self, name: str) -> int:
        return max((int(doc_id) for doc_id in self._raw_table(name)), default=0) + 1

    # ----- after an upload ----------------------------------------------------------------------------

    def acknowledge(self, record_id: str) -> None:
        """Remove a record the host acknowledged (StoreError if it is not in the queue)."""
        with self._storage.transaction():
            doc_id = self._doc_id_of(record_id)
            self._table(_QUEUE).remove(doc_ids=[doc_id])

    def mark_attempt(self, record_id: str, error: str) -> DeliveryState:
        """Count a failed upload of a record; after `max_attempts` tries it is flagged undeliverable."""
        last_error = mask_clear_pans(str(error))[:_MAX_ERROR_LENGTH]
        with self._storage.transaction():
            doc_id = self._doc_id_of(record_id)
            queue = self._table(_QUEUE)
            document = queue.get(doc_id=doc_id)
            assert isinstance(document, dict)
            try:
                before = _delivery_of(document)
            except _Malformed as exc:
                raise StoreError(f"record {record_id} in {self.path} is malformed: {exc}") from None
            delivery = DeliveryState(
                attempts=before.attempts + 1,
                last_error=last_error,
                undeliverable=before.undeliverable or before.attempts + 1 >= self._max_attempts,
            )
            queue.update(
                {"attempts": delivery.attempts, "last_error": delivery.last_error,
                 "undeliverable": delivery.undeliverable},
                doc_ids=[doc_id],
            )  # fmt: skip
        if delivery.undeliverable and not before.undeliverable:
            log.warning("upload queue %s: record %s undeliverable after %d tries, kept",
                        self.path.name, record_id, delivery.attempts)  # fmt: skip
        return delivery

    def _doc_id_of(self, record_id: str) -> int:
        match = _RECORD_ID.fullmatch(record_id) if isinstance(record_id, str) else None
        if match is None:
            raise StoreError("not an upload queue record id")
        doc_id = int(match.group(1))
        document = self._raw_table(_QUEUE).get(str(doc_id))
        if not isinstance(document, dict) or _record_id_of(document) != record_id:
            raise StoreError(f"record {record_id} is not in the upload queue {self.path}")
        return doc_id

    # ----- technician view ----------------------------------------------------------------------------

    def set_aside(self) -> list[SetAsideRecord]:
        """Records taken out of the upload path, oldest first, with why and when."""
        with self._storage.transaction():
            entries = self._documents(_SET_ASIDE)
        result = []
        for doc_id, entry in entries:
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

    def damaged_files(self) -> list[Path]:
        """Earlier queue files that could not be read, kept aside next to the queue file."""
        return sorted(self.path.parent.glob(f"{self.path.name}{DAMAGED_SUFFIX}*"))
