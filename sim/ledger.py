"""The simulated acquirer's books: approved transactions, the rules that relate them, their JSON view.

`Ledger` is the list of every approved financial request (`LedgerEntry`) of
every terminal, in the order they were approved; a declined request is not
booked. A request that acts on an earlier one (a void, refund, tip adjust or
completion) names it in `LedgerEntry.original`, and the checks below say
whether it may (`Check`: a response code and the original found):

- void (0200/23 of a sale 22 or legacy ``""``, 0200/21 of a completion 20,
  0100/11 of a pre-authorisation 10): the original by 61 (batch + trace),
  ``25`` when not found; of the type that void cancels, in the open batch,
  approved, never refunded, and not a pre-authorisation with a live
  completion, else ``12``; for the original's current amount (its adjusted
  total after a tip adjust), else ``64``.
- refund (0220/25): the sale or completion by RRN (37) and, when 61 gives
  one, its date, ``25`` otherwise; amount above zero (``13``); approved
  (``12``); all refunds of one sale at most its current amount (``64``).
- tip adjust (0220/32): the sale by 61 (batch + trace), ``25`` when not
  found or when 37, 38 or 61's date do not match it; an approved sale (22 or
  ``""``), in the open batch, never voided, reversed, refunded or adjusted
  before, else ``12``; field 4 is the new total and must be above the sale
  amount (``13``).
- keyed completion (0200/20 without field 55): field 2 and entry mode 22
  ``012`` (``30`` otherwise); the pre-authorisation by 61 (batch + trace)
  and its authorisation code in 38 (and 61's date when given), ``25``
  otherwise; approved, not voided or reversed, without a live completion
  (``12``); amount above zero (``13``) and at most the pre-authorised amount
  plus the host's tolerance (``64``).

Settlement totals (`batch_totals`): debits are the approved sales at their
current amount (the adjusted total after a tip adjust: one debit, not two)
and the approved completions; credits the approved refunds. Pre-authorisations,
voids and adjust entries are not counted.

`Ledger.view()` is the JSON the host writes (``pos-sim host --ledger FILE``)
and tests compare with the terminal's journal: one object per entry,
``{"terminal", "trace" (int), "type" (sale, preauth, completion, void,
refund, adjust), "amount" (int, minor units; an adjust's new total),
"status" (approved, voided, reversed), "rrn", "batch" (int), "auth_code"}``.
`write_json_atomic` writes such a file crash-safe (temp file, fsync,
rename, fsync of the directory).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sim.hostcodec import HostMessage

__all__ = [
    "ADJUSTABLE",
    "DEBITS",
    "INVALID_RELATED",
    "JOURNAL_TYPES",
    "NO_CODE",
    "VOIDS",
    "Check",
    "Ledger",
    "LedgerEntry",
    "LedgerStatus",
    "TransactionCode",
    "write_json_atomic",
]


class TransactionCode(StrEnum):
    """Field 60.1, the transaction type code (中国银联 POS 终端消息域说明), as this host reads it."""

    MANAGEMENT = "00"  # network management: sign-on, sign-off, echo, settlement, batch upload
    BALANCE_INQUIRY = "01"
    PREAUTH = "10"
    PREAUTH_VOID = "11"
    COMPLETION = "20"  # pre-authorisation completion
    COMPLETION_VOID = "21"
    SALE = "22"
    VOID = "23"  # of a sale
    REFUND = "25"
    OFFLINE_SETTLEMENT = "30"  # an adjust (offline, 0220)
    TIP_ADJUST = "32"  # an adjust (offline, 0220); the tip adjust of this product
    ADJUST_ADDED_TIP = "34"  # an adjust (offline, 0220)


# A request without 60.1 is taken for a sale.
NO_CODE: Final = ""
VOIDS: Final = (TransactionCode.VOID, TransactionCode.COMPLETION_VOID, TransactionCode.PREAUTH_VOID)
# 60.1 of a void -> the 60.1 of the originals it may cancel.
_VOIDABLE: Final[dict[str, tuple[str, ...]]] = {
    TransactionCode.VOID: (TransactionCode.SALE, NO_CODE),
    TransactionCode.COMPLETION_VOID: (TransactionCode.COMPLETION,),
    TransactionCode.PREAUTH_VOID: (TransactionCode.PREAUTH,),
}
_REFUNDABLE: Final = (TransactionCode.SALE, TransactionCode.COMPLETION, NO_CODE)
ADJUSTABLE: Final = (TransactionCode.SALE, NO_CODE)
DEBITS: Final = (TransactionCode.SALE, TransactionCode.COMPLETION, NO_CODE)
_CREDITS: Final = (TransactionCode.REFUND,)
INVALID_RELATED: Final = "12"
_KEYED: Final = "012"

# 60.1 -> the terminal's journal vocabulary (`firmware.txn.model.TxnType` values).
JOURNAL_TYPES: Final[dict[str, str]] = {
    TransactionCode.SALE: "sale",
    NO_CODE: "sale",
    TransactionCode.PREAUTH: "preauth",
    TransactionCode.COMPLETION: "completion",
    TransactionCode.VOID: "void",
    TransactionCode.COMPLETION_VOID: "void",
    TransactionCode.PREAUTH_VOID: "void",
    TransactionCode.REFUND: "refund",
    TransactionCode.TIP_ADJUST: "adjust",
}


class LedgerStatus(StrEnum):
    """Where an approved transaction stands in the host's ledger."""

    APPROVED = "approved"
    VOIDED = "voided"  # a later void cancelled it
    REVERSED = "reversed"  # a reversal (0400) took it back


