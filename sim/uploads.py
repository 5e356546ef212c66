"""Record uploads (0320) at the simulated acquirer: signed records, customer notices, batch uploads.

Field 62 of an upload may carry a signed record: ``b"SR"`` + record length
(2 bytes, big-endian) + record + Ed25519 signature (64 bytes) over the
record. `signature_ok` checks it against the device key registered for the
terminal: a field 62 that starts with the tag but is malformed or does not
verify, one from a terminal without a registered key, or a 0320 without one
from a terminal with a key, is refused (the host answers ``63``).

What a 0320 (already MAC-checked, its record verified) does, by 60.3
(`RecordUploads.receive` gives the response code):

- ``801`` customer notice: the record (JSON, an object with a string
  ``"id"`` and ``"kind": "notice"``) is kept in `RecordUploads.notices` with
  the terminal id, 60.2 and the time received; a record whose id was kept
  already (same terminal) is not kept twice. ``00``.
- ``203`` batch-upload record: likewise (``"kind": "batch"``) into
  `RecordUploads.batch_uploads`, per terminal and batch (60.2). ``00``.
- ``207`` batch upload end: field 48 is the terminal's count of records
  uploaded for the batch (n4); a count that differs from the host's is
  logged, not refused. The batch (60.2) is closed when it is the terminal's
  open one (as a balanced settlement closes it), ``00``; an earlier batch
  is closed already, ``00``; a batch the host never opened, ``12``.
- ``201``, ``202``, ``205`` (the other UnionPay batch-upload codes):
  acknowledged, ``00``, nothing kept.
- anything else, a record that is no JSON object with a string id, or of
  the other kind than its 60.3 says, and a ``801`` / ``203`` without a
  record: ``30`` (format error).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sim.hostcodec import HostMessage

__all__ = [
    "SIGNED_RECORD_TAG",
    "NetworkCode",
    "RecordUploads",
    "UploadOutcome",
    "UploadedRecord",
    "signature_ok",
    "signed_record_field",
    "split_signed_record",
]

log = logging.getLogger("sim.uploads")

SIGNED_RECORD_TAG: Final = b"SR"
_SIGNATURE_LEN: Final = 64
_FORMAT_ERROR: Final = "30"


class NetworkCode(StrEnum):
    """Field 60.3 of the reconciliation messages this host reads."""

    SETTLEMENT = "201"  # of a 0500; of a 0320, a UnionPay batch-upload code
    BATCH_UPLOAD_OFFLINE = "202"
    BATCH_UPLOAD = "203"
    BATCH_UPLOAD_IC = "205"
    BATCH_UPLOAD_END = "207"
    NOTICE_UPLOAD = "801"


_KIND_OF: Final[dict[str, str]] = {NetworkCode.NOTICE_UPLOAD: "notice", NetworkCode.BATCH_UPLOAD: "batch"}
_ACKNOWLEDGED: Final = (NetworkCode.SETTLEMENT, NetworkCode.BATCH_UPLOAD_OFFLINE, NetworkCode.BATCH_UPLOAD_IC)


def signed_record_field(record: bytes, signature: bytes) -> bytes:
    """Field 62 carrying a signed record (the layout this host expects)."""
    return SIGNED_RECORD_TAG + len(record).to_bytes(2, "big") + record + signature


def split_signed_record(value: bytes) -> tuple[bytes, bytes] | None:
    """(record, signature) of a field 62, or None when it is not one."""
    if not value.startswith(SIGNED_RECORD_TAG) or len(value) < 4 + _SIGNATURE_LEN:
        return None
    length = int.from_bytes(value[2:4], "big")
    if len(value) != 4 + length + _SIGNATURE_LEN:
        return None
    return value[4 : 4 + length], value[4 + length :]


def signature_ok(request: HostMessage, device_public_key: bytes | None) -> bool:
    """A field 62 that starts like a signed record must be one and verify under the registered key;
    an upload (0320) from a terminal with a registered key must carry one."""
    value = request.raw(62) if 62 in request.fields else b""
    if not value.startswith(SIGNED_RECORD_TAG):
        return request.mti != "0320" or device_public_key is None
    signed = split_signed_record(value)
    if signed is None or device_public_key is None:
        return False
    record, signature = signed
    try:
        Ed25519PublicKey.from_public_bytes(device_public_key).verify(signature, record)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class UploadedRecord:
    """A record the host kept: the parsed record JSON, who sent it, for which batch, when."""

    terminal_id: str
    batch: str
    received: datetime
    record: dict[str, Any]

    @property
    def record_id(self) -> str:
        return str(self.record["id"])

    def view(self) -> dict[str, Any]:
        return {"terminal": self.terminal_id, "batch": int(self.batch),
                "received": self.received.isoformat(), "record": self.record}  # fmt: skip


@dataclass(frozen=True)
class UploadOutcome:
    """The response code of a 0320, and the batch it closes (batch upload end), if any."""

    code: str
    close_batch: str | None = None


def _parse_record(request: HostMessage) -> dict[str, Any] | None:
    signed = split_signed_record(request.raw(62)) if 62 in request.fields else None
    if signed is None:
        return None
    try:
        record = json.loads(signed[0])
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    return record


class RecordUploads:
    """The notices and batch-upload records the host received, and the 0320 rules."""

    def __init__(self) -> None:
        self.notices: list[UploadedRecord] = []
        self.batch_uploads: list[UploadedRecord] = []

    def count(self, terminal_id: str, batch: str) -> int:
        """Batch-upload records kept for one terminal's batch."""
        return sum(1 for kept in self.batch_uploads if (kept.terminal_id, kept.batch) == (terminal_id, batch))

    def receive(
        self, terminal_id: str, open_batch: str, request: HostMessage, now: datetime
    ) -> UploadOutcome:
        """What one verified 0320 comes to (see the module docstring)."""
        field60 = request.text(60)
        batch, code = field60[2:8], field60[8:11]
        if len(batch) != 6:
            return UploadOutcome(_FORMAT_ERROR)
        if code == NetworkCode.BATCH_UPLOAD_END:
            return self._end(terminal_id, open_batch, batch, request)
        if code in _ACKNOWLEDGED:
            return UploadOutcome("00")
        kind = _KIND_OF.get(code)
        record = _parse_record(request)
        if kind is None or record is None or record.get("kind") != kind:
            log.info("%s 0320 %s: not a %s record", terminal_id, code, kind or "known upload")
            return UploadOutcome(_FORMAT_ERROR)
        kept = self.notices if code == NetworkCode.NOTICE_UPLOAD else self.batch_uploads
        uploaded = UploadedRecord(terminal_id, batch, now, record)
        if any((k.terminal_id, k.record_id) == (terminal_id, uploaded.record_id) for k in kept):
            log.info("%s %s record %s received again", terminal_id, kind, uploaded.record_id)
        else:
            kept.append(uploaded)
        return UploadOutcome("00")

    def _end(self, terminal_id: str, open_batch: str, batch: str, request: HostMessage) -> UploadOutcome:
        if int(batch) > int(open_batch):
            return UploadOutcome("12")
        theirs = request.text(48)
        ours = self.count(terminal_id, batch)
        if not theirs.isdigit() or int(theirs) != ours:
            log.warning("%s batch %s upload end: terminal counts %r records, host %d",
                        terminal_id, batch, theirs, ours)  # fmt: skip
        if batch != open_batch:
            log.info("%s batch %s upload end: batch closed already", terminal_id, batch)
            return UploadOutcome("00")
        return UploadOutcome("00", close_batch=batch)
