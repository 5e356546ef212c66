"""The financial and reconciliation requests, as the acquirer expects them, and their answers.

| request | MTI | 60.1 | processing code (3) | what ties it to the original |
|---|---|---|---|---|
| sale | 0200 | 22 | 000000 | |
| pre-authorisation | 0100 | 10 | 030000 | |
| pre-authorisation void | 0100 | 11 | 200000 | 61 batch + trace, 37, 38 |
| completion | 0200 | 20 | 000000 | 61 batch + trace + date MMDD, 38 |
| void (of a sale / completion) | 0200 | 23 / 21 | 200000 | 61 batch + trace, 37, 38 |
| refund to the card | 0220 | 25 | 200000 | 37 (RRN) and 61 batch + trace + date MMDD |
| tip adjust | 0220 | 32 | 000000 | 37, 38 and 61 batch + trace + date MMDD; 4 the new amount |
| reversal | 0400 | as the original | as the original | 11 its trace, 39 why, 90 original data elements |
| settlement | 0500 | 00 | | 48 the terminal's totals, 60.3 201 |
| record upload | 0320 | 00 | | 62 a signed record (batch upload 60.3 203, notice 60.3 801) |
| batch upload end | 0320 | 00 | | 48 the count, 60.3 207 |

A repeat (a 0400 or 0220 sent again after no valid answer) goes as 0401 / 0221
with the same content, so the host can answer it as the same request.

Card data (PAN, track 2, PIN block) comes in a `CardData` that never shows
them in `repr`; the packed message exists only in memory. Answers are read
into a typed `HostAnswer`; a field that cannot be what it says is a
MessageFieldError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from firmware.errors import MessageFieldError
from firmware.host.codes import TransactionCode
from firmware.host.messages import (
    TerminalIdentity,
    field60,
    field61,
    field90,
    format_amount,
    format_stan,
    signed_record_field,
)
from firmware.host.spec import IsoMessage

__all__ = [
    "CURRENCY_CNY",
    "CardData",
    "HostAnswer",
    "NetworkCode",
    "Original",
    "SettlementTotals",
    "authorisation",
    "batch_upload_end",
    "completion",
    "read_answer",
    "record_upload",
    "refund",
    "repeat",
    "reversal",
    "settlement",
    "tip_adjust",
    "void",
]

CURRENCY_CNY: Final = "156"


class NetworkCode(StrEnum):
    """Field 60.3 of reconciliation messages."""

    NONE = "000"
    SETTLEMENT = "201"
    BATCH_UPLOAD = "203"
    BATCH_UPLOAD_END = "207"
    NOTICE_UPLOAD = "801"


_VOID_MTI: Final = {
    TransactionCode.VOID: "0200",
    TransactionCode.COMPLETION_VOID: "0200",
    TransactionCode.PREAUTH_VOID: "0100",
}
_REPEAT: Final = {"0400": "0401", "0220": "0221"}
_ENTRY_CHIP_PIN: Final = "051"
_ENTRY_CHIP_NO_PIN: Final = "052"
_ENTRY_KEYED: Final = "012"
_CONDITION_NORMAL: Final = "00"
_CONDITION_PREAUTH: Final = "06"


@dataclass(frozen=True)
class CardData:
    """What the host needs of the card for an authorisation: in memory only."""

    pan: str = field(repr=False)
    field55: bytes = b""
    expiry: str | None = None  # YYMM
    pan_sequence_number: int | None = None
    track2: bytes | None = field(default=None, repr=False)
    pin_block: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Original:
    """The request a void, refund, adjust or completion acts on, as the journal knows it."""

    batch: int
    trace: int
    date: str  # MMDD of the original
    rrn: str | None = None
    auth_code: str | None = None


@dataclass(frozen=True)
class SettlementTotals:
    """Field 48 of a 0500: debits (sales, completions, adjusted amounts) and credits (refunds)."""

    debit_amount: int
    debit_count: int
    credit_amount: int
    credit_count: int

    def field48(self) -> str:
        return (
            f"{self.debit_amount:012d}{self.debit_count:03d}{self.credit_amount:012d}{self.credit_count:03d}"
        )


@dataclass(frozen=True)
class HostAnswer:
    """The fields of an answer the business layer acts on."""

    response_code: str
    rrn: str | None
    auth_code: str | None
    field55: bytes
    settlement_date: str | None
    balanced: bool | None  # settlement only: 48's last digit, 1 balanced, 2 not
    host_date: str | None = None  # MMDD (field 13): the date the host booked the request on

    @property
    def approved(self) -> bool:
        return self.response_code == "00"


def _pan(pan: str) -> str:
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise MessageFieldError("PAN must be 12 to 19 digits", "2")
    return pan


def _common(identity: TerminalIdentity, mti: str, stan: int, amount: int) -> IsoMessage:
    return {
        **identity.fields(),
        "t": mti,
        "4": format_amount(amount),
        "11": format_stan(stan),
        "49": CURRENCY_CNY,
    }


def _card_fields(card: CardData) -> IsoMessage:
    fields: IsoMessage = {"2": _pan(card.pan)}
    if card.expiry is not None:
        fields["14"] = card.expiry
    if card.pan_sequence_number is not None:
        fields["23"] = f"{card.pan_sequence_number:03d}"
    if card.track2 is not None:
        fields["35"] = card.track2.hex().upper().rstrip("F")
    if card.pin_block is not None:
        fields["52"] = card.pin_block.hex().upper()
        fields["26"] = "12"
    if card.field55:
        fields["55"] = card.field55.hex().upper()
    fields["22"] = _ENTRY_CHIP_PIN if card.pin_block is not None else _ENTRY_CHIP_NO_PIN
    return fields


def authorisation(
    identity: TerminalIdentity,
    *,
    type_code: TransactionCode,
    stan: int,
    batch: int,
    amount: int,
    card: CardData,
) -> IsoMessage:
    """A sale (0200/22) or a pre-authorisation (0100/10) with the card's chip data."""
    if type_code is TransactionCode.SALE:
        mti, processing, condition = "0200", "000000", _CONDITION_NORMAL
    elif type_code is TransactionCode.PREAUTH:
        mti, processing, condition = "0100", "030000", _CONDITION_PREAUTH
    else:
        raise MessageFieldError(f"{type_code.name} is not an authorisation", "60")
    return {
        **_common(identity, mti, stan, amount),
        **_card_fields(card),
        "3": processing,
        "25": condition,
        "60": field60(type_code, batch),
    }