@dataclass
class LedgerEntry:
    """One approved financial transaction as the host keeps it."""

    terminal_id: str
    batch: str
    stan: str
    mti: str
    type_code: str  # 60.1 as received: a `TransactionCode`, or "" when absent
    amount: int  # as approved; a tip adjust's new total
    rrn: str
    auth_code: str
    date: str
    status: LedgerStatus = LedgerStatus.APPROVED
    refunded: int = 0
    original: LedgerEntry | None = None
    adjusted_amount: int | None = None  # a sale after its tip adjust: the new total

    @property
    def current_amount(self) -> int:
        """What the transaction stands for now: its adjusted total after a tip adjust."""
        return self.amount if self.adjusted_amount is None else self.adjusted_amount

    def view(self) -> dict[str, Any]:
        return {
            "terminal": self.terminal_id,
            "trace": int(self.stan),
            "type": JOURNAL_TYPES.get(self.type_code, self.type_code),
            "amount": self.amount,
            "status": self.status.value,
            "rrn": self.rrn,
            "batch": int(self.batch),
            "auth_code": self.auth_code,
        }


@dataclass(frozen=True)
class Check:
    """The answer to a related request: a response code, and the original when it was found."""

    code: str
    original: LedgerEntry | None = None


def _not_found() -> Check:
    return Check("25")


