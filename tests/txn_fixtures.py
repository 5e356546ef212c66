"""What the book's tests share: a clock the test moves, a device key, entries and reversals to record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from firmware.keys.signing import RecordSigner, private_key_from_bytes
from firmware.txn.book import Book
from firmware.txn.model import (
    ArmedReversal,
    CashRefund,
    Evidence,
    JournalEntry,
    ReversalReason,
    TxnStatus,
    TxnType,
)

DEVICE = RecordSigner(private_key_from_bytes(bytes(range(32))))  # TEST key
OTHER_DEVICE = RecordSigner(private_key_from_bytes(bytes(range(100, 132))))  # TEST key
BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 14, 15, 9, 26, tzinfo=BEIJING)
MASKED = "622202******1234"
SEALED = "5e" * 12 + "6200000000000005" + "a7" * 16  # TEST ciphertext (a Luhn-valid digit run in it)


class Clock:
    """A clock the test moves: each reading is one second after the last (or `step`)."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def counting_rng() -> Callable[[int], bytes]:
    state = {"n": 0}

    def rng(count: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] * 31 + i) % 256 for i in range(count))

    return rng


def open_book(directory: Path, clock: Callable[[], datetime] | None = None, **kwargs: Any) -> Book:
    signer = kwargs.pop("signer", DEVICE)
    return Book(directory, signer, signer.public_key(), clock or Clock(), **kwargs)


def sale(
    trace: int, batch: int, amount: int = 10_000, *, created: datetime = T0, **changes: Any
) -> JournalEntry:
    entry = JournalEntry(
        trace=trace,
        type=TxnType.SALE,
        amount=amount,
        status=TxnStatus.PENDING,
        order=f"ORD{trace:06d}",
        batch=batch,
        created=created,
        masked_pan=MASKED,
        pan_sealed=SEALED,
    )
    return replace(entry, **changes)


EVIDENCE = Evidence(order="ORD000001", original_time=T0, name="张三", contact="13800000000", reason="退货")


def refund_of(original: JournalEntry, trace: int, batch: int, amount: int, **changes: Any) -> JournalEntry:
    entry = JournalEntry(
        trace=trace,
        type=TxnType.REFUND,
        amount=amount,
        status=TxnStatus.PENDING,
        order=original.order,
        batch=batch,
        created=original.created + timedelta(hours=1, seconds=trace),
        masked_pan=original.masked_pan,
        original_batch=original.batch,
        original_trace=original.trace,
        evidence=replace(EVIDENCE, order=original.order),
    )
    return replace(entry, **changes)


def cash_refund_of(original: JournalEntry, reference: str, amount: int, created: datetime) -> CashRefund:
    return CashRefund(
        reference=reference,
        amount=amount,
        order=original.order,
        original_batch=original.batch,
        original_trace=original.trace,
        created=created,
        evidence=replace(EVIDENCE, order=original.order),
    )


def reversal(trace: int, amount: int = 10_000, armed_at: datetime = T0) -> ArmedReversal:
    fields = {"3": "000000", "4": f"{amount:012d}", "11": f"{trace:06d}",
              "55": "9F2608AABBCCDDEEFF0011"}  # fmt: skip
    return ArmedReversal(trace, "0200", amount, fields, ReversalReason.NO_ANSWER, armed_at, pan_sealed=SEALED)


def on_disk(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    return data


def edit_on_disk(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = on_disk(path)
    change(data)
    with path.open("w", encoding="utf-8") as file:
        json.dump(data, file)
