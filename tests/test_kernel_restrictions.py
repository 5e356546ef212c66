"""Processing restrictions (Book 3 10.4) on hand-built card data."""

from __future__ import annotations

from datetime import date

import pytest

from firmware.emv.restrictions import (
    RestrictionContext,
    check_application_version,
    check_dates,
    check_processing_restrictions,
    check_usage_control,
)
from firmware.emv.transaction import Service, TransactionType
from firmware.emv.tvr import TvrBit
from firmware.errors import CardDataError

CHINA = bytes.fromhex("0156")
FRANCE = bytes.fromhex("0250")


def ctx(
    *,
    kind: TransactionType = TransactionType.PURCHASE,
    service: Service = Service.GOODS,
    atm: bool = False,
    other: int = 0,
    today: date = date(2025, 6, 15),
    version: bytes | None = bytes.fromhex("008C"),
) -> RestrictionContext:
    return RestrictionContext(
        terminal_version=version,
        terminal_country=CHINA,
        terminal_is_atm=atm,
        transaction_type=kind,
        service=service,
        amount_other=other,
        today=today,
    )


def test_version_mismatch_sets_bit_and_absent_skips() -> None:
    assert check_application_version({0x9F08: bytes.fromhex("008C")}, bytes.fromhex("008C")) == 0
    assert (
        check_application_version({0x9F08: bytes.fromhex("0096")}, bytes.fromhex("008C"))
        == TvrBit.DIFFERENT_APPLICATION_VERSIONS
    )
    assert check_application_version({}, bytes.fromhex("008C")) == 0


# AUC byte 1: domestic cash 80, intl cash 40, domestic goods 20, intl goods 10,
# domestic services 08, intl services 04, ATMs 02, other terminals 01; byte 2: dom cashback 80, intl 40.
AUC_CASES = [
    # (auc hex, issuer country, context kwargs, service not allowed expected)
    ("FF00", CHINA, {}, False),
    ("2100", CHINA, {}, False),  # domestic goods at a POS
    ("1100", CHINA, {}, True),  # international goods only, but domestic
    ("1100", FRANCE, {}, False),
    ("2200", CHINA, {}, True),  # ATM-only card at a POS
    ("8200", CHINA, {"kind": TransactionType.CASH, "atm": True}, False),
    ("8100", CHINA, {"kind": TransactionType.CASH, "atm": True}, True),
    ("4200", CHINA, {"kind": TransactionType.CASH, "atm": True}, True),
    ("0900", CHINA, {"service": Service.SERVICES}, False),
    ("0500", CHINA, {"service": Service.SERVICES}, True),
    ("2100", CHINA, {"kind": TransactionType.PURCHASE_WITH_CASHBACK, "other": 500}, True),
    ("2180", CHINA, {"kind": TransactionType.PURCHASE_WITH_CASHBACK, "other": 500}, False),
    ("3180", FRANCE, {"kind": TransactionType.PURCHASE_WITH_CASHBACK, "other": 500}, True),
    ("1140", FRANCE, {"kind": TransactionType.PURCHASE, "other": 500}, False),
    ("0100", CHINA, {"kind": TransactionType.REFUND}, False),
    ("0200", CHINA, {"kind": TransactionType.REFUND}, True),
]


@pytest.mark.parametrize(("auc", "country", "kwargs", "refused"), AUC_CASES)
def test_usage_control(auc: str, country: bytes, kwargs: dict[str, object], refused: bool) -> None:
    card = {0x9F07: bytes.fromhex(auc), 0x5F28: country}
    bits = check_usage_control(card, ctx(**kwargs))  # type: ignore[arg-type]
    assert (bits == TvrBit.SERVICE_NOT_ALLOWED) is refused


def test_usage_control_without_issuer_country_checks_only_the_place() -> None:
    assert check_usage_control({0x9F07: bytes.fromhex("0100")}, ctx()) == 0
    assert check_usage_control({0x9F07: bytes.fromhex("0200")}, ctx()) == TvrBit.SERVICE_NOT_ALLOWED
    assert check_usage_control({}, ctx()) == 0


def test_usage_control_wrong_length_is_malformed() -> None:
    with pytest.raises(CardDataError, match="9F07"):
        check_usage_control({0x9F07: b"\xff"}, ctx())


DATE_CASES = [
    # (effective, expiry, today, expected bits)
    ("250101", "271231", date(2025, 6, 15), TvrBit(0)),
    ("250616", "271231", date(2025, 6, 15), TvrBit.APPLICATION_NOT_YET_EFFECTIVE),
    ("250615", "250615", date(2025, 6, 15), TvrBit(0)),  # both limits are inclusive
    ("200101", "250614", date(2025, 6, 15), TvrBit.EXPIRED_APPLICATION),
    ("990101", "491231", date(2025, 6, 15), TvrBit(0)),  # 99 is 1999, 49 is 2049
    ("500101", "251231", date(2025, 6, 15), TvrBit(0)),  # 50 is 1950
]


@pytest.mark.parametrize(("effective", "expiry", "today", "expected"), DATE_CASES)
def test_dates(effective: str, expiry: str, today: date, expected: TvrBit) -> None:
    card = {0x5F25: bytes.fromhex(effective), 0x5F24: bytes.fromhex(expiry)}
    assert check_dates(card, today) == expected


def test_bad_date_names_the_tag() -> None:
    with pytest.raises(CardDataError, match="5F24"):
        check_dates({0x5F24: bytes.fromhex("251331")}, date(2025, 1, 1))
    with pytest.raises(CardDataError, match="5F25"):
        check_dates({0x5F25: bytes.fromhex("25A101")}, date(2025, 1, 1))


def test_all_restrictions_combine() -> None:
    card = {
        0x9F08: bytes.fromhex("0001"),
        0x9F07: bytes.fromhex("0200"),
        0x5F24: bytes.fromhex("240101"),
    }
    assert check_processing_restrictions(card, ctx()) == (
        TvrBit.DIFFERENT_APPLICATION_VERSIONS | TvrBit.SERVICE_NOT_ALLOWED | TvrBit.EXPIRED_APPLICATION
    )
