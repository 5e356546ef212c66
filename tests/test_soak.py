"""A short soak (bench/soak.py, ~20 s): cards through pcscd + vpcd, faults, kills and settlement, then the
ledger against the journal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")  # the soak holds the vpcd slot while it runs
@pytest.mark.timeout(180)
def test_a_short_soak_loses_nothing_and_applies_nothing_twice() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--seconds",
            "20",
            "--seed",
            "2025",
            "--cards",
            "pcsc",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"},
    )
    line = next((x for x in done.stdout.splitlines() if "applied twice" in x), "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"lost 0, applied twice 0, unacknowledged 0, mismatched 0, pending 0, crashes 0, hung 0, "
        r"doubled traces 0, idle 0, unsettled 0, over-refunded 0, cash missing 0, notices 0, "
        r"pulled approved 0, store errors 0, refused at start 0, kinds never done 0,",
        line,
    ), line
    assert re.search(r"(\d+) operations", line) and int(re.search(r"(\d+) operations", line)[1]) > 10, line
    read = re.search(r"(\d+) cards read through PC/SC", line)
    assert read and int(read[1]) > 0, line  # the cards were read, not only the reader named


@pytest.mark.timeout(60)
def test_a_soak_where_the_host_refuses_the_terminal_fails() -> None:
    """Nothing booked, no sale approved: the soak fails (idle), however clean the empty books are."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--seconds",
            "6",
            "--seed",
            "2025",
            "--cards",
            "sim",
            "--no-disk-faults",
            "--terminal-id",
            "TERM9999",  # registered at the host instead of the terminal's own TERM0001
        ],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"},
    )
    line = next((x for x in done.stdout.splitlines() if "applied twice" in x), "")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 requests booked by the host" in line and "idle 1" in line, line
