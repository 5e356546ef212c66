"""What the benchmarks share: timing loops, failing loudly, and a simulated card in pcscd's vpcd reader.

The vpcd reader is one slot shared with the tests: while a benchmark's card
is in it, the benchmark holds the same exclusive flock on /tmp/pos-vpcd.lock
that tests/conftest.py's `hold_vpcd_slot` takes, so a benchmark and a test
never share the reader.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from firmware.emv.reader import list_pcsc_readers
from firmware.errors import NoReaderError

__all__ = [
    "REPO_ROOT",
    "VPCD_LOCK",
    "VPCD_PORT",
    "VPCD_READER",
    "best_of",
    "card_in_vpcd",
    "fail",
    "median_seconds",
    "vpcd_card",
    "vpcd_slot",
    "wait_until",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
VPCD_PORT = int(os.environ.get("POS_VPCD_PORT", "35963"))
# `./build.sh bench` says which reader its pcscd has; vpcd's own configuration
# has 'Virtual PCD 00 00' on 35963 and 'Virtual PCD 00 01' on 35964.
VPCD_READER = os.environ.get("POS_VPCD_READER") or f"Virtual PCD 00 {VPCD_PORT - 35963:02d}"
# the tests' lock of the same slot
VPCD_LOCK = Path(os.environ.get("POS_VPCD_LOCK") or f"/tmp/pos-vpcd-{VPCD_PORT}.lock")
LOCK_WAIT_S = 300.0
CARD_WAIT_S = 15.0


def fail(message: str) -> NoReturn:
    """Stop the benchmark with its name and why."""
    sys.exit(f"{Path(sys.argv[0]).stem}: {message}")


def median_seconds(call: Callable[[], object], count: int) -> float:
    """Median wall time of `count` calls, each timed alone."""
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def best_of(runs: int, rounds: int, action: Callable[[], object]) -> float:
    """Seconds per call: the fastest of `runs` batches of `rounds` calls."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(rounds):
            action()
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def wait_until(condition: Callable[[], bool], what: str, timeout: float = CARD_WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def card_in_vpcd() -> bool:
    """Whether pcscd sees a card in the vpcd reader now."""
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        fail(f"pcscd does not answer: {scard.SCardGetErrorMessage(result)}")
    try:
        _, states = scard.SCardGetStatusChange(context, 0, [(VPCD_READER, scard.SCARD_STATE_UNAWARE)])
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


@contextlib.contextmanager
def vpcd_slot() -> Iterator[None]:
    """Exclusive use of the vpcd reader (the tests' lock), entered once the reader is empty."""
    try:
        names = list_pcsc_readers()
    except NoReaderError as error:
        fail(f"{error}; run through ./build.sh bench")
    if VPCD_READER not in names:
        fail(f"pcscd shows no {VPCD_READER!r} (it has {names}); run through ./build.sh bench")
    with VPCD_LOCK.open("a+") as lock:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    fail(f"{VPCD_LOCK} stayed locked for {LOCK_WAIT_S:.0f} s: the vpcd slot is busy")
                time.sleep(0.05)
        try:
            wait_until(lambda: not card_in_vpcd(), "the vpcd reader to be empty")
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def vpcd_card(profile: str, *options: str) -> Iterator[None]:
    """`pos-sim card --profile PROFILE [OPTIONS]` in the vpcd reader until the block ends.

    Use inside `vpcd_slot()`. Returns once pcscd sees the card; leaves once it has seen it go.
    """
    address = f"127.0.0.1:{VPCD_PORT}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "card", "--profile", profile, "--vpcd", address, *options],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started, _, _ = select.select([process.stdout], [], [], CARD_WAIT_S)
        if not started or process.stdout.readline().strip() != "ready":
            fail(f"`pos-sim card --profile {profile}` did not connect to vpcd")
        wait_until(card_in_vpcd, "pcscd to see the card")
        yield
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # a card process that already ended has no reader of it
                process.stdin.write("quit\n")
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        wait_until(lambda: not card_in_vpcd(), "the card to leave the reader")
