"""The journal's documents at rest: JournalEntry, CashRefund and ArmedReversal to and from JSON objects.

Writing checks what goes to disk: money is int minor units, times are
timezone-aware, a PAN only masked (first 6 / last 4 around stars) or sealed,
and no value anywhere looks like a clear PAN or is named like a PIN or track
data (`firmware.store.sensitive.check_storable`: SensitiveDataError, naming
the field, never the value).

A sealed PAN (`pan_sealed`) is ciphertext as lower-case hex of at least 28
bytes (nonce and tag alone are that long), so it can never be a card number
itself; it is the one value exempt from the digit-run check, which random
hex of that length fails now and then (a run of 13 to 19 decimal digits
that happens to pass Luhn). A reversal carries its PAN only there: fields
2, 35, 36, 45, 52 and 53 (PAN, track data, PIN block, security data) are
refused in its message fields.

Reading validates every field it uses: a document that is not one the book
wrote (a field missing or of the wrong kind, an unknown code, a naive time, a
negative amount) raises StoreError naming the file and the entry
(`where`), and nothing is changed on disk. Fields a later firmware may add
are ignored, so a rollback of the firmware still reads its journal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, TypeVar

from firmware.errors import StoreError
from firmware.store.sensitive import check_storable
from firmware.txn.model import (
    ArmedReversal,
    CashRefund,
    Evidence,
    JournalEntry,
    ReversalReason,
    TxnStatus,
    TxnType,
)

__all__ = [
    "MASKED_PAN",
    "MAX_TRACE",
    "cash_refund_document",
    "cash_refund_from_document",
    "check_sealed",
    "entry_document",
    "entry_from_document",
    "last4",
    "reversal_document",
    "reversal_from_document",
]

MAX_TRACE: Final = 999_999
MASKED_PAN: Final = re.compile(r"[0-9]{0,6}\*{2,13}[0-9]{4}")
SEALED_PAN: Final = re.compile(r"(?:[0-9a-f]{2}){28,512}")
CARD_FIELDS: Final = frozenset({"2", "35", "36", "45", "52", "53"})
_MTI: Final = re.compile(r"0[0-9]{3}")
_E = TypeVar("_E", bound=StrEnum)


class _Bad(Exception):
    """A field that is not what the book writes (internal: turned into StoreError with its place)."""


def last4(masked_pan: str | None) -> str | None:
    """The last four digits of a masked PAN (what a merchant searches by)."""
    return masked_pan[-4:] if masked_pan else None


# ----- field checks ---------------------------------------------------------------------------------------


def _int(doc: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{name} is not a whole number")
    if value < minimum or (maximum is not None and value > maximum):
        raise _Bad(f"{name} {value} is outside {minimum}..{maximum if maximum is not None else ''}")
    return value


def _opt_int(
    doc: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    return None if doc.get(name) is None else _int(doc, name, minimum=minimum, maximum=maximum)


def _str(doc: Mapping[str, Any], name: str, *, empty: bool = True) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or (not empty and not value):
        raise _Bad(f"{name} is not {'text' if empty else 'non-empty text'}")
    return value


def _opt_str(doc: Mapping[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _str(doc, name)


def _bool(doc: Mapping[str, Any], name: str) -> bool:
    value = doc.get(name, False)
    if not isinstance(value, bool):
        raise _Bad(f"{name} is not true or false")
    return value


def _enum(doc: Mapping[str, Any], name: str, kind: type[_E]) -> _E:
    value = doc.get(name)
    if not isinstance(value, str):
        raise _Bad(f"{name} is not a {kind.__name__} code")
    try:
        return kind(value)
    except ValueError:
        raise _Bad(f"{name} is not a {kind.__name__} code") from None


def _parse_time(text: object, name: str) -> datetime:
    if not isinstance(text, str):
        raise _Bad(f"{name} is not a time")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{name} is not an ISO 8601 time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Bad(f"{name} has no time zone")
    return value


def _time_text(value: datetime, name: str) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime")
    return value.isoformat()


def _amount_check(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StoreError(f"{name} must be a whole non-negative number of minor units, got {value!r}")


def check_sealed(value: object, name: str) -> None:
    """StoreError unless `value` is None or a sealed PAN's shape (lower-case hex of 28 bytes or more)."""
    if value is not None and (not isinstance(value, str) or not SEALED_PAN.fullmatch(value)):
        raise StoreError(
            f"{name} must be the sealed PAN as lower-case hex of 28 bytes or more, never a card number"
        )


def _storable_except_sealed(document: dict[str, Any], name: str) -> None:
    """check_storable on everything but the (already shape-checked) sealed PAN."""
    check_storable({key: value for key, value in document.items() if key != "pan_sealed"}, name)


def _where(where: str, problem: _Bad) -> StoreError:
    return StoreError(f"{where} is malformed: {problem}; nothing was changed")


