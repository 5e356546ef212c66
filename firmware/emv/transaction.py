"""What the caller asks of one EMV transaction, and the numeric encodings it needs.

Everything that varies between runs (clock, unpredictable number, random
selection number, sequence counter) is a field here, so a transaction with the
same `TransactionInput` replays byte for byte.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from firmware.errors import CardDataError, TransactionInputError

__all__ = [
    "Service",
    "TransactionInput",
    "TransactionType",
    "amount_n12",
    "bcd_digits",
    "card_date",
    "date_n6",
    "decode_bcd",
    "time_n6",
]


class TransactionType(enum.IntEnum):
    """Transaction Type 9C (first two digits of the ISO 8583 processing code)."""

    PURCHASE = 0x00
    CASH = 0x01
    PURCHASE_WITH_CASHBACK = 0x09
    REFUND = 0x20


class Service(enum.Enum):
    """Whether a purchase is of goods or of services (Application Usage Control, Book 3 10.4.2)."""

    GOODS = "goods"
    SERVICES = "services"


@dataclass(frozen=True)
class TransactionInput:
    """One transaction as the caller starts it. Amounts in minor units of the terminal currency."""

    amount: int
    now: datetime
    unpredictable_number: bytes
    random_selection_number: int
    sequence_counter: int
    transaction_type: TransactionType = TransactionType.PURCHASE
    amount_other: int = 0
    service: Service = Service.GOODS
    merchant_forced_online: bool = False

    def __post_init__(self) -> None:
        if self.amount < 0 or self.amount_other < 0:
            raise TransactionInputError("amounts must not be negative")
        if self.amount >= 10**12 or self.amount_other >= 10**12:
            raise TransactionInputError("amount does not fit 12 digits (9F02)")
        if len(self.unpredictable_number) != 4:
            raise TransactionInputError("the unpredictable number 9F37 is 4 bytes")
        if not 1 <= self.random_selection_number <= 99:
            raise TransactionInputError("the random selection number is 1..99 (Book 3 10.6.2)")
        if not 0 <= self.sequence_counter < 10**8:
            raise TransactionInputError("the transaction sequence counter 9F41 is 8 digits")


def bcd_digits(number: int, length: int) -> bytes:
    """`number` as `length` bytes of packed BCD (EMV format n), left-padded with zeros."""
    if number < 0 or number >= 10 ** (2 * length):
        raise ValueError(f"{number} does not fit {2 * length} digits")
    return bytes.fromhex(f"{number:0{2 * length}d}")


def decode_bcd(data: bytes, tag: int | None = None) -> int:
    """Packed BCD (format n) to an int; a nibble above 9 raises CardDataError."""
    text = data.hex()
    if not text.isdigit():
        raise CardDataError(f"not packed BCD: {text.upper()}", tag)
    return int(text) if text else 0


def amount_n12(amount: int) -> bytes:
    return bcd_digits(amount, 6)


def date_n6(day: date) -> bytes:
    """YYMMDD (9A)."""
    return bytes.fromhex(day.strftime("%y%m%d"))


def time_n6(moment: datetime) -> bytes:
    """HHMMSS (9F21)."""
    return bytes.fromhex(moment.strftime("%H%M%S"))


def card_date(data: bytes, tag: int) -> date:
    """A YYMMDD card date (5F24, 5F25); YY below 50 is 20YY (Book 3 Annex, EMV year rule)."""
    if len(data) != 3:
        raise CardDataError(f"date must be 3 bytes, got {len(data)}", tag)
    digits = data.hex()
    if not digits.isdigit():
        raise CardDataError(f"date is not BCD: {digits.upper()}", tag)
    yy, mm, dd = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    year = 2000 + yy if yy < 50 else 1900 + yy
    try:
        return date(year, mm, dd)
    except ValueError as exc:
        raise CardDataError(f"invalid date {digits}", tag) from exc
