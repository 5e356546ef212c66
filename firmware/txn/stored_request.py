"""A request kept for later (to reverse it, or send it again) as structured data, never a packed message.

A reversal or an advice may wait for days: what waits is this record, and the
ISO 8583 message is built from it at send time, with the PAN unsealed from
the journal's sealed copy into memory only. The record holds numbers, short
codes and the chip data (field 55) in base64: no run of digits that could be
taken for a card number, no track data, no PIN block.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from firmware.errors import StoreError
from firmware.host.codes import TransactionCode
from firmware.host.financial import CardData, Original, authorisation, completion, refund, tip_adjust, void
from firmware.host.messages import TerminalIdentity
from firmware.host.spec import IsoMessage

__all__ = ["RequestKind", "StoredRequest"]


class RequestKind(StrEnum):
    SALE = "sale"
    PREAUTH = "preauth"
    VOID = "void"
    COMPLETION_VOID = "completion_void"
    COMPLETION = "completion"
    REFUND = "refund"
    TIP_ADJUST = "tip_adjust"


@dataclass(frozen=True)
class StoredRequest:
    kind: RequestKind
    trace: int
    batch: int
    amount: int
    original: Original | None = None
    icc: bytes = b""
    expiry: str | None = None
    pan_sequence_number: int | None = None
    entry_mode: str | None = None

    def build(self, identity: TerminalIdentity, pan: str) -> IsoMessage:
        """The request as it goes on the wire (the PAN in field 2, in memory only)."""
        kind, original = self.kind, self.original
        if kind in (RequestKind.SALE, RequestKind.PREAUTH):
            code = TransactionCode.SALE if kind is RequestKind.SALE else TransactionCode.PREAUTH
            card = CardData(pan, self.icc, self.expiry, self.pan_sequence_number)
            message = authorisation(
                identity, type_code=code, stan=self.trace, batch=self.batch, amount=self.amount, card=card
            )
            if self.entry_mode is not None:
                message["22"] = self.entry_mode
            return message
        if original is None:
            raise StoreError(f"stored {kind.value} {self.trace:06d} names no original")
        if kind in (RequestKind.VOID, RequestKind.COMPLETION_VOID):
            code = TransactionCode.VOID if kind is RequestKind.VOID else TransactionCode.COMPLETION_VOID
            return void(
                identity,
                type_code=code,
                stan=self.trace,
                batch=self.batch,
                amount=self.amount,
                pan=pan,
                original=original,
            )
        if kind is RequestKind.COMPLETION:
            return completion(
                identity, stan=self.trace, batch=self.batch, amount=self.amount, pan=pan, original=original
            )
        if kind is RequestKind.REFUND:
            return refund(
                identity, stan=self.trace, batch=self.batch, amount=self.amount, pan=pan, original=original
            )
        return tip_adjust(
            identity, stan=self.trace, batch=self.batch, new_amount=self.amount, pan=pan, original=original
        )

    def to_json(self) -> dict[str, Any]:
        original = self.original
        return {
            "kind": self.kind.value,
            "trace": self.trace,
            "batch": self.batch,
            "amount": self.amount,
            "original": None
            if original is None
            else {
                "batch": original.batch,
                "trace": original.trace,
                "date": original.date,
                "rrn": original.rrn,
                "auth_code": original.auth_code,
            },
            "icc": base64.b64encode(self.icc).decode("ascii"),
            "expiry": self.expiry,
            "pan_sequence_number": self.pan_sequence_number,
            "entry_mode": self.entry_mode,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> StoredRequest:
        """The record back (StoreError naming `where` if it is not one this module wrote)."""
        try:
            original_data = data["original"]
            original = None
            if original_data is not None:
                original = Original(
                    batch=_int(original_data["batch"]),
                    trace=_int(original_data["trace"]),
                    date=_opt_str(original_data["date"]) or "",
                    rrn=_opt_str(original_data["rrn"]),
                    auth_code=_opt_str(original_data["auth_code"]),
                )
            psn = data["pan_sequence_number"]
            return cls(
                kind=RequestKind(data["kind"]),
                trace=_int(data["trace"]),
                batch=_int(data["batch"]),
                amount=_int(data["amount"]),
                original=original,
                icc=base64.b64decode(str(data["icc"]), validate=True),
                expiry=_opt_str(data["expiry"]),
                pan_sequence_number=None if psn is None else _int(psn),
                entry_mode=_opt_str(data["entry_mode"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise StoreError(f"{where}: the stored request is malformed ({type(exc).__name__})") from None


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a whole number")
    return value


def _opt_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("not text")
    return value