def _keyed(pan: str) -> IsoMessage:
    return {"2": _pan(pan), "22": _ENTRY_KEYED}


def completion(
    identity: TerminalIdentity, *, stan: int, batch: int, amount: int, pan: str, original: Original
) -> IsoMessage:
    """Pre-authorisation completion (0200/20) for `amount`, of the pre-authorisation `original`."""
    if original.auth_code is None:
        raise MessageFieldError("a completion needs the pre-authorisation's code", "38")
    return {
        **_common(identity, "0200", stan, amount),
        **_keyed(pan),
        "3": "000000",
        "25": _CONDITION_PREAUTH,
        "38": original.auth_code,
        "60": field60(TransactionCode.COMPLETION, batch),
        "61": field61(original.batch, original.trace, original.date),
    }


def void(
    identity: TerminalIdentity,
    *,
    type_code: TransactionCode,
    stan: int,
    batch: int,
    amount: int,
    pan: str,
    original: Original,
) -> IsoMessage:
    """Void of a sale (23), a completion (21) or a pre-authorisation (11): the full amount."""
    mti = _VOID_MTI.get(type_code)
    if mti is None:
        raise MessageFieldError(f"{type_code.name} is not a void", "60")
    message = {
        **_common(identity, mti, stan, amount),
        **_keyed(pan),
        "3": "200000",
        "25": _CONDITION_PREAUTH if type_code is TransactionCode.PREAUTH_VOID else _CONDITION_NORMAL,
        "60": field60(type_code, batch),
        "61": field61(original.batch, original.trace),
    }
    if original.rrn is not None:
        message["37"] = original.rrn
    if original.auth_code is not None:
        message["38"] = original.auth_code
    return message


def _needs_rrn(original: Original) -> str:
    if original.rrn is None:
        raise MessageFieldError("the original's retrieval reference number is needed", "37")
    return original.rrn


def refund(
    identity: TerminalIdentity, *, stan: int, batch: int, amount: int, pan: str, original: Original
) -> IsoMessage:
    """Refund to the card (0220/25): partial or full, of the sale with RRN `original.rrn`."""
    return {
        **_common(identity, "0220", stan, amount),
        **_keyed(pan),
        "3": "200000",
        "25": _CONDITION_NORMAL,
        "37": _needs_rrn(original),
        "60": field60(TransactionCode.REFUND, batch),
        "61": field61(original.batch, original.trace, original.date),
    }


