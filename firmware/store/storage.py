"""A TinyDB storage that survives a power cut and never loses a damaged file.

TinyDB's own `JSONStorage` rewrites its file in place, so a cut in the middle
can leave half a file. This storage writes the whole state through
`write_atomically` (temp file, fsync, rename over, fsync the directory): the
file holds the old state or the new one, never a mix.

A file that is not a readable store (larger than `MAX_STORE_FILE_BYTES`,
not UTF-8, not JSON as `json_guard` reads it: no NaN, no deep nesting, no
huge number; not tables of numbered documents) is never replaced by an empty database: it is renamed to
`NAME.damaged-<timestamp>` next to it, and `DamagedStoreError` names both
files. The next read starts from an empty store; the kept-aside file is there
for the technician.

`transaction()` makes a read-modify-write (any number of TinyDB operations,
across tables) one step: it holds the file's inter-process lock, later reads
see the block's own writes, and the new state is written once, at the end,
only if the block did not raise. A read or write outside a transaction is a
transaction of its own.

Each transaction reads the file again (another process may have changed it),
but parses it only when its bytes differ from the ones this storage last
wrote or parsed: the parsed state is kept with those bytes, and dropped when
a block raises (its changes were made in place and never written). So a
caller changes what `read` returns only through `write` (as TinyDB does).

Writing serialises the whole state (compact JSON, UTF-8). With
`keep_encodings`, a document that is the same object as at the last write
is not encoded again: its text is kept with the object it was made from, so
a write costs the encoding of the documents it changed plus the joining of
the others' texts; the bytes are exactly `json.dumps` of the whole state.
That rests on one promise of the caller, which `firmware.store.tables`
keeps and plain TinyDB does not (its `update` changes documents in place):
a stored document is never changed in place, a changed one is a new object.

With a guard (`firmware.store.guard.FileGuard`, the anti-rollback record),
every read checks the file's bytes against it, under the file's lock (an
older copy put back, an edit, a file missing while it existed: the guard's
RolledBackError, and the file is left where it is), and every write goes
through the guard's own crash-safe step with the facts `facts` takes from the
new state. A file that does not parse is kept aside as above either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

from tinydb.storages import Storage

from firmware.clocks import WallClock
from firmware.errors import DamagedStoreError, MalformedFileError, StoreError
from firmware.store.atomic_file import fsync_dir, locked, write_atomically
from firmware.store.guard import Facts, FileGuard
from firmware.store.json_guard import load_json, read_bounded

__all__ = ["DAMAGED_SUFFIX", "MAX_STORE_FILE_BYTES", "CrashSafeStorage", "StoreData"]

StoreData = dict[str, dict[str, Any]]

DAMAGED_SUFFIX: Final = ".damaged-"
# Each store file stays small (the batch and the queue rotate); a larger one is not a store of this terminal.
MAX_STORE_FILE_BYTES: Final = 64 * 1024 * 1024
_NOT_READ: Final = object()


def _shape_problem(data: object) -> str | None:
    """Why `data` is not a TinyDB state (tables of documents under decimal ids), or None."""
    if not isinstance(data, dict):
        return f"top level is a JSON {type(data).__name__}, not an object of tables"
    for table_name, table in data.items():
        if not isinstance(table, dict):
            return f"table {table_name!r} is not an object of documents"
        for doc_id, document in table.items():
            if not (doc_id.isascii() and doc_id.isdigit()):
                return f"table {table_name!r} has a document id that is not a number"
            if not isinstance(document, dict):
                return f"table {table_name!r} document {doc_id} is not an object"
    return None


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class CrashSafeStorage(Storage):
    """TinyDB storage over one small JSON file, written crash-safe; `clock` dates a damaged file.

    `keep_encodings`: the caller never changes a stored document in place, so each document's
    JSON text may be kept with it and reused by the next writes (see the module's docstring).
    """

    def __init__(
        self,
        path: Path,
        clock: WallClock,
        *,
        keep_encodings: bool = False,
        guard: FileGuard | None = None,
        facts: Callable[[StoreData], Facts] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self._clock = clock
        self._guard = guard
        self._facts = facts
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._state: object = _NOT_READ
        self._dirty = False
        self._parsed: tuple[bytes, StoreData] | None = None  # the file's last known bytes, as parsed
        self._keep_encodings = keep_encodings
        # (table, document id) -> (the document object, '"id":' + its JSON) as of the last write
        self._encoded: dict[tuple[str, str], tuple[object, str]] = {}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the file's lock; write the state once at the end, and only if the block did not raise.

        A transaction inside a transaction (same thread) is part of the outer one.
        """
        with self._thread_lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with locked(self.path):
                self._depth, self._state, self._dirty = 1, _NOT_READ, False
                try:
                    yield
                    if self._dirty:
                        assert isinstance(self._state, dict)
                        data = self._serialise(self._state)
                        self._parsed = None
                        if self._guard is None:
                            write_atomically(self.path, data)
                        else:
                            self._guard.write(data, self._facts(self._state) if self._facts else {})
                        self._parsed = (data, self._state)
                except BaseException:
                    self._parsed = None  # the block may have changed the parsed state in place
                    raise
                finally:
                    self._depth, self._state, self._dirty = 0, _NOT_READ, False

    def read(self) -> StoreData | None:
        """The stored state; None for a missing or empty file (DamagedStoreError for an unreadable one)."""
        with self.transaction():
            if self._state is _NOT_READ:
                self._state = self._load()
            return self._state  # type: ignore[return-value]

    def write(self, data: StoreData) -> None:
        with self.transaction():
            self._state, self._dirty = data, True

    def _serialise(self, data: StoreData) -> bytes:
        try:
            return self._encode(data).encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
            self._encoded = {}
            raise StoreError(f"cannot write {self.path}: the data is not plain JSON ({exc})") from exc

    def _encode(self, data: StoreData) -> str:
        """`json.dumps(data)` (compact), reusing the text of each document unchanged since the last write."""
        if not self._keep_encodings or not isinstance(data, dict) or not all(
            isinstance(name, str) and isinstance(table, dict) for name, table in data.items()
        ):
            return _dumps(data)
        encoded: dict[tuple[str, str], tuple[object, str]] = {}
        known = self._encoded
        tables = []
        for name, table in data.items():
            documents = []
            for doc_id, document in table.items():
                if not isinstance(doc_id, str):
                    return _dumps(data)
                key = (name, doc_id)
                kept = known.get(key)
                if kept is None or kept[0] is not document:
                    kept = (document, f"{_dumps(doc_id)}:{_dumps(document)}")
                encoded[key] = kept
                documents.append(kept[1])
            tables.append(f"{_dumps(name)}:{{{','.join(documents)}}}")
        self._encoded = encoded
        return f"{{{','.join(tables)}}}"

    def _load(self) -> StoreData | None:
        try:
            raw: bytes | None = read_bounded(self.path, MAX_STORE_FILE_BYTES)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from exc
        except MalformedFileError:
            self._keep_aside(f"larger than {MAX_STORE_FILE_BYTES} bytes")
        if not raw:
            if self._guard is not None:
                self._guard.verify(raw, holding_lock=True)
            return None
        if self._parsed is not None and self._parsed[0] == raw:
            if self._guard is not None:
                self._guard.verify(raw, holding_lock=True)  # the same bytes may be put back later
            return self._parsed[1]
        self._parsed = None
        try:
            data = load_json(raw, str(self.path))
        except MalformedFileError as exc:
            problem = str(exc).removeprefix(f"{self.path}: ")
        else:
            shape_problem = _shape_problem(data)
            if shape_problem is None:
                if self._guard is not None:
                    self._guard.verify(raw, holding_lock=True)
                self._parsed = (raw, data)
                return data  # type: ignore[no-any-return]
            problem = shape_problem
        self._keep_aside(problem)

    def _keep_aside(self, problem: str) -> NoReturn:
        """Rename the damaged file out of the way (under the file's lock) and raise DamagedStoreError."""
        stamp = self._clock().strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}{DAMAGED_SUFFIX}{stamp}")
        number = 1
        while os.path.lexists(aside):
            number += 1
            aside = self.path.with_name(f"{self.path.name}{DAMAGED_SUFFIX}{stamp}-{number}")
        try:
            os.rename(self.path, aside)
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise StoreError(
                f"{self.path} is damaged ({problem}) and could not be kept aside: {exc.strerror}"
            ) from exc
        raise DamagedStoreError(
            f"{self.path} is damaged ({problem}); it was kept aside as {aside.name}, nothing deleted; "
            "the store starts again empty",
            str(self.path),
            str(aside),
        )
