"""Fuzzing the books at rest: journal entries, cash refunds, armed reversals, outbox records, open.json.

- `entry_from_document`, `cash_refund_from_document`, `reversal_from_document`
  (firmware/txn/documents.py) over near misses of documents the book wrote: the
  object, or StoreError naming the place; an object they accept is one the book
  can write again (its `*_document` raises nothing but a PosError);
- an outbox document through `_check_shape` and the signature check: the
  record, the outbox's own "malformed" (the caller sets it aside), or a
  TamperedRecordError;
- a whole open-batch file (`txn/open.json`), damaged as JSON and as bytes, opened
  and read through the Book: every read answers or raises a StoreError
  (DamagedStoreError: the file kept aside), nothing else.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware.txn import outbox
from firmware.txn.documents import (
    cash_refund_document,
    cash_refund_from_document,
    entry_document,
    entry_from_document,
    reversal_document,
    reversal_from_document,
)
from tests.fuzz_targets import (
    bounded,
    fuzz_settings,
    json_bytes,
    mutated_json,
    mutated_text,
    open_batch_file,
    read_whole_book,
)
from tests.txn_fixtures import DEVICE, T0, cash_refund_of, open_book, refund_of, reversal, sale

SALE = sale(7, 1, 12_345)
ENTRY_DOCUMENTS = [
    entry_document(SALE),
    entry_document(refund_of(SALE, 8, 1, 2_000)),
]
CASH_DOCUMENT = cash_refund_document(cash_refund_of(SALE, "C000001000001", 1_000, T0))
REVERSAL_DOCUMENT = reversal_document(reversal(7, 12_345))

_READERS: dict[str, tuple[Callable[[object, str], Any], Callable[[Any], Any]]] = {
    "entry": (entry_from_document, entry_document),
    "cash refund": (cash_refund_from_document, cash_refund_document),
    "reversal": (reversal_from_document, reversal_document),
}


def _documents(kind: str) -> st.SearchStrategy[tuple[str, Any]]:
    originals = {"entry": ENTRY_DOCUMENTS, "cash refund": [CASH_DOCUMENT], "reversal": [REVERSAL_DOCUMENT]}
    return st.tuples(st.just(kind), st.sampled_from(originals[kind]).flatmap(mutated_json))


@fuzz_settings(400)
@given(st.sampled_from(sorted(_READERS)).flatmap(_documents))
def test_a_stored_document_reads_back_or_is_refused_naming_its_place(case: tuple[str, Any]) -> None:
    kind, document = case
    read, write = _READERS[kind]

    def read_and_write_again() -> object:
        return write(read(document, "open.json: fuzz"))

    outcome = bounded(f"books {kind} from_document", read_and_write_again)
    assert not isinstance(outcome, str) or outcome in ("StoreError", "SensitiveDataError"), outcome


def _outbox_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        book = open_book(Path(scratch))
        book.outbox.enqueue("notice", {"order": "A1", "amount": 1_000, "type": "refund"})
        document: dict[str, Any] = json.loads(book.path.read_text())["outbox"]["1"]
        book.close()
    return document


OUTBOX_DOCUMENT = _outbox_document()


@fuzz_settings(400)
@given(mutated_json(OUTBOX_DOCUMENT), st.sampled_from([1, 1, 2, 0]))
def test_an_outbox_document_is_a_verified_record_or_set_aside(document: Any, doc_id: int) -> None:
    def read() -> object:
        try:
            if not isinstance(document, dict):
                return "not an object"
            outbox._check_shape(doc_id, document)
            return outbox._outbox_record(doc_id, document, DEVICE.public_key())
        except outbox._Malformed:
            return "malformed"

    outcome = bounded("outbox record", read)
    assert not isinstance(outcome, str) or outcome in ("not an object", "malformed", "TamperedRecordError")


OPEN_BATCH = open_batch_file()


@fuzz_settings(200)
@given(mutated_json(json.loads(OPEN_BATCH)).map(json_bytes) | mutated_text(OPEN_BATCH))
def test_a_damaged_open_batch_file_opens_or_is_kept_aside(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "open.json").write_bytes(raw)
        outcome = bounded("books open.json", lambda: read_whole_book(directory))
        if outcome == "DamagedStoreError":
            assert any(p.name.startswith("open.json.damaged-") for p in directory.iterdir())
    assert not isinstance(outcome, str) or outcome in (
        "StoreError",
        "DamagedStoreError",
        "TamperedRecordError",
    )
