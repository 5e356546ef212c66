"""A TinyDB storage that survives a power cut and never loses a damaged file.

TinyDB's own `JSONStorage` rewrites its file in place, so a cut in the middle
can leave half a file. This storage writes the whole state through
`write_atomically` (temp file, fsync, rename over, fsync the directory): the
file holds the old state or the new one, never a mix.

A file that is not a readable store (not UTF-8, not JSON, not tables of
numbered documents) is never replaced by an empty database: it is renamed to
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
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NoReturn

from tinydb.storages import Storage

from firmware.clocks import WallClock
from firmware.errors import DamagedStoreError, StoreError
from firmware.store.atomic_file import fsync_dir, locked, write_atomically

__all__ = ["DAMAGED_SUFFIX", "CrashSafeStorage", "StoreData"]

StoreData = dict[str, dict[str, Any]]

DAMAGED_SUFFIX: Final = ".damaged-"
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


class CrashSafeStorage(Storage):
    """TinyDB storage over one small JSON file, written crash-safe; `clock` dates a damaged file."""

    def __init__(self, path: Path, clock: WallClock) -> None:
        super().__init__()
        self.path = Path(path)
        self._clock = clock
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._state: object = _NOT_READ
        self._dirty = False
        self._parsed: tuple[bytes, StoreData] | None = None  # the file's last known bytes, as parsed

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
                        write_atomically(self.path, data)
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
            text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            return text.encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
            raise StoreError(f"cannot write {self.path}: the data is not plain JSON ({exc})") from exc

    def _load(self) -> StoreData | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from exc
        if not raw:
            return None
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[1]
        self._parsed = None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problem = f"not UTF-8 at byte {exc.start}"
        except json.JSONDecodeError as exc:
            problem = f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        except ValueError:
            problem = "not JSON: a number too long to read"
        except RecursionError:
            problem = "not JSON: nested too deep"
        else:
            shape_problem = _shape_problem(data)
            if shape_problem is None:
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
