"""Named tables of JSON documents in one crash-safe TinyDB file: the store's face for the layers above.

The store knows nothing of what it keeps: a table is a name, a document is a
JSON object filed under a positive integer key (the TinyDB document id), and
the caller gives every key. This is the only way `firmware/txn` reaches
TinyDB (DESIGN: only `firmware/store/` imports `tinydb`).

Every change happens inside `transaction()` (or is a transaction of its own):
under the file's inter-process lock, later reads see the block's own writes,
and the whole state is written once, crash-safe, at the end of the outermost
block, only if it did not raise (`CrashSafeStorage`). A file that does not
load at open is kept aside and named (`DamagedStoreError`): opening fails,
and nothing is replaced by an empty store behind the caller's back. A guard
(the anti-rollback record) checks every read and takes part in every write
(`CrashSafeStorage`).

Documents handed out are copies (deep enough that changing one changes
nothing stored); documents handed in must be plain JSON data (checked when
the file is written: `StoreError`). A stored document is never changed in
place (`put` files a new object), so the storage encodes only the documents
a write changed and reuses the text of the others (`keep_encodings`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document, Table

from firmware.errors import StoreError
from firmware.store.guard import Facts, FileGuard
from firmware.store.storage import DAMAGED_SUFFIX, CrashSafeStorage, StoreData

__all__ = ["DocumentTables"]


class DocumentTables:
    """Tables of JSON documents under integer keys, in one crash-safe file at `path`.

    Opening reads the file once: a damaged one raises `DamagedStoreError` here
    (kept aside next to it), not at first use.
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], datetime],
        *,
        guard: FileGuard | None = None,
        facts: Callable[[StoreData], Facts] | None = None,
    ) -> None:
        self.path = Path(path)
        # put never changes a document in place: their encodings may be kept between writes
        self._storage = CrashSafeStorage(self.path, clock, keep_encodings=True, guard=guard, facts=facts)
        self._db = TinyDB(storage=lambda: self._storage)
        self._storage.read()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One read-modify-write of the file: one crash-safe write at the end (none if nothing changed)."""
        with self._storage.transaction():
            yield

    def _table(self, name: str) -> Table:
        return self._db.table(name, cache_size=0)

    def _raw(self, name: str) -> Mapping[str, Any]:
        tables = self._storage.read() or {}
        table = tables.get(name, {})
        return table if isinstance(table, dict) else {}

    # ----- reading ------------------------------------------------------------------------------------

    def table_names(self) -> set[str]:
        with self.transaction():
            return set((self._storage.read() or {}).keys())

    def get(self, table: str, key: int) -> dict[str, Any] | None:
        """A copy of the document under `key`, or None."""
        with self.transaction():
            document = self._raw(table).get(str(key))
            return copy.deepcopy(document) if isinstance(document, dict) else None

    def contains(self, table: str, key: int) -> bool:
        with self.transaction():
            return str(key) in self._raw(table)

    def keys(self, table: str) -> list[int]:
        """The keys of a table, lowest first."""
        with self.transaction():
            return sorted(int(key) for key in self._raw(table))

    def all(self, table: str) -> list[tuple[int, dict[str, Any]]]:
        """Copies of every document of a table with its key, lowest key first."""
        with self.transaction():
            raw = self._raw(table)
            return [(key, copy.deepcopy(raw[str(key)])) for key in sorted(int(k) for k in raw)]

    # ----- changing -----------------------------------------------------------------------------------

    def put(self, table: str, key: int, document: Mapping[str, Any]) -> None:
        """File `document` under `key`, replacing whatever was there."""
        if isinstance(key, bool) or not isinstance(key, int) or key < 1:
            raise StoreError(f"{self.path}: a document key must be a positive integer, got {key!r}")
        new = copy.deepcopy(dict(document))
        with self.transaction():
            target = self._table(table)
            if str(key) in self._raw(table):
                # A new object in place of the old one, never the old one changed (the storage keeps
                # each document's encoding by identity).
                target.remove(doc_ids=[key])
            target.insert(Document(new, doc_id=key))

    def remove(self, table: str, key: int) -> bool:
        """Remove the document under `key`; False if there was none."""
        with self.transaction():
            if str(key) not in self._raw(table):
                return False
            self._table(table).remove(doc_ids=[key])
            return True

    def clear(self, table: str) -> None:
        """Remove every document of a table."""
        with self.transaction():
            if self._raw(table):
                self._table(table).truncate()

    def next_key(self, table: str) -> int:
        """One more than the highest key in use in a table (1 for an empty one)."""
        with self.transaction():
            return max((int(key) for key in self._raw(table)), default=0) + 1

    # ----- technician view ----------------------------------------------------------------------------

    def damaged_files(self) -> list[Path]:
        """Earlier versions of this file that could not be read, kept aside next to it."""
        return sorted(self.path.parent.glob(f"{self.path.name}{DAMAGED_SUFFIX}*"))