# ----- evidence -------------------------------------------------------------------------------------------


def _evidence_document(evidence: Evidence) -> dict[str, Any]:
    return {
        "order": evidence.order,
        "original_time": None
        if evidence.original_time is None
        else _time_text(evidence.original_time, "evidence.original_time"),
        "name": evidence.name,
        "contact": evidence.contact,
        "reason": evidence.reason,
    }


def _evidence_from(doc: object) -> Evidence:
    if not isinstance(doc, dict):
        raise _Bad("evidence is not an object")
    original = doc.get("original_time")
    return Evidence(
        order=_str(doc, "order"),
        original_time=None if original is None else _parse_time(original, "evidence.original_time"),
        name=_str(doc, "name"),
        contact=_str(doc, "contact"),
        reason=_str(doc, "reason"),
    )


# ----- journal entries ------------------------------------------------------------------------------------


def entry_document(entry: JournalEntry) -> dict[str, Any]:
    """The stored form of an entry (StoreError / SensitiveDataError for what may not be stored)."""
    if not isinstance(entry, JournalEntry):
        raise StoreError(f"a journal entry is a JournalEntry, not a {type(entry).__name__}")
    if not 1 <= entry.trace <= MAX_TRACE:
        raise StoreError(f"trace {entry.trace} is outside 1..{MAX_TRACE}")
    _amount_check(entry.amount, "amount")
    if entry.amount_before is not None:
        _amount_check(entry.amount_before, "amount_before")
    if entry.masked_pan is not None and not MASKED_PAN.fullmatch(entry.masked_pan):
        raise StoreError("masked_pan must show at most the first 6 and the last 4 digits around stars")
    if (entry.original_batch is None) != (entry.original_trace is None):
        raise StoreError(f"entry {entry.trace}: original_batch and original_trace go together")
    document: dict[str, Any] = {
        "trace": entry.trace,
        "type": TxnType(entry.type).value,
        "amount": entry.amount,
        "status": TxnStatus(entry.status).value,
        "order": entry.order,
        "batch": entry.batch,
        "created": _time_text(entry.created, "created"),
        "rrn": entry.rrn,
        "auth_code": entry.auth_code,
        "response_code": entry.response_code,
        "masked_pan": entry.masked_pan,
        "pan_sealed": entry.pan_sealed,
        "original_batch": entry.original_batch,
        "original_trace": entry.original_trace,
        "amount_before": entry.amount_before,
        "evidence": None if entry.evidence is None else _evidence_document(entry.evidence),
        "supervisor": entry.supervisor,
        "status_reason": entry.status_reason,
        "history": list(entry.history),
        "host_date": entry.host_date,
    }
    check_sealed(entry.pan_sealed, "pan_sealed")
    _storable_except_sealed(document, "entry")
    return document


def _host_date(doc: dict[str, Any]) -> str | None:
    value = doc.get("host_date")
    if value is not None and not (
        isinstance(value, str) and len(value) == 4 and value.isascii() and value.isdigit()
    ):
        raise _Bad("host_date is not MMDD")
    return value


def entry_from_document(doc: object, where: str) -> JournalEntry:
    """The entry a stored document holds (StoreError naming `where` if it is not one the book wrote)."""
    try:
        if not isinstance(doc, dict):
            raise _Bad("it is not an object")
        history = doc.get("history", [])
        if not isinstance(history, list) or not all(isinstance(line, str) for line in history):
            raise _Bad("history is not a list of lines")
        masked = _opt_str(doc, "masked_pan")
        if masked is not None and not MASKED_PAN.fullmatch(masked):
            raise _Bad("masked_pan is not a masked card number")
        sealed = _opt_str(doc, "pan_sealed")
        if sealed is not None and not SEALED_PAN.fullmatch(sealed):
            raise _Bad("pan_sealed is not a sealed card number")
        original_batch = _opt_int(doc, "original_batch", maximum=MAX_TRACE)
        original_trace = _opt_int(doc, "original_trace", minimum=1, maximum=MAX_TRACE)
        if (original_batch is None) != (original_trace is None):
            raise _Bad("original_batch and original_trace do not go together")
        evidence = doc.get("evidence")
        return JournalEntry(
            trace=_int(doc, "trace", minimum=1, maximum=MAX_TRACE),
            type=_enum(doc, "type", TxnType),
            amount=_int(doc, "amount"),
            status=_enum(doc, "status", TxnStatus),
            order=_str(doc, "order"),
            batch=_int(doc, "batch", maximum=MAX_TRACE),
            created=_parse_time(doc.get("created"), "created"),
            rrn=_opt_str(doc, "rrn"),
            auth_code=_opt_str(doc, "auth_code"),
            response_code=_opt_str(doc, "response_code"),
            masked_pan=masked,
            pan_sealed=sealed,
            original_batch=original_batch,
            original_trace=original_trace,
            amount_before=_opt_int(doc, "amount_before"),
            evidence=None if evidence is None else _evidence_from(evidence),
            supervisor=_bool(doc, "supervisor"),
            status_reason=_str(doc, "status_reason"),
            history=tuple(history),
            host_date=_host_date(doc),
        )
    except _Bad as problem:
        raise _where(where, problem) from None


