"""Every JSON file is read through one guard: NaN, Infinity, deep nesting and huge numbers are refused
as the project's own error (never ValueError or RecursionError), and every file read is bounded."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from tinydb import TinyDB

from firmware.cli.keys import main as pos_keys
from firmware.config import read_config
from firmware.errors import ConfigError, DamagedStoreError, KeyStoreError, MalformedFileError, PosError
from firmware.keys.device import DeviceKey
from firmware.keys.dukpt_state import PersistentDukptTerminal
from firmware.keys.passwords import PasswordStore
from firmware.keys.store import KeyStore
from firmware.store.json_guard import MAX_DEPTH, load_json, read_bounded
from firmware.store.storage import DAMAGED_SUFFIX, CrashSafeStorage

REPO = Path(__file__).resolve().parent.parent

HOSTILE = {
    "nan": b'{"queue": {"1": {"amount": NaN}}}',
    "infinity": b'{"queue": {"1": {"amount": -Infinity}}}',
    "overflowing float": b'{"queue": {"1": {"amount": 1e999}}}',
    "huge integer": b'{"queue": {"1": {"amount": ' + b"9" * 5000 + b"}}}",
    "deep nesting": b'{"queue": {"1": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}}",
}


# json.loads over bytes that are no file: the canonical copy of a record just verified.
IN_MEMORY_ONLY = {"firmware/txn/outbox.py"}


def _clock() -> datetime:
    return datetime(2026, 3, 14, 15, 9, 26)


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_loader_refuses_with_its_own_error(content: bytes) -> None:
    with pytest.raises(MalformedFileError, match=r"f\.json"):
        load_json(content, "f.json")


def test_the_loader_reads_what_the_firmware_writes() -> None:
    document = {"a": [1, -2, 3.25, None, True, '[{\\"', {"b": "张三"}], "n": 10**30}
    assert load_json(json.dumps(document, ensure_ascii=False).encode(), "f") == document
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(nested, "f") == load_json(nested.encode(), "f")


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_storage_keeps_a_hostile_file_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "queue.json"
    path.write_bytes(content)
    with pytest.raises(DamagedStoreError) as caught:
        TinyDB(path, clock=_clock, storage=CrashSafeStorage).table("queue").all()
    assert Path(caught.value.kept_aside).read_bytes() == content
    assert DAMAGED_SUFFIX in caught.value.kept_aside and not path.exists()
    db = TinyDB(path, clock=_clock, storage=CrashSafeStorage)  # the next write works again
    db.table("queue").insert({"amount": 5})
    assert db.table("queue").all() == [{"amount": 5}]


def _key_files(tmp_path: Path) -> list[tuple[Path, Callable[[], object]]]:
    device = DeviceKey(bytes(range(32)))
    keys = KeyStore(tmp_path, device)
    dukpt = PersistentDukptTerminal(tmp_path, device)
    passwords = PasswordStore(tmp_path / "passwords.json", device, lambda: 0.0)
    return [
        (keys.path, keys.list),
        (dukpt.path, dukpt.read_state),
        (tmp_path / "passwords.json", passwords.roles),
    ]


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_key_files_refuse_a_hostile_file_as_a_key_store_error(tmp_path: Path, content: bytes) -> None:
    for path, read in _key_files(tmp_path):
        path.write_bytes(content)
        with pytest.raises(KeyStoreError, match=re.escape(path.name)):
            read()


@pytest.mark.parametrize("content", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_configuration_file_refuses_a_hostile_file_as_a_config_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "host.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"host\.json"):
        read_config("host.json", path)


def test_read_bounded_refuses_an_endless_file(tmp_path: Path) -> None:
    with pytest.raises(MalformedFileError, match="larger than 4096 bytes"):
        read_bounded("/dev/zero", 4096)
    (tmp_path / "small").write_bytes(b"x" * 4096)
    assert read_bounded(tmp_path / "small", 4096) == b"x" * 4096


def _run_limited(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter that may use 600 MB of address space at most."""
    prelude = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.mark.parametrize(
    "what", ["load-tmk --block", "load-tmk --kbpk-file", "load-dukpt --block", "load-tmk stdin"]
)
def test_pos_keys_reads_of_an_endless_file_are_bounded(tmp_path: Path, what: str) -> None:
    kbpk = tmp_path / "kbpk.hex"
    kbpk.write_text("00" * 16)
    command, option = what.split(" ")
    block, kbpk_arg, stdin = "/dev/null", str(kbpk), "io.StringIO('')"
    if option == "--block":
        block = "/dev/zero"
    elif option == "--kbpk-file":
        kbpk_arg = "/dev/zero"
    else:
        block, stdin = "-", "open('/dev/zero', encoding='latin-1')"
    data = ["--data-dir", str(tmp_path / "data")]
    assert pos_keys([*data, "provision"], env={}, stdout=io.StringIO()) == 0
    argv = [*data, command, "--block", block, "--kbpk-file", kbpk_arg]
    code = (
        "import io, sys\nfrom firmware.cli.keys import main\n"
        f"sys.exit(main({argv!r}, env={{}}, stdin={stdin}))\n"
    )
    done = _run_limited(code)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "MemoryError" not in done.stderr and done.stderr.count("\n") == 1, done.stderr[-2000:]


@pytest.mark.parametrize("name", ["keystore.json", "dukpt.json", "passwords.json", "queue.json"])
def test_key_and_store_files_are_read_bounded(tmp_path: Path, name: str) -> None:
    (tmp_path / name).symlink_to("/dev/zero")
    code = (
        "from pathlib import Path\nfrom datetime import datetime\n"
        "from firmware.errors import PosError\n"
        "from firmware.keys.device import DeviceKey\n"
        "from firmware.keys.dukpt_state import PersistentDukptTerminal\n"
        "from firmware.keys.passwords import PasswordStore\n"
        "from firmware.keys.store import KeyStore\n"
        "from firmware.store.storage import CrashSafeStorage\n"
        f"d = Path({str(tmp_path)!r}); key = DeviceKey(bytes(32))\n"
        "readers = {'keystore.json': lambda: KeyStore(d, key).list(),\n"
        "  'dukpt.json': lambda: PersistentDukptTerminal(d, key).read_state(),\n"
        "  'passwords.json': lambda: PasswordStore(d / 'passwords.json', key, lambda: 0.0).roles(),\n"
        "  'queue.json': lambda: CrashSafeStorage(d / 'queue.json', datetime.now).read()}\n"
        f"try:\n    readers[{name!r}]()\nexcept PosError as exc:\n    print('refused:', exc)\n"
    )
    done = _run_limited(code)
    assert done.returncode == 0 and done.stdout.startswith("refused:"), done.stderr[-2000:]


def test_every_json_read_in_the_firmware_goes_through_the_guard() -> None:
    offenders = []
    for path in sorted((REPO / "firmware").rglob("*.py")):
        if path.name == "json_guard.py" or path.relative_to(REPO).as_posix() in IN_MEMORY_ONLY:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "json.load(" in line or "json.loads(" in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}")
    assert offenders == []


def test_the_guard_error_is_a_pos_error() -> None:
    assert issubclass(MalformedFileError, PosError)
    assert not issubclass(MalformedFileError, ValueError)
