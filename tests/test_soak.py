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
        r"lost 0, applied twice 0, unacknowledged 0, mismatched 0, pending 0, crashes 0", line
    ), line
    assert re.search(r"(\d+) operations", line) and int(re.search(r"(\d+) operations", line)[1]) > 10, line
    assert "read through PC/SC" in done.stdout, done.stdout
