"""The crash-safe TinyDB storage: what reaches the disk, what a power cut leaves, a damaged file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest
from tinydb import TinyDB
from tinydb.table import Document

from firmware.errors import DamagedStoreError, StoreError
from firmware.store import atomic_file
from firmware.store import storage as storage_module
from firmware.store.storage import CrashSafeStorage
from tests.power_cut import ARM_POWER_CUT

REPO = Path(__file__).resolve().parent.parent


def _clock() -> datetime:
    return datetime(2026, 3, 14, 15, 9, 26)


def _open(path: Path) -> TinyDB:
    return TinyDB(path, clock=_clock, storage=CrashSafeStorage)


def _storage(db: TinyDB) -> CrashSafeStorage:
    storage = db.storage
    assert isinstance(storage, CrashSafeStorage)
    return storage


def test_missing_and_empty_files_read_as_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    assert CrashSafeStorage(path, _clock).read() is None
    assert not path.exists()  # reading creates nothing
    path.write_bytes(b"")
    assert CrashSafeStorage(path, _clock).read() is None
    assert _open(path).table("t").all() == []


def test_written_state_is_plain_json_read_back_by_a_fresh_storage(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.json"
    db = _open(path)
    db.table("queue").insert({"amount": 500, "applicant": "张三"})
    db.table("meta").insert({"next": 2})
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk == {"queue": {"1": {"amount": 500, "applicant": "张三"}}, "meta": {"1": {"next": 2}}}
    assert "张三" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes
    assert _open(path).table("queue").all() == [{"amount": 500, "applicant": "张三"}]
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)


def test_a_transaction_is_one_write_and_a_failed_one_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.json"
    db = _open(path)
    db.table("queue").insert({"n": 0})
    before = path.read_bytes()
    writes: list[bytes] = []
    real_write = atomic_file.write_atomically

    def counting_write(target: Path, data: bytes, *, exclusive: bool = False) -> None:
        writes.append(data)
        real_write(target, data, exclusive=exclusive)

    monkeypatch.setattr(storage_module, "write_atomically", counting_write)
    with pytest.raises(RuntimeError, match="between two changes"):
        with _storage(db).transaction():
            db.table("queue").insert(Document({"n": 1}, doc_id=2))
            assert [doc["n"] for doc in db.table("queue").all()] == [0, 1]  # the block sees its own writes
            raise RuntimeError("between two changes")
    assert writes == [] and path.read_bytes() == before
    with _storage(db).transaction():
        db.table("queue").insert(Document({"n": 1}, doc_id=2))
        db.table("queue").update({"n": 10}, doc_ids=[1])
        db.table("meta").insert({"next": 3})
        with _storage(db).transaction():  # an inner transaction is part of the outer one
            db.table("queue").remove(doc_ids=[2])
    assert len(writes) == 1
    assert json.loads(writes[0]) == {"queue": {"1": {"n": 10}}, "meta": {"1": {"next": 3}}}


def test_data_that_is_not_plain_json_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    db = _open(path)
    db.table("queue").insert({"n": 1})
    before = path.read_bytes()
    for bad in ({"set": {1, 2}}, {"amount": float("nan")}, {"text": "\ud800"}):
        with pytest.raises(StoreError, match=r"cannot write .*store\.json: the data is not plain JSON"):
            db.table("queue").insert(bad)
        assert path.read_bytes() == before


DAMAGED = {
    "truncated": (b'{"queue":{"1":{"amount":500},"2":{"amo', "not JSON: "),
    "not UTF-8": (b'{"queue":{"1":{"name":"\xff"}}}', "not UTF-8 at byte 23"),
    "a list": (b"[1, 2, 3]", "top level is a JSON list"),
    "a table that is a list": (b'{"queue": [1]}', "table 'queue' is not an object of documents"),
    "a document id that is not a number": (b'{"queue": {"x": {}}}', "document id that is not a number"),
    "a document that is not an object": (b'{"queue": {"1": 5}}', "document 1 is not an object"),
}


@pytest.mark.parametrize("name", DAMAGED)
def test_a_damaged_file_is_reported_by_name_and_kept_aside_never_emptied(tmp_path: Path, name: str) -> None:
    path = tmp_path / "store.json"
    content, problem = DAMAGED[name]
    path.write_bytes(content)
    db = _open(path)
    with pytest.raises(DamagedStoreError) as caught:
        db.table("queue").all()
    message = str(caught.value)
    aside = tmp_path / "store.json.damaged-20260314T150926"
    assert str(path) in message and problem in message
    assert "kept aside as store.json.damaged-20260314T150926" in message and "nothing deleted" in message
    assert isinstance(caught.value, StoreError)
    assert (caught.value.path, caught.value.kept_aside) == (str(path), str(aside))
    assert aside.read_bytes() == content  # every byte kept for the technician
    assert not path.exists()
    assert db.table("queue").all() == []  # the store goes on, empty, the damaged file beside it
    db.table("queue").insert({"n": 1})
    assert aside.read_bytes() == content


def test_a_second_damaged_file_in_the_same_second_gets_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    for content in (b"{", b"[", b'{"a":'):
        path.write_bytes(content)
        with pytest.raises(DamagedStoreError):
            CrashSafeStorage(path, _clock).read()
    kept = {p.name: p.read_bytes() for p in tmp_path.glob("store.json.damaged-*")}
    assert kept == {
        "store.json.damaged-20260314T150926": b"{",
        "store.json.damaged-20260314T150926-2": b"[",
        "store.json.damaged-20260314T150926-3": b'{"a":',
    }


def test_a_file_that_cannot_be_read_is_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.mkdir()  # not a file: read fails with an OSError
    with pytest.raises(StoreError, match=r"cannot read .*store\.json") as caught:
        CrashSafeStorage(path, _clock).read()
    assert not isinstance(caught.value, DamagedStoreError)
    assert path.is_dir() and not list(tmp_path.glob("*.damaged-*"))  # not taken for a damaged file


def test_two_writers_never_lose_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "store.json"

    def writer(tag: str) -> None:
        db = _open(path)  # its own storage and its own lock file descriptor, as another process has
        storage = _storage(db)
        for n in range(25):
            with storage.transaction():
                table = db.table("queue", cache_size=0)
                next_id = max((doc.doc_id for doc in table.all()), default=0) + 1
                table.insert(Document({"tag": tag, "n": n}, doc_id=next_id))

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    documents = _open(path).table("queue").all()
    assert len(documents) == 50
    assert sorted((d["tag"], d["n"]) for d in documents) == [(t, n) for t in "ab" for n in range(25)]


# A child that commits one transaction of three inserts and loses power (os._exit, nothing cleaned up)
# just before the CUT-th call that makes something durable or moves a name.
POWER_CUT = ARM_POWER_CUT + """
import sys
from datetime import datetime
from pathlib import Path
from tinydb import TinyDB
from firmware.store.storage import CrashSafeStorage
from tests.power_cut import ARM_POWER_CUT
db = TinyDB(Path(sys.argv[2]), clock=datetime.now, storage=CrashSafeStorage)
arm_power_cut(int(sys.argv[1]))
with db.storage.transaction():
    for n in (2, 3, 4):
        db.table("queue").insert({"n": n})
