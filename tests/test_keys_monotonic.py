"""The anti-rollback record: sealed, written in the same crash-safe step as each file it guards.

Power cuts are real: a child process writes through the record and loses power (`os._exit(137)`,
tests/power_cut.py) before each durable step in turn, or is SIGKILLed at a random moment; the test then
opens the files with a fresh process's view and checks that they open (no false alarm), hold the old or
the new state, and that a counter never goes back. The hardware counter of the TPM tests is a file
(no TPM on the test machine): the record's logic around it is what is tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.errors import KeyStoreError, RolledBackError, StoreError
from firmware.keys.device import DeviceKey, load_device_key, provision_device_key
from firmware.keys.dukpt_load import load_dukpt_initial_key
from firmware.keys.dukpt_state import PersistentDukptTerminal
from firmware.keys.kcv import KIND_TDES
from firmware.keys.monotonic import RECORD_FILE_NAME, MonotonicRecord, detect_hardware_counter, merge_facts
from firmware.keys.store import KeyStore
from firmware.txn.book import Book
from firmware.txn.model import TxnStatus
from tests.power_cut import ARM_POWER_CUT
from tests.txn_fixtures import DEVICE, Clock

REPO = Path(__file__).resolve().parent.parent
KEY_A = bytes.fromhex("11" * 8 + "22" * 8)  # TEST key
KEY_B = bytes.fromhex("33" * 8 + "44" * 8)  # TEST key
IPEK_KBPK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
IPEK_BLOCK = (
    "B0104B1TX00N0100KS18FFFF9876543210E000005FADFB6F7189125ACE10CA0DF7C553FA5179643877EBB237DFBB3844407913DC"
)


class FileCounter:
    """A counter kept in a file outside the data directory: what a TPM NV counter gives."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int:
        return int(self.path.read_text()) if self.path.exists() else 0

    def increment(self) -> None:
        self.path.write_text(str(self.read() + 1))


@pytest.fixture
def device_key(tmp_path: Path) -> DeviceKey:
    return provision_device_key(tmp_path / "device.key", lambda n: bytes(range(3, 3 + n)))


def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keys"


def store(tmp_path: Path, device_key: DeviceKey, counter: FileCounter | None = None) -> KeyStore:
    record = MonotonicRecord(keys_dir(tmp_path) / RECORD_FILE_NAME, device_key, counter=counter)
    return KeyStore(keys_dir(tmp_path), device_key, record=record)


# ----- the record itself ---------------------------------------------------------------------------


def test_the_record_shows_nothing_in_clear_and_refuses_an_edit(tmp_path: Path, device_key: DeviceKey) -> None:
    store(tmp_path, device_key).put("MAK", KEY_A, KIND_TDES, 7)
    path = keys_dir(tmp_path) / RECORD_FILE_NAME
    document = json.loads(path.read_bytes())
    assert set(document) == {"format", "device_key_id", "generation", "nonce", "sealed"}
    assert "version.MAK" not in path.read_text()
    document["generation"] += 5  # a newer-looking generation: its seal no longer opens
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="fails authentication"):
        store(tmp_path, device_key).get("MAK")


def test_an_older_record_put_back_refuses_the_newer_files(tmp_path: Path, device_key: DeviceKey) -> None:
    store(tmp_path, device_key).put("MAK", KEY_A, KIND_TDES, 1)
    record = keys_dir(tmp_path) / RECORD_FILE_NAME
    kept = record.read_bytes()
    store(tmp_path, device_key).put("MAK", KEY_B, KIND_TDES, 2)
    record.write_bytes(kept)
    with pytest.raises(KeyStoreError, match=r"keystore\.json is not the file"):
        store(tmp_path, device_key).get("MAK")


def test_a_deleted_record_refuses_the_files_it_guarded(tmp_path: Path, device_key: DeviceKey) -> None:
    store(tmp_path, device_key).put("MAK", KEY_A, KIND_TDES, 1)
    (keys_dir(tmp_path) / RECORD_FILE_NAME).unlink()
    with pytest.raises(KeyStoreError, match="not known to the anti-rollback record"):
        store(tmp_path, device_key).get("MAK")


