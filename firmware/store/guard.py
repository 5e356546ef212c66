"""What the store asks of an anti-rollback guard: check a file read, and write it in the guarded step.

The store knows nothing of what guards it (`firmware.keys.monotonic` implements this with a sealed
record). A guard belongs to one file:

- `verify(data, holding_lock=...)`: `data` is the file's bytes as read (None: the file is missing);
  RolledBackError unless they are the file's current state. `holding_lock` says whether the caller
  holds the file's lock (`firmware.store.atomic_file.locked`): a guard may only repair its own
  bookkeeping (finish a write a power cut interrupted) under it.
- `write(data, facts)`: replace the file with `data` (the caller holds the file's lock), together
  with the facts that may only move forward; after a power cut at any point, the file is the old or
  the new one and `verify` accepts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["Facts", "FileGuard"]

Facts = Mapping[str, object]


class FileGuard(Protocol):
    def verify(self, data: bytes | None, *, holding_lock: bool) -> None: ...

    def write(self, data: bytes, facts: Facts) -> None: ...
