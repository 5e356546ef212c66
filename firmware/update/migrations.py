"""Numbered migrations of the data directory: each runs once, in order, and survives a kill.

The data directory (queue, journal, keys, passwords, the anti-rollback
counter) lives outside the slots: an update never replaces it and a rollback
never takes it back. When a new firmware needs it in another shape, it ships
a migration:

    Migration(number, name, apply)    apply(data_dir) moves the data forward

`run_migrations` runs, in increasing number, every migration not yet in
DATA_DIR/migrations.json ({"applied": [1, 2, ...]}), recording each one
(atomic replace) right after it returns, all under the record's lock. A kill
between a migration's work and its record makes it run again: so each
`apply` must be idempotent and crash-safe on its own (write new files with
`write_atomically`, remove the old ones only after, and accept finding its
work half done or done).

Migrations only add (new files, new fields a previous firmware ignores):
after a rollback, the older firmware still reads the data. Numbers in the
record that this firmware does not know come from a newer one; they are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.errors import MalformedFileError, MigrationError, PosError, StoreError
from firmware.store.atomic_file import ensure_private_dir, locked, write_atomically
from firmware.store.json_guard import load_json

__all__ = [
    "MIGRATIONS",
    "MIGRATIONS_FILE",
    "Migration",
    "applied_migrations",
    "pending_migrations",
    "run_migrations",
]

MIGRATIONS_FILE: Final = "migrations.json"
_MAX_RECORD: Final = 64 << 10


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    apply: Callable[[Path], None]


def _update_directory(data_dir: Path) -> None:
    """1: DATA_DIR/update, private, for the trusted image keys and the anti-rollback counter."""
    ensure_private_dir(data_dir / "update")


MIGRATIONS: Final[tuple[Migration, ...]] = (Migration(1, "update directory", _update_directory),)


def _record_path(data_dir: Path) -> Path:
    return Path(data_dir) / MIGRATIONS_FILE


def applied_migrations(data_dir: Path) -> frozenset[int]:
    """The numbers recorded as done. Raises MigrationError when the record is damaged."""
    path = _record_path(data_dir)
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_RECORD + 1)
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise MigrationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        applied = load_json(raw, str(path))["applied"]
        if not isinstance(applied, list) or not all(type(n) is int for n in applied):
            raise TypeError
    except (MalformedFileError, KeyError, TypeError):
        raise MigrationError(f"{path} is damaged: not a list of migration numbers") from None
    return frozenset(applied)


def _check_order(migrations: Sequence[Migration]) -> None:
    numbers = [m.number for m in migrations]
    if numbers != sorted(set(numbers)) or any(n < 1 for n in numbers):
        raise MigrationError(f"migrations must be numbered 1, 2, ... once each, in order: {numbers}")


def pending_migrations(data_dir: Path, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    _check_order(migrations)
    done = applied_migrations(data_dir)
    return [m for m in migrations if m.number not in done]


def run_migrations(data_dir: Path, migrations: Sequence[Migration] = MIGRATIONS) -> list[Migration]:
    """Run what is pending, each recorded as soon as it is done; returns those run.

    Raises MigrationError naming the migration that failed (those before it stay recorded).
    """
    data_dir = Path(data_dir)
    _check_order(migrations)
    ensure_private_dir(data_dir)
    path = _record_path(data_dir)
    ran: list[Migration] = []
    with locked(path):
        done = set(applied_migrations(data_dir))
        for migration in migrations:
            if migration.number in done:
                continue
            try:
                migration.apply(data_dir)
            except (PosError, OSError) as exc:
                label = f"migration {migration.number} ({migration.name})"
                raise MigrationError(f"{label} failed: {exc}") from exc
            done.add(migration.number)
            try:
                write_atomically(path, (json.dumps({"applied": sorted(done)}) + "\n").encode("ascii"))
            except StoreError as exc:
                raise MigrationError(f"migration {migration.number} done but not recorded: {exc}") from exc
            ran.append(migration)
    return ran
