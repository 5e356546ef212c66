"""Document tables: what reaches the file after any mix of changes, by this writer and another one.

The file is read as plain JSON and held against a model (a dict of dicts kept by the test). Each
write must also be exactly the compact `json.dumps` of what it holds: the storage reuses the text
of documents a write did not change, and that must never show.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from firmware.store.tables import DocumentTables

Model = dict[str, dict[int, dict[str, Any]]]


def _clock() -> datetime:
    return datetime(2026, 3, 14, 15, 9, 26)


def _on_disk(path: Path) -> Model:
    raw = path.read_bytes()
    data = json.loads(raw)
    compact = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    assert raw == compact, "the file is not the compact JSON of what it holds"
    return {name: {int(key): doc for key, doc in table.items()} for name, table in data.items() if table}


def _expected(model: Model) -> Model:
    return {name: dict(table) for name, table in model.items() if table}


def test_any_mix_of_changes_from_two_writers_reaches_the_file_exactly(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    writers = [DocumentTables(path, _clock), DocumentTables(path, _clock)]
    rng = random.Random(20260314)
    model: Model = {}
    for step in range(400):
        tables = rng.choice(writers)
        name = rng.choice(("entries", "outbox", "meta"))
        key = rng.randint(1, 12)
        action = rng.choices(("put", "remove", "clear", "failed", "group"), (10, 3, 1, 1, 2))[0]
        if action == "put":
            document = {"step": step, "text": rng.choice(("张三", "a\"b", "x" * rng.randint(0, 40)))}
            tables.put(name, key, document)
            document["step"] = -1  # what the caller does with its own copy afterwards changes nothing
            model.setdefault(name, {})[key] = {**document, "step": step}
        elif action == "remove":
            assert tables.remove(name, key) == (key in model.get(name, {}))
            model.get(name, {}).pop(key, None)
        elif action == "clear":
            tables.clear(name)
            model.pop(name, None)
        elif action == "failed":
            with pytest.raises(RuntimeError), tables.transaction():
                tables.put(name, key, {"never": step})
                tables.remove(name, rng.randint(1, 12))
                raise RuntimeError("the block fails: nothing of it is written")
        else:
            with tables.transaction():  # several changes, one write
                for _ in range(3):
                    other = rng.randint(1, 12)
                    tables.put(name, other, {"group": step, "n": other})
                    model.setdefault(name, {})[other] = {"group": step, "n": other}
        if path.exists():
            assert _on_disk(path) == _expected(model), f"step {step} ({action})"
        for reader in writers:
            assert {n: dict(reader.all(n)) for n in model if model[n]} == _expected(model), f"step {step}"
