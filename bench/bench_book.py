"""The books: the cost of recording a transaction as the past grows, against a floor measured in the same run.

Measured, with 100, 1,000, 10,000 and 100,000 past transactions in settled
batches (archives of ~200 entries, written directly through the archive
writer) and an open batch of ~100 entries with a few outbox records:

- request: `take_trace` + `record_request(entry, armed reversal)`, one write;
- reverse: `take_trace` + `record_reverse(refund, notice=...)`, one write
  (entry, the original's history line, the signed notice).

Floor, timed right after each sample on the same disk: a bare write of the
open file's bytes to a temp file, fsync, rename over it ("floor"), and the
same with the fsync of the directory that the book's writes also make
("floor+dir"). The ratio says what the book adds; the target is at most 2x
the floor, and within 20 % from 100 to 100,000 past transactions (a
settled batch is never touched by a write).

Then lookups at the largest size: by order and by the card's last four
digits, cold (a new Book: every batch index is read once) and warm.

The files live under var/ (the repository's own disk, not a tmpfs), so fsync
is real.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _harness import REPO_ROOT

from firmware.keys.signing import RecordSigner, new_signing_key
from firmware.txn.archive import write_archive
from firmware.txn.book import Book
from firmware.txn.model import ArmedReversal, Evidence, JournalEntry, ReversalReason, TxnStatus, TxnType

SIZES = (100, 1_000, 10_000, 100_000)
ARCHIVE_BATCH = 200
OPEN_ENTRIES = 100
SAMPLES = 21
BEIJING = timezone(timedelta(hours=8))
START = datetime(2025, 1, 1, 9, 0, tzinfo=BEIJING)


def bare_replace(path: Path, data: bytes, *, sync_directory: bool) -> None:
    """The floor: write, fsync, rename over (and fsync the directory)."""
    temp = path.with_name(f".{path.name}.floor.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, path)
    if sync_directory:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Shop:
    """Makes realistic entries: masked and sealed card numbers, orders, RRNs, evidence."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count = 0

    def sale(self, trace: int, batch: int, created: datetime, status: TxnStatus) -> JournalEntry:
        self.count += 1
        four = f"{self.rng.randrange(10_000):04d}"
        return JournalEntry(
            trace=trace, type=TxnType.SALE, amount=self.rng.randrange(100, 500_000), status=status,
            order=f"ORD{self.count:09d}", batch=batch, created=created, rrn=f"{self.count:012d}",
            auth_code=f"{self.rng.randrange(10**6):06d}", response_code="00",
            masked_pan=f"622202******{four}", pan_sealed=self.rng.randbytes(40).hex(),
            history=(f"{created.isoformat(timespec='seconds')} approved",),
        )  # fmt: skip

    def refund(self, original: JournalEntry, trace: int, batch: int, created: datetime) -> JournalEntry:
        evidence = Evidence(original.order, original.created, "张三", "13800000000", "顾客退货")
        return JournalEntry(
            trace=trace, type=TxnType.REFUND, amount=original.amount // 2, status=TxnStatus.PENDING,
            order=original.order, batch=batch, created=created, masked_pan=original.masked_pan,
            pan_sealed=original.pan_sealed, original_batch=original.batch, original_trace=original.trace,
            evidence=evidence,
        )  # fmt: skip


def reversal_of(entry: JournalEntry) -> ArmedReversal:
    fields = {
        "3": "000000",
        "4": f"{entry.amount:012d}",
        "11": f"{entry.trace:06d}",
        "22": "051",
        "25": "00",
        "41": "00000001",
        "42": "123456789012345",
        "49": "156",
        "55": "9F2608" + "AB" * 8 + "9F2701809F10130701" + "00" * 16,
        "60": "22000001000",
    }
    return ArmedReversal(
        entry.trace,
        "0200",
        entry.amount,
        fields,
        ReversalReason.NO_ANSWER,
        entry.created,
        pan_sealed=entry.pan_sealed,
    )


