"""The terminal's books: one crash-safe write per operation, rotation at settlement, lookups across batches.

Files are checked as plain JSON (json.load, never the book's own reader); writes are counted at
`write_atomically`, the one place every crash-safe write goes through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

import firmware.store.atomic_file as atomic_file
import firmware.store.storage as storage_module
from firmware.errors import DamagedStoreError, SensitiveDataError, StoreError
from firmware.txn.archive import archive_path, index_path, write_archive
from firmware.txn.book import Book
from firmware.txn.documents import MAX_TRACE
from firmware.txn.model import ReversalReason, TxnStatus, TxnType
from firmware.txn.outbox import OutboxRecord, reversal_id
from tests.txn_fixtures import (
    MASKED,
    T0,
    Clock,
    cash_refund_of,
    edit_on_disk,
    on_disk,
    open_book,
    refund_of,
    reversal,
    sale,
)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "data" / "txn"


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """The paths of the crash-safe writes made while the test runs."""
    made: list[Path] = []
    real = atomic_file.write_atomically

    def counting(path: Path, data: bytes, *, exclusive: bool = False) -> None:
        made.append(Path(path))
        real(path, data, exclusive=exclusive)

    monkeypatch.setattr(storage_module, "write_atomically", counting)
    monkeypatch.setattr("firmware.txn.archive.write_atomically", counting)
    yield made


# ----- one write per operation -------------------------------------------------------------------------


def test_a_request_and_its_armed_reversal_are_one_write(directory: Path, writes: list[Path]) -> None:
    book = open_book(directory)
    writes.clear()
    with book.transaction():
        trace = book.take_trace()
        rid = book.record_request(sale(trace, book.batch), reversal(trace))
    assert writes == [directory / "open.json"] and trace == 1 and rid == reversal_id(1)
    stored = on_disk(directory / "open.json")
    assert stored["entries"]["1"]["status"] == "pending" and stored["entries"]["1"]["masked_pan"] == MASKED
    assert (
        stored["reversals"]["1"]["fields"]["4"] == "000000010000"
        and stored["reversals"]["1"]["reason"] == "98"
    )
    assert stored["meta"]["1"]["next_trace"] == 2

    writes.clear()
    settled = book.settle_request(1, TxnStatus.APPROVED, rrn="123456789012", auth_code="A1B2C3",
                                  response_code="00", note="approved")  # fmt: skip
    assert writes == [directory / "open.json"]
    assert settled.status == TxnStatus.APPROVED and settled.history == ("approved",)
    stored = on_disk(directory / "open.json")
    assert stored["entries"]["1"]["rrn"] == "123456789012" and stored["reversals"] == {}
    reopened = open_book(directory)
    assert reopened.entry(1) == settled and reopened.outbox.armed() == []


def test_a_request_left_pending_keeps_its_reversal_armed_across_a_restart(directory: Path) -> None:
    book = open_book(directory)
    book.record_request(sale(book.take_trace(), 1), reversal(1))
    book.settle_request(1, TxnStatus.PENDING, status_reason="no answer", disarm=False)
    reopened = open_book(directory)
    assert reopened.outbox.next_to_send() == reversal(1)
    assert reopened.outbox.set_reversal_reason(1, ReversalReason.CARD_DECLINED_AFTER_APPROVAL).reason == "06"
    reopened.settle_request(1, TxnStatus.REVERSED, response_code="00", note="reversed")  # and disarmed
    with pytest.raises(StoreError, match="no reversal reversal-000001 is armed"):
        reopened.outbox.acknowledge(reversal_id(1))
    assert open_book(directory).entry(1).status == TxnStatus.REVERSED  # type: ignore[union-attr]


def test_a_failed_block_writes_nothing(directory: Path) -> None:
    book = open_book(directory)
    book.record_request(sale(book.take_trace(), 1))
    before = (directory / "open.json").read_bytes()
    with pytest.raises(StoreError, match="already recorded"), book.transaction():
        trace = book.take_trace()
        book.record_request(sale(trace, 1), reversal(trace))
        book.record_request(sale(trace, 1))
    assert (directory / "open.json").read_bytes() == before
    assert book.entry(trace) is None and book.outbox.armed() == []  # nor kept in memory
    assert book.take_trace() == trace  # it was never spent on disk, nor sent


def test_a_reverse_request_its_original_history_and_notice_are_one_write(
    directory: Path, writes: list[Path]
) -> None:
    book = open_book(directory)
    original = sale(book.take_trace(), 1)
    book.record_request(original)
    book.settle_request(original.trace, TxnStatus.APPROVED, rrn="000000000001")
    writes.clear()
    notice = {"type": "refund", "amount": 2500, "order": original.order, "pan_masked": MASKED}
    with book.transaction():
        trace = book.take_trace()
        refund = refund_of(original, trace, 1, 2500)
        recorded = book.record_reverse(refund, advice={"mti": "0220", "11": f"{trace:06d}"}, notice=notice)
    assert writes == [directory / "open.json"]
    stored = on_disk(directory / "open.json")
    assert stored["entries"][str(trace)]["original_trace"] == original.trace
    assert stored["entries"]["1"]["history"] == [
        f"{refund.created.isoformat()} refund {trace:06d} 2500 pending"
    ]
    kinds = [doc["record"]["kind"] for doc in stored["outbox"].values()]
    assert kinds == ["advice", "notice"] and recorded.reversal_id is None
    pending = book.outbox.pending()
    assert [r.id for r in pending] == [recorded.advice_id, recorded.notice_id]
    assert pending[1].payload == notice


def test_traces_run_1_to_999999_wrap_and_skip_those_in_use(directory: Path) -> None:
    book = open_book(directory)
    assert [book.take_trace() for _ in range(3)] == [1, 2, 3]
    book.record_request(sale(MAX_TRACE - 1, 1))  # recorded beyond the counter: the counter moves past it
    assert book.take_trace() == MAX_TRACE
    book.record_request(sale(MAX_TRACE, 1), reversal(MAX_TRACE))
    book.record_request(sale(1, 1))
    assert book.take_trace() == 2  # wrapped, 1 is in use in the open batch
    assert open_book(directory).take_trace() == 3


def test_an_entry_of_another_batch_or_with_clear_card_data_is_refused(directory: Path) -> None:
    book = open_book(directory)
    with pytest.raises(StoreError, match="open batch is 1"):
        book.record_request(sale(1, 7))
    with pytest.raises(StoreError, match="masked_pan"):
        book.record_request(sale(1, 1, masked_pan="6222021234561234"))
    with pytest.raises(SensitiveDataError) as caught:
        book.record_request(sale(1, 1), replace(reversal(1), fields={"48": "4111111111111111"}))
    assert caught.value.field == "reversal.fields.48" and "4111" not in str(caught.value)
    with pytest.raises(StoreError, match="fields 2, 35 are never stored"):
        book.record_request(sale(1, 1), replace(reversal(1), fields={"2": "x", "35": "y"}))
    for clear in ("4111111111111111", "A1" * 30, "a1b2"):
        with pytest.raises(StoreError, match="pan_sealed must be the sealed PAN"):
            book.record_request(sale(1, 1, pan_sealed=clear))
    with pytest.raises(StoreError, match="timezone-aware"):
        book.record_request(sale(1, 1, created=T0.replace(tzinfo=None)))
    assert not (directory / "open.json").exists() or "entries" not in on_disk(directory / "open.json")
    assert b"4111111111111111" not in (directory / "open.json").read_bytes()


# ----- settlement --------------------------------------------------------------------------------------


def fill_batch(book: Book, count: int, amount: int = 10_000) -> list[int]:
    traces = []
    for _ in range(count):
        with book.transaction():
            trace = book.take_trace()
            book.record_request(sale(trace, book.batch, amount, created=T0 + timedelta(minutes=trace)))
            book.settle_request(trace, TxnStatus.APPROVED, rrn=f"{trace:012d}")
        traces.append(trace)
    return traces


def test_close_batch_archives_the_batch_and_carries_over_what_still_waits(directory: Path) -> None:
    book = open_book(directory)
    fill_batch(book, 3)
    book.record_request(sale(book.take_trace(), 1), reversal(4))  # still in flight at settlement
    notice_id = book.outbox.enqueue("notice", {"amount": 1})
    path = book.close_batch(2)
    assert path == directory / "batches" / "batch-000001.json" and index_path(directory, 1).exists()
    archived = on_disk(path)
    assert [e["trace"] for e in archived["entries"]] == [1, 2, 3] and archived["next_batch"] == 2
    stored = on_disk(directory / "open.json")
    assert list(stored["entries"]) == ["4"] and stored["entries"]["4"]["batch"] == 1
    assert list(stored["reversals"]) == ["4"] and stored["meta"]["1"]["batch"] == 2
    assert stored["meta"]["1"]["next_trace"] == 5
    reopened = open_book(directory)
    assert reopened.batch == 2 and reopened.take_trace() == 5
    assert [r.id for r in reopened.outbox.pending()] == [notice_id]
    with pytest.raises(StoreError, match="already settled"):
        reopened.close_batch(1)
    # the pending one is resolved in batch 2 and archived with it
    reopened.settle_request(4, TxnStatus.APPROVED)
    reopened.close_batch(3)
    assert [e["trace"] for e in on_disk(archive_path(directory, 2))["entries"]] == [4]
    assert on_disk(directory / "open.json")["entries"] == {}


def test_a_rotation_cut_after_the_archive_is_finished_at_open(directory: Path) -> None:
    book = open_book(directory)
    fill_batch(book, 3)
    before = on_disk(directory / "open.json")
    # What a cut between the archive's write and the open file's leaves: the archive, the old open file.
    write_archive(directory, 1, 5, book.open_entries(), [], T0)
    index_path(directory, 1).unlink()
    assert on_disk(directory / "open.json") == before
    reopened = open_book(directory)
    assert reopened.batch == 5 and reopened.open_entries() == [] and index_path(directory, 1).exists()
    assert [e.trace for e in reopened.find()] == [3, 2, 1]  # once each: archived, not doubled
    assert open_book(directory).batch == 5  # idempotent


# ----- lookups -----------------------------------------------------------------------------------------


@pytest.fixture
def settled_book(directory: Path) -> Book:
    """Batches 1 and 2 archived (sale 1 refunded in batch 2 after settlement), batch 3 open."""
    book = open_book(directory)
    fill_batch(book, 3)
    book.close_batch(2)
    fill_batch(book, 2, amount=2_000)  # traces 4, 5 on the next day's minutes
    first = sale(1, 1, created=T0 + timedelta(minutes=1), status=TxnStatus.APPROVED, rrn="000000000001")
    refund = refund_of(first, book.take_trace(), 2, 3000)
    book.record_reverse(refund, notice={"amount": 3000})
    book.settle_request(refund.trace, TxnStatus.APPROVED)
    book.close_batch(3)
    declined = refund_of(first, book.take_trace(), 3, 9000)
    book.record_reverse(declined)
    book.settle_request(declined.trace, TxnStatus.DECLINED, response_code="51")
    pending = refund_of(first, book.take_trace(), 3, 1000)
    book.record_reverse(pending)
    book.record_cash_refund(cash_refund_of(first, "C0001", 500, T0 + timedelta(days=1)), notice={"a": 1})
    return book


def test_find_across_the_open_batch_and_the_archives_newest_first(settled_book: Book) -> None:
    book = settled_book
    assert [e.trace for e in book.find(last4="1234")] == [5, 4, 3, 2, 1]
    assert [e.trace for e in book.find(order="ORD000002")] == [2]
    assert [e.trace for e in book.find(trace=4)] == [4]
    assert [e.trace for e in book.find(rrn="000000000003")] == [3]
    assert [e.trace for e in book.find(amount=2_000)] == [5, 4]
    assert [e.trace for e in book.find(on=date(2026, 3, 14), amount=10_000)] == [3, 2, 1]
    assert book.find(on=date(2026, 3, 15)) == [] and book.find(last4="9999") == []
    assert [e.trace for e in book.find(order="ORD000001", types=frozenset(TxnType))] == [8, 7, 6, 1]
    open_sale = sale(book.take_trace(), 3, 700, created=T0 + timedelta(days=2))
    book.record_request(open_sale)
    assert book.find(last4="1234")[0] == open_sale


def test_history_and_refunded_total_span_batches(settled_book: Book) -> None:
    book = settled_book
    history = book.history("ORD000001")
    assert [e.trace for e in history.originals] == [1]
    assert [(e.trace, e.batch, e.status) for e in history.entries] == [
        (6, 2, TxnStatus.APPROVED), (7, 3, TxnStatus.DECLINED), (8, 3, TxnStatus.PENDING),
    ]  # fmt: skip
    assert [c.reference for c in history.cash_refunds] == ["C0001"]
    assert book.refunded_total(1, 1) == 3000 + 1000 + 500  # approved + pending + cash; declined not counted
    assert book.refunded_total(1, 2) == 0
    empty = book.history("NO-SUCH-ORDER")
    assert empty.originals == () and empty.entries == () and empty.cash_refunds == ()


def test_lookups_read_archives_without_writing_and_rebuild_a_stale_index(
    settled_book: Book, directory: Path, writes: list[Path]
) -> None:
    index_path(directory, 1).write_text('{"format": "pos-batch-index/1", "batch": 1, "archive_bytes": 3}')
    index_path(directory, 2).unlink()
    before = {p.name: p.read_bytes() for p in (directory / "batches").iterdir()}
    fresh = open_book(directory)
    writes.clear()
    assert [e.trace for e in fresh.find(last4="1234")] == [5, 4, 3, 2, 1]
    assert fresh.refunded_total(1, 1) == 4500
    assert writes == [] and {p.name: p.read_bytes() for p in (directory / "batches").iterdir()} == before


# ----- damage ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[: len(data) // 2], "not JSON"),
        (lambda data: os.urandom(16) + b"\xff\xfe" + data, "not UTF-8"),
        (lambda data: b"[1, 2, 3]", "top level is a JSON list"),
    ],
    ids=["truncated", "garbage", "not tables"],
)
def test_a_damaged_open_file_is_kept_aside_and_the_book_refuses_to_open(
    directory: Path, damage: Any, problem: str
) -> None:
    fill_batch(open_book(directory), 2)
    damaged = damage((directory / "open.json").read_bytes())
    (directory / "open.json").write_bytes(damaged)
    with pytest.raises(DamagedStoreError) as caught:
        open_book(directory)
    assert str(directory / "open.json") in str(caught.value) and problem in str(caught.value)
    kept = Path(caught.value.kept_aside)
    assert kept.parent == directory and kept.name.startswith("open.json.damaged-")
    assert kept.read_bytes() == damaged
    with pytest.raises(StoreError, match=r"kept aside as open\.json\.damaged-"):
        open_book(directory)  # never an empty batch in its place, unless a technician says so
    assert not (directory / "open.json").exists()
    assert open_book(directory, start_empty=True).open_entries() == []


def test_a_missing_open_file_beside_archives_is_refused(directory: Path) -> None:
    book = open_book(directory)
    fill_batch(book, 1)
    book.close_batch(2)
    (directory / "open.json").unlink()
    with pytest.raises(StoreError, match="refusing to start an empty batch"):
        open_book(directory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda doc: doc.update(amount="100.00"), "amount is not a whole number"),
        (lambda doc: doc.update(amount=-5), "amount -5 is outside"),
        (lambda doc: doc.update(created="2026-03-14T15:09:26"), "created has no time zone"),
        (lambda doc: doc.update(status="lost"), "status is not a TxnStatus code"),
        (lambda doc: doc.update(masked_pan="6222021234561234"), "masked_pan is not a masked card number"),
        (lambda doc: doc.pop("order"), "order is not text"),
    ],
)
def test_a_malformed_entry_is_named_with_its_file_and_nothing_changes(
    directory: Path, change: Any, message: str
) -> None:
    book = open_book(directory)
    fill_batch(book, 2)
    edit_on_disk(directory / "open.json", lambda data: change(data["entries"]["2"]))
    before = (directory / "open.json").read_bytes()
    with pytest.raises(StoreError) as caught:
        open_book(directory)
    assert f"{directory / 'open.json'}: entry 000002 is malformed: {message}" in str(caught.value)
    with pytest.raises(StoreError, match="entry 000002 is malformed"):
        book.entry(2)
    assert book.entry(1) is not None
    assert (directory / "open.json").read_bytes() == before


def test_a_malformed_archived_entry_is_named_with_its_archive(settled_book: Book, directory: Path) -> None:
    path = archive_path(directory, 1)
    data = json.loads(path.read_bytes())
    data["entries"][1]["created"] = "yesterday"
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(StoreError) as caught:
        open_book(directory).find(order="ORD000002")
    assert f"{path}: entry 1 (trace 000002) is malformed: created is not an ISO 8601 time" in str(
        caught.value
    )
    assert [e.trace for e in settled_book.find(order="ORD000003")] == [3]  # the others still read
    assert path.read_bytes() == before
    path.write_bytes(before[:100])
    with pytest.raises(StoreError, match=f"{path} is damaged: not JSON"):
        open_book(directory).find(last4="1234")
    assert path.read_bytes() == before[:100]


# ----- the outbox's order ------------------------------------------------------------------------------


def test_armed_reversals_go_first_then_records_in_sequence_one_at_a_time(directory: Path) -> None:
    book = open_book(directory, Clock(), max_attempts=3)
    first = book.outbox.enqueue("advice", {"n": 1})
    second = book.outbox.enqueue("notice", {"n": 2})
    book.record_request(sale(7, 1), reversal(7, armed_at=T0 + timedelta(seconds=5)))
    book.record_request(sale(8, 1), reversal(8, armed_at=T0))
    assert book.outbox.next_to_send() == reversal(8, armed_at=T0)
    assert book.outbox.next_to_send() == reversal(8, armed_at=T0)  # one in flight until it is settled
    for n in (1, 2):
        assert book.outbox.mark_attempt(reversal_id(8), f"timeout {n}").undeliverable is False
    state = book.outbox.mark_attempt(reversal_id(8), "timeout 3")
    assert state.attempts == 3 and state.undeliverable
    assert book.outbox.next_to_send() == reversal(7, armed_at=T0 + timedelta(seconds=5))
    book.outbox.acknowledge(reversal_id(7))
    record = book.outbox.next_to_send()
    assert isinstance(record, OutboxRecord) and record.id == first
    book.outbox.acknowledge(first)
    assert book.outbox.next_to_send().id == second  # type: ignore[union-attr]
    book.outbox.acknowledge(second)
    assert book.outbox.next_to_send() is None
    flagged_reversals, flagged_records = open_book(directory).outbox.flagged()
    assert [(r.trace, r.attempts, r.last_error) for r in flagged_reversals] == [(8, 3, "timeout 3")]
    assert flagged_records == []
