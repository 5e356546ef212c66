"""Processing restrictions (EMV Book 3 10.4): version, usage control, dates.

Pure functions of the card data (tag -> value), the terminal and the
transaction. Each returns the TVR bits to set; none talks to the card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from firmware.emv.transaction import Service, TransactionType, card_date
from firmware.emv.tvr import TvrBit
from firmware.errors import CardDataError

__all__ = [
    "AucBit",
    "RestrictionContext",
    "check_application_version",
    "check_dates",
    "check_processing_restrictions",
    "check_usage_control",
]


class AucBit:
    """Application Usage Control 9F07 bits as (byte index 0-1, mask) (Book 3 Annex C2)."""

    DOMESTIC_CASH = (0, 0x80)
    INTERNATIONAL_CASH = (0, 0x40)
    DOMESTIC_GOODS = (0, 0x20)
    INTERNATIONAL_GOODS = (0, 0x10)
    DOMESTIC_SERVICES = (0, 0x08)
    INTERNATIONAL_SERVICES = (0, 0x04)
    VALID_AT_ATMS = (0, 0x02)
    VALID_AT_OTHER_TERMINALS = (0, 0x01)
    DOMESTIC_CASHBACK = (1, 0x80)
    INTERNATIONAL_CASHBACK = (1, 0x40)


@dataclass(frozen=True)
class RestrictionContext:
    terminal_version: bytes | None
    terminal_country: bytes
    terminal_is_atm: bool
    transaction_type: TransactionType
    service: Service
    amount_other: int
    today: date


def check_application_version(card: Mapping[int, bytes], terminal_version: bytes | None) -> TvrBit:
    """10.4.1: 9F08 (card) against 9F09 (terminal); either absent means no check."""
    card_version = card.get(0x9F08)
    if card_version is None or terminal_version is None or card_version == terminal_version:
        return TvrBit(0)
    return TvrBit.DIFFERENT_APPLICATION_VERSIONS


def _auc_has(auc: bytes, bit: tuple[int, int]) -> bool:
    index, mask = bit
    return bool(auc[index] & mask)


def check_usage_control(card: Mapping[int, bytes], ctx: RestrictionContext) -> TvrBit:
    """10.4.2: the card's AUC against where and what the transaction is."""
    auc = card.get(0x9F07)
    if auc is None:
        return TvrBit(0)
    if len(auc) != 2:
        raise CardDataError(f"Application Usage Control must be 2 bytes, got {len(auc)}", 0x9F07)
    place = AucBit.VALID_AT_ATMS if ctx.terminal_is_atm else AucBit.VALID_AT_OTHER_TERMINALS
    if not _auc_has(auc, place):
        return TvrBit.SERVICE_NOT_ALLOWED
    issuer_country = card.get(0x5F28)
    if issuer_country is None:
        return TvrBit(0)
    domestic = issuer_country == ctx.terminal_country
    needed: list[tuple[int, int]] = []
    kind = ctx.transaction_type
    if kind is TransactionType.CASH:
        needed.append(AucBit.DOMESTIC_CASH if domestic else AucBit.INTERNATIONAL_CASH)
    elif kind in (TransactionType.PURCHASE, TransactionType.PURCHASE_WITH_CASHBACK):
        if ctx.service is Service.GOODS:
            needed.append(AucBit.DOMESTIC_GOODS if domestic else AucBit.INTERNATIONAL_GOODS)
        else:
            needed.append(AucBit.DOMESTIC_SERVICES if domestic else AucBit.INTERNATIONAL_SERVICES)
    # A refund has no AUC bit of its own in Book 3 Annex C2: only the ATM/non-ATM check applies.
    if kind is TransactionType.PURCHASE_WITH_CASHBACK or (
        kind is TransactionType.PURCHASE and ctx.amount_other > 0
    ):
        needed.append(AucBit.DOMESTIC_CASHBACK if domestic else AucBit.INTERNATIONAL_CASHBACK)
    if all(_auc_has(auc, bit) for bit in needed):
        return TvrBit(0)
    return TvrBit.SERVICE_NOT_ALLOWED


def check_dates(card: Mapping[int, bytes], today: date) -> TvrBit:
    """10.4.3: not yet effective (5F25 after today), expired (today after 5F24)."""
    bits = TvrBit(0)
    effective = card.get(0x5F25)
    if effective is not None and today < card_date(effective, 0x5F25):
        bits |= TvrBit.APPLICATION_NOT_YET_EFFECTIVE
    expiry = card.get(0x5F24)
    if expiry is not None and today > card_date(expiry, 0x5F24):
        bits |= TvrBit.EXPIRED_APPLICATION
    return bits


def check_processing_restrictions(card: Mapping[int, bytes], ctx: RestrictionContext) -> TvrBit:
    return (
        check_application_version(card, ctx.terminal_version)
        | check_usage_control(card, ctx)
        | check_dates(card, ctx.today)
    )