def test_a_record_deleted_while_in_use_is_refused(tmp_path: Path, device_key: DeviceKey) -> None:
    record = MonotonicRecord(keys_dir(tmp_path) / RECORD_FILE_NAME, device_key)
    KeyStore(keys_dir(tmp_path), device_key, record=record).put("MAK", KEY_A, KIND_TDES, 1)
    record.path.unlink()
    with pytest.raises(RolledBackError, match="deleted while in use"):
        record.facts("keystore")


def test_facts_only_move_forward() -> None:
    merged = merge_facts({"n": 5, "ids": ["B"], "v": "02"}, {"n": 3, "ids": ["A"], "v": "03", "gone": None})
    assert merged == {"n": 5, "ids": ["A", "B"], "v": "03"}
    with pytest.raises(StoreError):
        merge_facts({}, {"flag": True})


def test_a_cut_between_the_steps_accepts_old_or_new_and_tidies_up(
    tmp_path: Path, device_key: DeviceKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    import firmware.keys.monotonic as monotonic

    store(tmp_path, device_key).put("MAK", KEY_A, KIND_TDES, 1)
    real_write = monotonic.write_atomically

    class Cut(BaseException):
        pass

    def cut_after(name: str) -> None:
        def write(path: Path, data: bytes, *, exclusive: bool = False) -> None:
            if Path(path).name == name and cut_after.armed:  # type: ignore[attr-defined]
                cut_after.armed = False  # type: ignore[attr-defined]
                if name == "keystore.json":
                    raise Cut  # before the new file lands
                real_write(path, data, exclusive=exclusive)
                raise Cut
            real_write(path, data, exclusive=exclusive)

        cut_after.armed = True  # type: ignore[attr-defined]
        monkeypatch.setattr(monotonic, "write_atomically", write)

    cut_after("keystore.json")  # intent written, the file not replaced
    with pytest.raises(Cut):
        store(tmp_path, device_key).put("MAK", KEY_B, KIND_TDES, 2)
    monkeypatch.undo()
    assert store(tmp_path, device_key).get("MAK") == KEY_A
    cut_after(RECORD_FILE_NAME)  # the next record write is the intent: written, then the cut
    with pytest.raises(Cut):
        store(tmp_path, device_key).put("MAK", KEY_B, KIND_TDES, 2)
    monkeypatch.undo()
    assert store(tmp_path, device_key).get("MAK") == KEY_A
    # file written, commit lost: the new file is accepted, and the record catches up under the lock
    written: list[str] = []

    def commit_lost(path: Path, data: bytes, *, exclusive: bool = False) -> None:
        written.append(Path(path).name)
        if written[-2:] == ["keystore.json", RECORD_FILE_NAME]:
            raise Cut
        real_write(path, data, exclusive=exclusive)

    monkeypatch.setattr(monotonic, "write_atomically", commit_lost)
    with pytest.raises(Cut):
        store(tmp_path, device_key).put("MAK", KEY_B, KIND_TDES, 2)
    monkeypatch.undo()
    assert store(tmp_path, device_key).get("MAK") == KEY_B
    store(tmp_path, device_key).put("PIK", KEY_A, KIND_TDES, 1)  # a locked write commits what was found
    assert store(tmp_path, device_key).get("MAK") == KEY_B


# ----- real power cuts at every durable step ------------------------------------------------------

KEYSTORE_CHILD = ARM_POWER_CUT + """
import sys
from pathlib import Path
from firmware.keys.device import load_device_key
from firmware.keys.store import KeyStore
cut_at, keys, value = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
device_key = load_device_key(keys.parent / "device.key")
arm_power_cut(cut_at)
KeyStore(keys, device_key).put("MAK", bytes.fromhex(value), "tdes", 9)
print("done", flush=True)
"""


def test_a_power_cut_at_every_step_of_a_guarded_write_leaves_old_or_new(
    tmp_path: Path, device_key: DeviceKey
) -> None:
    store(tmp_path, device_key).put("MAK", KEY_A, KIND_TDES, 1)
    os.replace(tmp_path / "device.key", tmp_path / "data" / "device.key")
    device_key = load_device_key(tmp_path / "data" / "device.key")
    values = [KEY_A]
    for cut_at in range(1, 40):
        new = bytes([cut_at]) * 16
        result = subprocess.run(
            [sys.executable, "-c", KEYSTORE_CHILD, str(cut_at), str(keys_dir(tmp_path)), new.hex()],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode in (0, 137), result.stderr
        found = store(tmp_path, device_key).get("MAK")  # opens: no false alarm after any cut
        assert found in (values[-1], new), f"cut {cut_at}: neither the old nor the new key"
        values.append(found)
        if result.returncode == 0:
            break
    else:
        pytest.fail("the write never completed")
    assert cut_at > 9  # the cuts landed in all three writes (intent, file, commit)


DUKPT_CHILD = """
import sys
from pathlib import Path
from firmware.keys.layout import KeyLayout, open_dukpt_terminal
terminal = open_dukpt_terminal(KeyLayout.under(Path(sys.argv[1])))
while True:
    print(terminal.next_transaction().counter, flush=True)
"""


def test_sigkill_at_random_moments_never_hands_a_dukpt_counter_out_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision_device_key(data / "device.key", os.urandom)
    terminal = PersistentDukptTerminal(data / "keys", load_device_key(data / "device.key"))
    load_dukpt_initial_key(terminal, IPEK_KBPK, IPEK_BLOCK)
    handed_out: list[int] = []
    chance = random.Random(20260314)
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", DUKPT_CHILD, str(data)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.4 + chance.random() * 0.4)
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        handed_out += [int(line) for line in out.split()]
    after = PersistentDukptTerminal(data / "keys", load_device_key(data / "device.key")).next_transaction()
    assert len(handed_out) == len(set(handed_out)) and handed_out == sorted(handed_out)
    assert handed_out and after.counter > handed_out[-1]


BOOK_CHILD = ARM_POWER_CUT + """
import sys
from pathlib import Path
from firmware.keys.device import load_device_key
from firmware.keys.monotonic import MonotonicRecord
from firmware.txn.book import Book
from firmware.txn.model import TxnStatus
from tests.txn_fixtures import DEVICE, Clock, reversal, sale
cut_at, data = int(sys.argv[1]), Path(sys.argv[2])
record = MonotonicRecord(data / "keys" / "monotonic.json", load_device_key(data / "device.key"))
book = Book(data / "txn", DEVICE, DEVICE.public_key(), Clock(), record=record)
arm_power_cut(cut_at)
with book.transaction():
    trace = book.take_trace()
    book.record_request(sale(trace, book.batch), reversal(trace))
book.settle_request(trace, TxnStatus.APPROVED, rrn=f"{trace:012d}")
first = book.outbox.enqueue("notice", {"trace": trace})
book.outbox.acknowledge(first)
book.outbox.enqueue("notice", {"trace": trace, "again": 1})
print("done", flush=True)
"""


def _guarded_book(data: Path) -> Book:
    record = MonotonicRecord(data / "keys" / RECORD_FILE_NAME, load_device_key(data / "device.key"))
    return Book(data / "txn", DEVICE, DEVICE.public_key(), Clock(), record=record)


def test_a_power_cut_at_every_step_of_the_books_never_trips_the_guard(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision_device_key(data / "device.key", os.urandom)
    _guarded_book(data).close()
    handed_out: dict[int, str] = {}  # sequence number -> the record that has it
    for cut_at in range(1, 80):
        result = subprocess.run(
            [sys.executable, "-c", BOOK_CHILD, str(cut_at), str(data)],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode in (0, 137), result.stderr
        book = _guarded_book(data)  # opens after every cut: the old state or the new one
        for entry in book.open_entries():
            armed = book.outbox.reversal(entry.trace)
            assert (armed is not None) == (entry.status is TxnStatus.PENDING), entry
        for record in book.outbox.pending():
            assert handed_out.setdefault(record.sequence, record.id) == record.id, "a number given twice"
        book.close()
        if result.returncode == 0:
            break
    else:
        pytest.fail("the child never finished")
    assert cut_at > 20


# ----- the books: a lost file started again goes on, never from 1 ---------------------------------


def test_an_open_batch_started_again_after_damage_goes_on_with_its_numbers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    provision_device_key(data / "device.key", os.urandom)
    book = _guarded_book(data)
    for n in range(3):
        book.outbox.enqueue("notice", {"n": n})
    head = book.outbox.pending()[-1]
    book.close()
    (data / "txn" / "open.json").write_bytes(b"{ half a file")
    with pytest.raises(StoreError, match="damaged"):
        _guarded_book(data)
    with pytest.raises(StoreError, match=r"open\.json"):
        _guarded_book(data)  # kept aside: missing now, and the record says it existed
    record = MonotonicRecord(data / "keys" / RECORD_FILE_NAME, load_device_key(data / "device.key"))
    fresh = Book(data / "txn", DEVICE, DEVICE.public_key(), Clock(), record=record, start_empty=True)
    fresh.outbox.enqueue("notice", {"n": 3})
    (first,) = fresh.outbox.pending()
    assert first.sequence == 4 and json.loads(first.signed_bytes)["prev"] != "0" * 64
    assert json.loads(first.signed_bytes)["prev"] == hashlib.sha256(head.signed_bytes).hexdigest()


# ----- a hardware counter binds the record ---------------------------------------------------------


def test_the_whole_directory_put_back_is_refused_only_with_a_hardware_counter(
    tmp_path: Path, device_key: DeviceKey
) -> None:
    counter = FileCounter(tmp_path / "tpm-counter")
    store(tmp_path, device_key, counter).put("MAK", KEY_A, KIND_TDES, 1)
    kept = {p.name: p.read_bytes() for p in keys_dir(tmp_path).iterdir() if p.is_file()}
    store(tmp_path, device_key, counter).put("MAK", KEY_B, KIND_TDES, 2)
    for name, data in kept.items():
        (keys_dir(tmp_path) / name).write_bytes(data)
    assert store(tmp_path, device_key).get("MAK") == KEY_A  # without the counter: accepted (the gap)
    with pytest.raises(KeyStoreError, match="TPM"):
        store(tmp_path, device_key, counter).get("MAK")
    (keys_dir(tmp_path) / RECORD_FILE_NAME).unlink()
    with pytest.raises(KeyStoreError, match="TPM counter says it was written"):
        store(tmp_path, device_key, counter).get("MAK")


def test_a_cut_before_the_counter_moves_is_finished_by_the_next_write(
    tmp_path: Path, device_key: DeviceKey
) -> None:
    counter = FileCounter(tmp_path / "tpm-counter")
    store(tmp_path, device_key, counter).put("MAK", KEY_A, KIND_TDES, 1)
    value = counter.read()

    class Stuck(FileCounter):
        def increment(self) -> None:
            raise OSError("power cut before the increment")

    with pytest.raises(OSError):
        store(tmp_path, device_key, Stuck(counter.path)).put("MAK", KEY_B, KIND_TDES, 2)
    assert counter.read() == value
    assert store(tmp_path, device_key, counter).get("MAK") == KEY_B  # record one ahead: accepted
    store(tmp_path, device_key, counter).put("PIK", KEY_A, KIND_TDES, 1)
    assert counter.read() > value
    assert store(tmp_path, device_key, counter).get("PIK") == KEY_A


def test_without_a_tpm_the_terminal_says_so() -> None:
    counter, why = detect_hardware_counter({"POS_TPM": "off"})
    assert counter is None and "not detected" in why
    if not Path("/dev/tpmrm0").exists():
        counter, why = detect_hardware_counter({})
        assert counter is None and "no TPM" in why



def test_a_technician_adopts_the_files_knowingly(tmp_path: Path) -> None:
    import io

    from firmware.cli.keys import main as pos_keys

    def cli(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = pos_keys(["--data-dir", str(tmp_path / "t"), *args], env={}, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    assert cli("provision")[0] == 0
    (tmp_path / "t" / "keys" / RECORD_FILE_NAME).unlink()  # lost, or a firmware from before the record
    code, _, err = cli("list")
    assert code != 0 and "keystore.json is not known to the anti-rollback record" in err
    code, out, _ = cli("adopt")
    assert code == 0 and "keystore.json" in out and "open.json (absent)" in out
    assert cli("list")[0] == 0
