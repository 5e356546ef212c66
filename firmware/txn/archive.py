"""Settled batches: one immutable archive file per batch, and a small index beside it.

Layout, under the book's directory (`ARCHIVE_DIR`, ``batches/``):

- ``batch-NNNNNN.json``: the batch as it was closed::

      {"format": "pos-batch-archive/1", "batch": N, "next_batch": M, "closed": ISO,
       "entries": [JOURNAL ENTRY, ...], "cash_refunds": [CASH REFUND, ...]}

  `next_batch` is the batch the rotation opened, so a rotation cut short by
  a power cut can be finished from the archive alone.
- ``batch-NNNNNN.index.json``: what lookups need, one row per entry and per
  cash refund, so a search reads a few kilobytes per batch and opens an
  archive only for the entries it returns::

      {"format": "pos-batch-index/1", "batch": N, "closed": ISO, "archive_bytes": SIZE,
       "entries": [[trace, type, status, order, rrn, last4, date, amount,
                    original_batch, original_trace, entry_batch, created], ...],
       "cash_refunds": [[position, order, original_batch, original_trace, amount, created], ...]}

Both are written crash-safe (`write_atomically`), the archive first; an
archive is never rewritten (StoreError if one exists for the batch). After
that they are only read: reads are bounded in size, take no lock and never
write. An index that is missing, unreadable or not made for the archive
beside it (its size differs) is rebuilt in memory from the archive. An
archive that cannot be read raises StoreError naming the file (and the entry,
for an entry that is not one the book wrote); nothing is changed on disk.

`Archives` caches each index in memory once read (archives are immutable), so
a lookup over many batches costs a directory listing and dictionary
look-ups; an archive read for its entries is checked against the index row
(same trace at the same place) and re-read when its size or modification
time changed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from firmware.errors import MalformedFileError, StoreError
from firmware.store.atomic_file import write_atomically
from firmware.store.json_guard import load_json
from firmware.txn.documents import (
    MAX_TRACE,
    cash_refund_document,
    cash_refund_from_document,
    entry_document,
    entry_from_document,
    last4,
)
from firmware.txn.model import CashRefund, JournalEntry

__all__ = [
    "ARCHIVE_DIR",
    "MAX_ARCHIVE_BYTES",
    "MAX_INDEX_BYTES",
    "ArchiveIndex",
    "Archives",
    "CashRow",
    "EntryRow",
    "archive_path",
    "index_path",
    "read_archive",
    "write_archive",
]

ARCHIVE_DIR: Final = "batches"
ARCHIVE_FORMAT: Final = "pos-batch-archive/1"
INDEX_FORMAT: Final = "pos-batch-index/1"
MAX_ARCHIVE_BYTES: Final = 64 * 1024 * 1024
MAX_INDEX_BYTES: Final = 16 * 1024 * 1024
_ARCHIVE_NAME: Final = re.compile(r"batch-(\d{6})\.json")
_ARCHIVE_CACHE_SIZE: Final = 8


def archive_path(directory: Path, batch: int) -> Path:
    """The archive of `batch` under the book's directory."""
    return Path(directory) / ARCHIVE_DIR / f"batch-{batch:06d}.json"


def index_path(directory: Path, batch: int) -> Path:
    return Path(directory) / ARCHIVE_DIR / f"batch-{batch:06d}.index.json"


@dataclass(frozen=True)
class EntryRow:
    """One archived journal entry, as the index shows it (`position` in the archive's entry list)."""

    position: int
    trace: int
    type: str
    status: str
    order: str
    rrn: str | None
    last4: str | None
    date: str
    amount: int
    original: tuple[int, int] | None
    batch: int
    created: str


@dataclass(frozen=True)
class CashRow:
    position: int
    order: str
    original: tuple[int, int]
    amount: int
    created: str