# ----- cash refunds ---------------------------------------------------------------------------------------


def cash_refund_document(refund: CashRefund) -> dict[str, Any]:
    if not isinstance(refund, CashRefund):
        raise StoreError(f"a cash refund is a CashRefund, not a {type(refund).__name__}")
    _amount_check(refund.amount, "amount")
    if not refund.reference:
        raise StoreError("a cash refund needs a reference")
    document = {
        "reference": refund.reference,
        "amount": refund.amount,
        "order": refund.order,
        "original_batch": refund.original_batch,
        "original_trace": refund.original_trace,
        "created": _time_text(refund.created, "created"),
        "evidence": _evidence_document(refund.evidence),
        "supervisor": refund.supervisor,
    }
    check_storable(document, "cash_refund")
    return document


def cash_refund_from_document(doc: object, where: str) -> CashRefund:
    try:
        if not isinstance(doc, dict):
            raise _Bad("it is not an object")
        return CashRefund(
            reference=_str(doc, "reference", empty=False),
            amount=_int(doc, "amount"),
            order=_str(doc, "order"),
            original_batch=_int(doc, "original_batch", maximum=MAX_TRACE),
            original_trace=_int(doc, "original_trace", minimum=1, maximum=MAX_TRACE),
            created=_parse_time(doc.get("created"), "created"),
            evidence=_evidence_from(doc.get("evidence")),
            supervisor=_bool(doc, "supervisor"),
        )
    except _Bad as problem:
        raise _where(where, problem) from None


# ----- armed reversals ------------------------------------------------------------------------------------


def reversal_document(reversal: ArmedReversal) -> dict[str, Any]:
    if not isinstance(reversal, ArmedReversal):
        raise StoreError(f"a reversal is an ArmedReversal, not a {type(reversal).__name__}")
    if not 1 <= reversal.trace <= MAX_TRACE:
        raise StoreError(f"trace {reversal.trace} is outside 1..{MAX_TRACE}")
    if not isinstance(reversal.original_mti, str) or not _MTI.fullmatch(reversal.original_mti):
        raise StoreError(f"original_mti {reversal.original_mti!r} is not a message type")
    _amount_check(reversal.amount, "amount")
    if not isinstance(reversal.fields, Mapping):
        raise StoreError("a reversal's fields must be a mapping of field number to value")
    card_fields = sorted(CARD_FIELDS & set(reversal.fields))
    if card_fields:
        raise StoreError(f"reversal of trace {reversal.trace:06d}: fields {', '.join(card_fields)} are never "
                         "stored (the PAN goes sealed in pan_sealed)")  # fmt: skip
    check_sealed(reversal.pan_sealed, "pan_sealed")
    document = {
        "trace": reversal.trace,
        "original_mti": reversal.original_mti,
        "amount": reversal.amount,
        "fields": dict(reversal.fields),
        "reason": ReversalReason(reversal.reason).value,
        "armed_at": _time_text(reversal.armed_at, "armed_at"),
        "attempts": reversal.attempts,
        "last_error": reversal.last_error,
        "flagged": reversal.flagged,
        "pan_sealed": reversal.pan_sealed,
    }
    _storable_except_sealed(document, "reversal")
    return document


def reversal_from_document(doc: object, where: str) -> ArmedReversal:
    try:
        if not isinstance(doc, dict):
            raise _Bad("it is not an object")
        mti = _str(doc, "original_mti")
        if not _MTI.fullmatch(mti):
            raise _Bad("original_mti is not a message type")
        fields = doc.get("fields")
        if not isinstance(fields, dict):
            raise _Bad("fields is not an object")
        if CARD_FIELDS & set(fields):
            raise _Bad("fields hold card data fields")
        sealed = _opt_str(doc, "pan_sealed")
        if sealed is not None and not SEALED_PAN.fullmatch(sealed):
            raise _Bad("pan_sealed is not a sealed card number")
        return ArmedReversal(
            trace=_int(doc, "trace", minimum=1, maximum=MAX_TRACE),
            original_mti=mti,
            amount=_int(doc, "amount"),
            fields=fields,
            reason=_enum(doc, "reason", ReversalReason),
            armed_at=_parse_time(doc.get("armed_at"), "armed_at"),
            attempts=_int(doc, "attempts"),
            last_error=_opt_str(doc, "last_error"),
            flagged=_bool(doc, "flagged"),
            pan_sealed=sealed,
        )
    except _Bad as problem:
        raise _where(where, problem) from None