"""


def test_a_power_cut_anywhere_in_a_write_leaves_the_old_state_or_the_new(tmp_path: Path) -> None:
    old = {"queue": {"1": {"n": 1}}}
    new = {"queue": {str(n): {"n": n} for n in (1, 2, 3, 4)}}
    outcomes = []
    for cut_at in range(1, 10):
        path = tmp_path / f"cut{cut_at}" / "store.json"
        _open(path).table("queue").insert({"n": 1})
        result = subprocess.run(
            [sys.executable, "-c", POWER_CUT, str(cut_at), str(path)],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode in (0, 137), result.stderr
        state = json.loads(path.read_bytes())
        assert state in (old, new), f"cut before durable step {cut_at}: {state}"
        outcomes.append(("cut" if result.returncode else "done", state == new))
        _open(path).table("other").insert({"x": 1})  # the next writer clears what the cut left
        leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        assert leftovers == [], f"cut before durable step {cut_at}: {leftovers}"
        if result.returncode == 0:
            break
    assert ("cut", False) in outcomes  # a cut before the rename: the old state
    assert ("cut", True) in outcomes  # a cut after it (before the directory fsync): the new state
    assert outcomes[-1] == ("done", True)


def test_a_power_cut_inside_write_atomically_before_the_rename_keeps_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    _open(path).table("queue").insert({"n": 1})
    before = path.read_bytes()
    child = """
import os, sys
from datetime import datetime
from tinydb import TinyDB
from firmware.store.storage import CrashSafeStorage
from tests.power_cut import ARM_POWER_CUT
os.rename = lambda *args, **kwargs: os._exit(137)  # the power goes just as the new file would replace the old
TinyDB(sys.argv[1], clock=datetime.now, storage=CrashSafeStorage).table("queue").insert({"n": 2})
"""
    result = subprocess.run(
        [sys.executable, "-c", child, str(path)], cwd=REPO, capture_output=True, check=False, timeout=60
    )
    assert result.returncode == 137, result.stderr
    assert path.read_bytes() == before
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] != []  # the cut left its temp file
    assert _open(path).table("queue").all() == [{"n": 1}]


def test_a_document_changed_in_place_by_tinydb_is_written_changed(tmp_path: Path) -> None:
    # Plain TinyDB updates documents in place; the storage reuses no document's text unless asked to.
    path = tmp_path / "store.json"
    db = _open(path)
    db.table("t").insert({"amount": 1})
    db.table("t").update({"amount": 2}, doc_ids=[1])
    assert json.loads(path.read_text(encoding="utf-8")) == {"t": {"1": {"amount": 2}}}