@dataclass(frozen=True)
class ArchiveIndex:
    """The index of one archived batch, with look-up tables by order, last four digits and original."""

    batch: int
    closed: datetime
    path: Path
    entries: tuple[EntryRow, ...]
    cash_refunds: tuple[CashRow, ...]
    by_order: dict[str, list[EntryRow]] = field(default_factory=dict, repr=False)
    by_last4: dict[str, list[EntryRow]] = field(default_factory=dict, repr=False)
    by_original: dict[tuple[int, int], list[EntryRow]] = field(default_factory=dict, repr=False)
    cash_by_original: dict[tuple[int, int], list[CashRow]] = field(default_factory=dict, repr=False)
    cash_by_order: dict[str, list[CashRow]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for row in self.entries:
            self.by_order.setdefault(row.order, []).append(row)
            if row.last4:
                self.by_last4.setdefault(row.last4, []).append(row)
            if row.original:
                self.by_original.setdefault(row.original, []).append(row)
        for cash in self.cash_refunds:
            self.cash_by_original.setdefault(cash.original, []).append(cash)
            self.cash_by_order.setdefault(cash.order, []).append(cash)


# ----- writing ----------------------------------------------------------------------------------------


def _dumps(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _entry_row(position: int, document: dict[str, Any]) -> list[Any]:
    created = str(document["created"])
    return [
        document["trace"], document["type"], document["status"], document["order"], document["rrn"],
        last4(document["masked_pan"]), created[:10], document["amount"],
        document["original_batch"], document["original_trace"], document["batch"], created,
    ]  # fmt: skip


def _cash_row(position: int, document: dict[str, Any]) -> list[Any]:
    return [position, document["order"], document["original_batch"], document["original_trace"],
            document["amount"], document["created"]]  # fmt: skip


def write_archive(
    directory: Path,
    batch: int,
    next_batch: int,
    entries: Sequence[JournalEntry],
    cash_refunds: Sequence[CashRefund],
    closed: datetime,
) -> Path:
    """Write the archive of `batch` and then its index, each crash-safe; returns the archive's path.

    StoreError if the batch is already archived (an archive is never rewritten).
    """
    if not 0 <= batch <= MAX_TRACE or not 0 <= next_batch <= MAX_TRACE:
        raise StoreError(f"batch numbers are 0..{MAX_TRACE}: got {batch} and {next_batch}")
    if closed.tzinfo is None:
        raise StoreError("the closing time of a batch must be timezone-aware")
    path = archive_path(directory, batch)
    entry_documents = [entry_document(entry) for entry in sorted(entries, key=lambda e: e.created)]
    cash_documents = [
        cash_refund_document(refund) for refund in sorted(cash_refunds, key=lambda r: r.created)
    ]
    archive = {
        "format": ARCHIVE_FORMAT,
        "batch": batch,
        "next_batch": next_batch,
        "closed": closed.isoformat(),
        "entries": entry_documents,
        "cash_refunds": cash_documents,
    }
    data = _dumps(archive)
    if len(data) > MAX_ARCHIVE_BYTES:
        raise StoreError(f"batch {batch} is too large to archive ({len(data)} bytes)")
    write_atomically(path, data, exclusive=True)
    write_index(directory, batch, archive, len(data))
    return path


def write_index(directory: Path, batch: int, archive: dict[str, Any], archive_bytes: int) -> Path:
    """Write (or write again) the index of an archive already on disk."""
    index = {
        "format": INDEX_FORMAT,
        "batch": batch,
        "closed": archive["closed"],
        "archive_bytes": archive_bytes,
        "entries": [_entry_row(n, doc) for n, doc in enumerate(archive["entries"])],
        "cash_refunds": [_cash_row(n, doc) for n, doc in enumerate(archive["cash_refunds"])],
    }
    path = index_path(directory, batch)
    write_atomically(path, _dumps(index))
    return path


# ----- reading ----------------------------------------------------------------------------------------


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise StoreError(f"{path} is {size} bytes, more than the {limit} an archive file may be")
            # read(n) sets aside n bytes first: ask for what the file holds, not for the limit
            return file.read(size + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc


def _load_json(path: Path, limit: int) -> Any:
    raw = _read_bounded(path, limit)
    try:
        return load_json(raw, str(path))
    except MalformedFileError as exc:
        raise StoreError(f"{path} is damaged: {str(exc).removeprefix(f'{path}: ')}") from None


def read_archive(path: Path) -> dict[str, Any]:
    """The archive document at `path`, its outer shape checked (StoreError naming the file otherwise)."""
    document = _load_json(path, MAX_ARCHIVE_BYTES)
    match = _ARCHIVE_NAME.fullmatch(path.name)
    problem = None
    if not isinstance(document, dict) or document.get("format") != ARCHIVE_FORMAT:
        problem = "it is not a batch archive"
    elif not isinstance(document.get("entries"), list) or not isinstance(document.get("cash_refunds"), list):
        problem = "its entries or cash refunds are not lists"
    elif match is None or document.get("batch") != int(match.group(1)):
        problem = "it holds another batch than its name says"
    elif not isinstance(document.get("next_batch"), int) or not isinstance(document.get("closed"), str):
        problem = "its next batch or closing time is missing"
    else:
        for position, entry in enumerate(document["entries"]):
            if not isinstance(entry, dict) or not isinstance(entry.get("trace"), int):
                problem = f"entry {position} is not a journal entry"
                break
    if problem:
        raise StoreError(f"{path} is malformed: {problem}; nothing was changed")
    return document  # type: ignore[no-any-return]


def _closed_time(text: object, path: Path) -> datetime:
    try:
        closed = datetime.fromisoformat(str(text))
    except ValueError:
        raise StoreError(f"{path} is malformed: its closing time is not an ISO 8601 time") from None
    if closed.tzinfo is None:
        raise StoreError(f"{path} is malformed: its closing time has no time zone")
    return closed


def _pair(batch: object, trace: object) -> tuple[int, int] | None:
    return (batch, trace) if isinstance(batch, int) and isinstance(trace, int) else None


def _index_from(document: dict[str, Any], batch: int, path: Path) -> ArchiveIndex:
    """An ArchiveIndex from an index document (ValueError / TypeError / KeyError if it is not one)."""
    rows = []
    for position, row in enumerate(document["entries"]):
        trace, kind, status, order, rrn, four, date, amount, ob, ot, entry_batch, created = row
        if not (isinstance(trace, int) and isinstance(order, str) and isinstance(amount, int)):
            raise ValueError("an index row is not one the book wrote")
        rows.append(
            EntryRow(
                position, trace, sys.intern(str(kind)), sys.intern(str(status)), order, rrn, four,
                sys.intern(str(date)), amount, _pair(ob, ot), int(entry_batch), str(created),
            )
        )  # fmt: skip
    cash = []
    for row in document["cash_refunds"]:
        position, order, ob, ot, amount, created = row
        original = _pair(ob, ot)
        if original is None or not isinstance(amount, int) or not isinstance(position, int):
            raise ValueError("a cash refund row is not one the book wrote")
        cash.append(CashRow(position, str(order), original, amount, str(created)))
    return ArchiveIndex(batch, _closed_time(document["closed"], path), path, tuple(rows), tuple(cash))


def _index_of_archive(archive: dict[str, Any], batch: int, path: Path) -> ArchiveIndex:
    """An index built in memory from the archive itself (the index file was missing or stale)."""
    try:
        document = {
            "closed": archive["closed"],
            "entries": [_entry_row(n, doc) for n, doc in enumerate(archive["entries"])],
            "cash_refunds": [_cash_row(n, doc) for n, doc in enumerate(archive["cash_refunds"])],
        }
        return _index_from(document, batch, path)
    except (KeyError, TypeError, ValueError):
        # Find the entry that breaks it, to name it.
        for position, doc in enumerate(archive["entries"]):
            entry_from_document(doc, f"{path}: entry {position}")
        for position, doc in enumerate(archive["cash_refunds"]):
            cash_refund_from_document(doc, f"{path}: cash refund {position}")
        raise StoreError(f"{path} is malformed: its entries cannot be indexed; nothing was changed") from None


class Archives:
    """Read-only access to the settled batches under `directory` (the book's directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory) / ARCHIVE_DIR
        self._book_directory = Path(directory)
        self._indexes: dict[int, ArchiveIndex] = {}
        self._archives: dict[int, tuple[tuple[int, int], dict[str, Any]]] = {}

    def batches(self) -> list[int]:
        """The archived batch numbers, in no particular order."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.directory}: {exc.strerror}") from exc
        return [int(m.group(1)) for name in names if (m := _ARCHIVE_NAME.fullmatch(name))]

    def exists(self, batch: int) -> bool:
        return archive_path(self._book_directory, batch).exists()

    def _stamp(self, batch: int) -> tuple[int, int]:
        try:
            stat = archive_path(self._book_directory, batch).stat()
        except OSError as exc:
            raise StoreError(f"cannot read the archive of batch {batch}: {exc.strerror}") from exc
        return stat.st_size, stat.st_mtime_ns

    def index(self, batch: int) -> ArchiveIndex:
        """The index of one archived batch (from its index file, or rebuilt from the archive)."""
        cached = self._indexes.get(batch)
        if cached is not None:
            return cached
        stamp = self._stamp(batch)
        path = archive_path(self._book_directory, batch)
        index: ArchiveIndex | None = None
        try:
            document = _load_json(index_path(self._book_directory, batch), MAX_INDEX_BYTES)
            if (
                isinstance(document, dict)
                and document.get("format") == INDEX_FORMAT
                and document.get("batch") == batch
                and document.get("archive_bytes") == stamp[0]
            ):
                index = _index_from(document, batch, path)
        except (FileNotFoundError, StoreError, KeyError, TypeError, ValueError):
            index = None  # missing, damaged or stale: the archive itself is the truth
        if index is None:
            index = _index_of_archive(self.archive(batch), batch, path)
        self._indexes[batch] = index
        return index

    def indexes(self) -> list[ArchiveIndex]:
        """Every archived batch's index, newest closed first."""
        indexes = [self.index(batch) for batch in self.batches()]
        return sorted(indexes, key=lambda index: (index.closed, index.batch), reverse=True)

    def archive(self, batch: int) -> dict[str, Any]:
        """The archive document of `batch` (a few recently read ones are kept in memory)."""
        stamp = self._stamp(batch)
        cached = self._archives.get(batch)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        document = read_archive(archive_path(self._book_directory, batch))
        if len(self._archives) >= _ARCHIVE_CACHE_SIZE:
            self._archives.pop(next(iter(self._archives)))
        self._archives[batch] = (stamp, document)
        return document

    def entries(self, batch: int, rows: Iterable[EntryRow]) -> Iterator[JournalEntry]:
        """The archived entries that `rows` (of this batch's index) point at, each validated."""
        archive = self.archive(batch)
        path = archive_path(self._book_directory, batch)
        for row in rows:
            documents = archive["entries"]
            document = documents[row.position] if row.position < len(documents) else None
            entry = entry_from_document(document, f"{path}: entry {row.position} (trace {row.trace:06d})")
            if entry.trace != row.trace:
                raise StoreError(f"{path}: entry {row.position} is not the one its index names")
            yield entry

    def cash_refunds(self, batch: int, rows: Iterable[CashRow]) -> Iterator[CashRefund]:
        archive = self.archive(batch)
        path = archive_path(self._book_directory, batch)
        for row in rows:
            documents = archive["cash_refunds"]
            document = documents[row.position] if row.position < len(documents) else None
            yield cash_refund_from_document(document, f"{path}: cash refund {row.position}")