class Ledger(list[LedgerEntry]):
    """Every approved financial request, oldest first; the rules that relate them."""

    def find(self, terminal_id: str, **match: str) -> LedgerEntry | None:
        """The latest entry of `terminal_id` whose attributes equal `match`."""
        for entry in reversed(self):
            if entry.terminal_id == terminal_id and all(
                getattr(entry, name) == value for name, value in match.items()
            ):
                return entry
        return None

    def live_children(self, original: LedgerEntry, *type_codes: str) -> list[LedgerEntry]:
        """The approved entries of these types that act on `original`."""
        return [
            entry for entry in self
            if entry.original is original and entry.status is LedgerStatus.APPROVED
            and entry.type_code in type_codes
        ]  # fmt: skip

    def view(self) -> list[dict[str, Any]]:
        """The JSON view of the ledger (see the module docstring)."""
        return [entry.view() for entry in self]

    # ----- the checks ---------------------------------------------------------------------------
    def _by_field61(self, terminal_id: str, request: HostMessage) -> LedgerEntry | None:
        field61 = request.text(61)
        if len(field61) < 12:
            return None
        return self.find(terminal_id, batch=field61[:6], stan=field61[6:12])

    def check_void(self, terminal_id: str, open_batch: str, request: HostMessage, amount: int) -> Check:
        original = self._by_field61(terminal_id, request)
        if original is None:
            return _not_found()
        voidable = _VOIDABLE[request.text(60)[:2]]
        if original.mti not in ("0100", "0200") or original.type_code not in voidable:
            return Check(INVALID_RELATED)  # not a sale this void may cancel (a refund, another void...)
        if original.batch != open_batch:
            return Check(INVALID_RELATED)  # its batch is settled: only a refund can give money back now
        if original.status is not LedgerStatus.APPROVED or original.refunded:
            return Check(INVALID_RELATED)
        if self.live_children(original, TransactionCode.COMPLETION):
            return Check(INVALID_RELATED)  # a pre-authorisation with its completion: void that first
        if original.current_amount != amount:
            return Check("64")
        return Check("00", original)

    def check_refund(self, terminal_id: str, request: HostMessage, amount: int) -> Check:
        original = self.find(terminal_id, rrn=request.text(37))
        if original is None or original.mti != "0200" or original.type_code not in _REFUNDABLE:
            return _not_found()
        original_date = request.text(61)[12:16]
        if original_date and original_date != original.date:
            return _not_found()
        if amount <= 0:
            return Check("13")
        if original.status is not LedgerStatus.APPROVED:
            return Check(INVALID_RELATED)
        if original.refunded + amount > original.current_amount:
            return Check("64")
        return Check("00", original)

    def check_tip_adjust(self, terminal_id: str, open_batch: str, request: HostMessage, amount: int) -> Check:
        original = self._by_field61(terminal_id, request)
        if original is None or not _same_original(original, request):
            return _not_found()
        if original.mti != "0200" or original.type_code not in ADJUSTABLE:
            return Check(INVALID_RELATED)
        if original.batch != open_batch:
            return Check(INVALID_RELATED)
        if original.status is not LedgerStatus.APPROVED or original.refunded:
            return Check(INVALID_RELATED)
        if original.adjusted_amount is not None:
            return Check(INVALID_RELATED)  # adjusted once already
        if amount <= original.amount:
            return Check("13")
        return Check("00", original)

    def check_completion(
        self, terminal_id: str, request: HostMessage, amount: int, tolerance_percent: int
    ) -> Check:
        """A keyed completion (no field 55) of the pre-authorisation named by 61 and 38."""
        if 2 not in request.fields or request.text(22) != _KEYED:
            return Check("30")
        original = self._by_field61(terminal_id, request)
        if original is None or not _same_original(original, request, rrn=False):
            return _not_found()
        if 38 not in request.fields:
            return _not_found()
        if original.mti != "0100" or original.type_code != TransactionCode.PREAUTH:
            return Check(INVALID_RELATED)
        if original.status is not LedgerStatus.APPROVED:
            return Check(INVALID_RELATED)
        if self.live_children(original, TransactionCode.COMPLETION):
            return Check(INVALID_RELATED)  # completed already
        if amount <= 0:
            return Check("13")
        if amount * 100 > original.amount * (100 + tolerance_percent):
            return Check("64")
        return Check("00", original)

    def batch_totals(self, terminal_id: str, batch: str) -> str:
        """Field 48's totals as this host counts them: debit amount n12, count n3, credit amount, count."""
        debit = credit = debit_count = credit_count = 0
        for entry in self:
            if entry.terminal_id != terminal_id or entry.batch != batch:
                continue
            if entry.status is not LedgerStatus.APPROVED:
                continue
            if entry.type_code in DEBITS:
                debit += entry.current_amount
                debit_count += 1
            elif entry.type_code in _CREDITS:
                credit += entry.amount
                credit_count += 1
        return f"{debit:012d}{debit_count:03d}{credit:012d}{credit_count:03d}"


def _same_original(original: LedgerEntry, request: HostMessage, *, rrn: bool = True) -> bool:
    """37 (when `rrn`), 38 and 61's date, when the request gives them, are the original's."""
    date = request.text(61)[12:16]
    if date and date != original.date:
        return False
    if rrn and 37 in request.fields and request.text(37) != original.rrn:
        return False
    return 38 not in request.fields or request.text(38) == original.auth_code


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` crash-safe: temp file, fsync, rename over, fsync the directory."""
    directory = path.parent
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