def tip_adjust(
    identity: TerminalIdentity, *, stan: int, batch: int, new_amount: int, pan: str, original: Original
) -> IsoMessage:
    """Tip adjust (0220/32): the sale `original` now stands for `new_amount` (field 4)."""
    type_code = field60(TransactionCode.TIP_ADJUST, batch)
    message = {
        **_common(identity, "0220", stan, new_amount),
        **_keyed(pan),
        "3": "000000",
        "25": _CONDITION_NORMAL,
        "37": _needs_rrn(original),
        "60": type_code,
        "61": field61(original.batch, original.trace, original.date),
    }
    if original.auth_code is not None:
        message["38"] = original.auth_code
    return message


_REVERSAL_COPIES: Final = (
    "2",
    "3",
    "4",
    "14",
    "22",
    "23",
    "25",
    "38",
    "41",
    "42",
    "49",
    "55",
    "60",
    "61",
    "tpdu",
    "header",
)


def reversal(original_request: Mapping[str, str], reason: str, transmitted_at: datetime) -> IsoMessage:
    """The 0400 that undoes `original_request`: its trace, its data elements, field 39 the reason."""
    if len(reason) != 2:
        raise MessageFieldError(f"reversal reason {reason!r} is not 2 characters", "39")
    message: IsoMessage = {key: original_request[key] for key in _REVERSAL_COPIES if key in original_request}
    message["t"] = "0400"
    message["11"] = original_request["11"]
    message["39"] = reason
    message["90"] = field90(original_request["t"], original_request["11"], f"{transmitted_at:%m%d%H%M%S}")
    return message


def settlement(identity: TerminalIdentity, *, stan: int, batch: int, totals: SettlementTotals) -> IsoMessage:
    """Settlement (0500): the terminal's totals of the batch, for the host to compare with its own."""
    network = field60(TransactionCode.MANAGEMENT, batch, NetworkCode.SETTLEMENT)
    return {
        **identity.fields(),
        "t": "0500",
        "11": format_stan(stan),
        "48": totals.field48() + "0",
        "49": CURRENCY_CNY,
        "60": network,
    }


def record_upload(
    identity: TerminalIdentity,
    *,
    stan: int,
    batch: int,
    record: bytes,
    signature: bytes,
    network_code: NetworkCode,
) -> IsoMessage:
    """An upload (0320) of one signed record: a batch-upload record or a customer notice."""
    return {
        **identity.fields(),
        "t": "0320",
        "11": format_stan(stan),
        "60": field60(TransactionCode.MANAGEMENT, batch, network_code),
        "62": signed_record_field(record, signature),
    }


def batch_upload_end(
    identity: TerminalIdentity, *, stan: int, batch: int, count: int, record: bytes, signature: bytes
) -> IsoMessage:
    """The last 0320 of a batch upload: how many records went up (48), closing the batch."""
    return {
        **record_upload(
            identity,
            stan=stan,
            batch=batch,
            record=record,
            signature=signature,
            network_code=NetworkCode.BATCH_UPLOAD_END,
        ),
        "48": f"{count:04d}",
    }


def repeat(request: Mapping[str, str]) -> IsoMessage:
    """The same 0400 or 0220 sent again, marked as a repeat (0401 / 0221)."""
    mti = request["t"]
    if mti not in _REPEAT:
        raise MessageFieldError(f"a {mti} is not repeated as such", "t")
    return {**request, "t": _REPEAT[mti]}


def _text(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isprintable()


def read_answer(answer: Mapping[str, str]) -> HostAnswer:
    """The fields of a checked answer (MAC and match already verified by `messages.send`)."""
    code = answer.get("39")
    if code is None or len(code) != 2:
        raise MessageFieldError("answer without a response code", "39")
    rrn = answer.get("37")
    if rrn is not None and not _text(rrn, 12):
        raise MessageFieldError("retrieval reference number is not 12 characters", "37")
    auth_code = answer.get("38")
    if auth_code is not None and not _text(auth_code, 6):
        raise MessageFieldError("authorisation code is not 6 characters", "38")
    balanced: bool | None = None
    if answer.get("t") == "0510" and code == "00":
        flag = answer.get("48", "")[-1:]
        if flag not in ("1", "2"):
            raise MessageFieldError("settlement answer without a balance flag", "48")
        balanced = flag == "1"
    field55 = answer.get("55", "")
    try:
        icc = bytes.fromhex(field55)
    except ValueError:
        raise MessageFieldError("ICC data is not hex", "55") from None
    host_date = answer.get("13")
    if host_date is not None and (len(host_date) != 4 or not host_date.isdigit()):
        raise MessageFieldError("local transaction date is not MMDD", "13")
    return HostAnswer(code, rrn, auth_code, icc, answer.get("15"), balanced, host_date)
