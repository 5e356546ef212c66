"""No PIN on a real card's command line, no core dumps from any entry point, no loose data directory."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from firmware.__main__ import online_factory, open_reader
from firmware.cli import emv
from firmware.cli.keys import main as pos_keys

REPO = Path(__file__).resolve().parent.parent


def _emv(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = emv.main(
        argv,
        open_reader=open_reader,
        online_factory=online_factory,
        now=lambda: datetime(2025, 6, 15, 9, 0, 0),
        random_bytes=os.urandom,
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
    )
    return code, out.getvalue(), err.getvalue()


SALE = ["txn", "--amount", "60.00", "--reader", "sim:visa-credit", "--online", "sim"]


@pytest.mark.parametrize("reader", ["pcsc", "pcsc:Virtual PCD 00 00"])
def test_pos_emv_refuses_a_pin_on_the_command_line_of_a_real_card(reader: str) -> None:
    code, out, err = _emv(["txn", "--amount", "1.00", "--reader", reader, "--pin", "1234"])
    assert code == 64 and out == ""
    assert "--pin is for simulated cards" in err and "1234" not in err


def test_pos_emv_reads_the_pin_from_standard_input() -> None:
    code, out, err = _emv([*SALE, "--pin-stdin"], stdin="1234\n")
    assert code == 0, err
    assert json.loads(out)["outcome"] == "APPROVED_ONLINE"
    same_with_argument = json.loads(_emv([*SALE, "--pin", "1234"])[1])
    assert json.loads(out)["cvm_results"] == same_with_argument["cvm_results"]


def test_pos_emv_reads_the_pin_from_a_descriptor() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"1234\n")
        os.close(write_end)
        code, out, err = _emv([*SALE, "--pin-fd", str(read_end)])
    finally:
        os.close(read_end)
    assert code == 0, err
    assert json.loads(out)["outcome"] == "APPROVED_ONLINE"


def test_a_pin_line_without_end_is_refused() -> None:
    code, out, _ = _emv([*SALE, "--pin-stdin"], stdin="1" * 500)
    result = json.loads(out)
    assert code == 4 and result["outcome"] == "TERMINATED" and "longer than 64" in result["reason"]
    assert "1" * 20 not in out


_CHECK = """
import ctypes, resource, sys
import firmware.__main__ as entry
try:
    getattr(entry, sys.argv[1])(sys.argv[2:])
except SystemExit:
    pass
libc = ctypes.CDLL(None)
print(resource.getrlimit(resource.RLIMIT_CORE), libc.prctl(3, 0, 0, 0, 0))
"""


@pytest.mark.parametrize(
    ("entry", "argv"),
    [
        ("emv_main", ["txn"]),
        ("keys_main", ["--data-dir", "/nonexistent/x", "list"]),
        ("flash_main", ["no-such-command"]),
        ("txn_main", ["no-such-command"]),
        ("main", ["--size", "bad"]),
    ],
)
def test_every_entry_point_switches_core_dumps_off(entry: str, argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, entry, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"},
    )
    assert done.stdout.strip().splitlines()[-1] == "(0, 0) 0", done.stderr[-2000:]


def test_a_loose_data_directory_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    assert pos_keys(["--data-dir", str(data), "provision"], env={}, stdout=io.StringIO()) == 0
    data.chmod(0o755)
    (data / "keys").chmod(0o777)
    with caplog.at_level(logging.WARNING):
        assert pos_keys(["--data-dir", str(data), "list"], env={}, stdout=io.StringIO()) == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "keys").stat().st_mode) == 0o700
    assert sum("made 0700" in record.getMessage() for record in caplog.records) == 2