def main() -> None:
    signer = RecordSigner(new_signing_key(os.urandom))
    shop = Shop(20260314)
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "var", prefix="bench-book-") as work:
        directory = Path(work) / "txn"
        floor_path = directory / "floor.json"
        clock_now = [START]

        def clock() -> datetime:
            clock_now[0] += timedelta(seconds=30)
            return clock_now[0]

        open_batch = 900_000  # the open batches' numbers; the written archives count up from 1
        book = Book(directory, signer, signer.public_key(), clock, first_batch=open_batch)
        archived, trace, next_archive = 0, 0, 1
        print(f"{'past':>8} {'open KB':>8} {'what':>8} {'book ms':>8} {'floor ms':>9} {'x floor':>8} "
              f"{'floor+dir':>10} {'x f+dir':>8}")  # fmt: skip
        medians: dict[tuple[int, str], float] = {}
        for size in SIZES:
            # The past: archives of ~200 settled entries, written straight through the archive writer.
            while archived < size:
                count = min(ARCHIVE_BATCH, size - archived)
                entries = []
                for _ in range(count):
                    trace = trace % 999_999 + 1
                    entries.append(shop.sale(trace, next_archive, clock(), TxnStatus.APPROVED))
                write_archive(directory, next_archive, next_archive + 1, entries, [], clock())
                archived += count
                next_archive += 1
            # The open batch: ~100 entries of today, a few notices waiting.
            with book.transaction():  # yesterday's answers all came: nothing carried over
                for entry in book.open_entries():
                    if entry.status == TxnStatus.PENDING:
                        book.settle_request(entry.trace, TxnStatus.APPROVED)
                for record in book.outbox.pending():
                    book.outbox.acknowledge(record.id)
            archived += len(book.open_entries())
            open_batch += 1
            book.close_batch(open_batch)
            for _ in range(OPEN_ENTRIES):
                with book.transaction():
                    entry = shop.sale(book.take_trace(), book.batch, clock(), TxnStatus.APPROVED)
                    book.record_request(entry)
            for _ in range(3):
                book.outbox.enqueue(
                    "notice", {"amount": 100, "order": "ORD1", "pan_masked": "622202******0001"}
                )
            originals = book.open_entries()
            samples: dict[str, list[tuple[float, float, float]]] = {"request": [], "reverse": []}
            for n in range(SAMPLES):

                def request() -> None:
                    with book.transaction():
                        entry = shop.sale(book.take_trace(), book.batch, clock(), TxnStatus.PENDING)
                        book.record_request(entry, reversal_of(entry))

                def reverse(original: JournalEntry = originals[n]) -> None:
                    with book.transaction():
                        refund = shop.refund(original, book.take_trace(), book.batch, clock())
                        notice = {"type": "refund", "order": refund.order, "amount": refund.amount,
                                  "pan_masked": refund.masked_pan, "applicant": "张三"}  # fmt: skip
                        book.record_reverse(refund, notice=notice)

                for what, action in (("request", request), ("reverse", reverse)):
                    seconds = timed(action)
                    data = book.path.read_bytes()
                    floor = timed(lambda data=data: bare_replace(floor_path, data, sync_directory=False))
                    floor_dir = timed(lambda data=data: bare_replace(floor_path, data, sync_directory=True))
                    samples[what].append((seconds, floor, floor_dir))
            kilobytes = book.path.stat().st_size / 1024
            for what, rows in samples.items():
                book_s, floor_s, floor_dir_s = (
                    statistics.median(column) for column in zip(*rows, strict=True)
                )
                medians[(size, what)] = book_s
                print(
                    f"{size:>8,} {kilobytes:>8.1f} {what:>8} {book_s * 1e3:>8.2f} {floor_s * 1e3:>9.2f} "
                    f"{book_s / floor_s:>8.2f} {floor_dir_s * 1e3:>10.2f} {book_s / floor_dir_s:>8.2f}"
                )
        for what in ("request", "reverse"):
            growth = medians[(SIZES[-1], what)] / medians[(SIZES[0], what)]
            print(f"{what}: from {SIZES[0]:,} to {SIZES[-1]:,} past transactions x{growth:.2f}")
        book.close()

        # Lookups over every batch, at the largest size.
        archived += len(Book(directory, signer, signer.public_key(), clock).open_entries())
        middle_order = f"ORD{shop.count // 2:09d}"
        cold_four = timed(lambda: Book(directory, signer, signer.public_key(), clock).find(last4="1234"))
        cold = Book(directory, signer, signer.public_key(), clock)
        started = time.perf_counter()
        found = cold.find(order=middle_order)
        cold_order = time.perf_counter() - started
        by_four = cold.find(last4="1234")
        warm_order = statistics.median(timed(lambda: cold.find(order=middle_order)) for _ in range(9))
        warm_four = statistics.median(timed(lambda: cold.find(last4="1234")) for _ in range(9))
        history = statistics.median(timed(lambda: cold.history(middle_order)) for _ in range(9))
        batches = len(cold.archives.batches())
        print(f"lookups over {batches} settled batches ({archived:,} past transactions):")
        print(f"  find by order   cold {cold_order * 1e3:7.1f} ms (reads every index once), warm "
              f"{warm_order * 1e3:6.2f} ms, {len(found)} found")  # fmt: skip
        print(f"  find by last 4  cold {cold_four * 1e3:7.1f} ms (reads every index once), warm "
              f"{warm_four * 1e3:6.2f} ms, {len(by_four)} found")  # fmt: skip
        print(f"  history(order)  warm {history * 1e3:7.2f} ms")
        cold.close()


if __name__ == "__main__":
    main()
