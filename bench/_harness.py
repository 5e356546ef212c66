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
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from firmware.emv.reader import CardReader, list_pcsc_readers
from firmware.errors import NoReaderError

__all__ = [
    "REPO_ROOT",
    "VPCD_LOCK",
    "VPCD_PORT",
    "VPCD_READER",
    "TimedReader",
    "VpcdCard",
    "best_of",
    "card_in_vpcd",
    "fail",
    "median_seconds",
    "reader_events",
    "vpcd_card",
    "vpcd_slot",
    "wait_reader_empty",
    "wait_reader_events",
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


def _pcsc_context() -> int:
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        fail(f"pcscd does not answer: {scard.SCardGetErrorMessage(result)}; run through ./build.sh")
    return int(context)


def reader_events(reader: str = VPCD_READER) -> tuple[int, bool]:
    """pcscd's card-event counter for `reader` (the upper 16 bits of dwEventState) and whether
    it holds a card, now."""
    from smartcard import scard

    context = _pcsc_context()
    try:
        result, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if result != scard.SCARD_S_SUCCESS:
            fail(f"pcscd cannot report reader {reader!r}: {scard.SCardGetErrorMessage(result)}")
        state = states[0][1]
        return (state >> 16) & 0xFFFF, bool(state & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def card_in_vpcd() -> bool:
    """Whether pcscd sees a card in the vpcd reader now."""
    return reader_events()[1]


def wait_reader_events(since: int, present: bool, reader: str = VPCD_READER) -> int:
    """Until pcscd's card-event thread has counted a card arriving or leaving since its counter
    read `since` and shows the card `present` (or not); returns the counter then.

    Waiting for "empty" instead would miss a card put in before pcscd's poller saw the reader
    empty: it goes from present to present and never reports the new card.
    """
    from smartcard import scard

    context = _pcsc_context()
    try:
        deadline = time.monotonic() + CARD_WAIT_S
        known = scard.SCARD_STATE_UNAWARE
        counter, is_present = since, not present
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            result, states = scard.SCardGetStatusChange(context, left_ms if known else 0, [(reader, known)])
            if result not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                fail(f"pcscd cannot report reader {reader!r}: {scard.SCardGetErrorMessage(result)}")
            if result == scard.SCARD_S_SUCCESS:
                known = states[0][1] & ~scard.SCARD_STATE_CHANGED
                counter, is_present = (known >> 16) & 0xFFFF, bool(known & scard.SCARD_STATE_PRESENT)
                if counter != since and is_present == present:
                    return counter
            if time.monotonic() >= deadline:
                break
    finally:
        scard.SCardReleaseContext(context)
    fail(
        f"pcscd did not report the card {'inserted in' if present else 'gone from'} {reader!r}"
        f" within {CARD_WAIT_S:.0f} s (counter {since} -> {counter},"
        f" the card {'present' if is_present else 'absent'})"
    )


def wait_reader_empty(reader: str = VPCD_READER) -> int:
    """The reader's event counter once pcscd has seen it empty (at once if it is)."""
    counter, present = reader_events(reader)
    return wait_reader_events(counter, present=False, reader=reader) if present else counter


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
            wait_reader_empty()
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class VpcdCard:
    """`pos-sim card --profile PROFILE [OPTIONS]` in the vpcd reader, followed by pcscd's event counter.

    Use inside `vpcd_slot()` (or a process that holds it). `insert()` returns once pcscd has
    reported the card arriving; `stop()` once it has reported it gone (also when the card pulled
    itself out in the middle of a command).
    """

    def __init__(self, profile: str, *options: str) -> None:
        self.profile = profile
        self.options = options
        self.process: subprocess.Popen[str] | None = None
        self.events = 0

    def insert(self) -> None:
        self.events = wait_reader_empty()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sim",
                "card",
                "--profile",
                self.profile,
                "--vpcd",
                f"127.0.0.1:{VPCD_PORT}",
                *self.options,
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        started, _, _ = select.select([self.process.stdout], [], [], CARD_WAIT_S)
        if not started or self.process.stdout.readline().strip() != "ready":
            self.stop()
            fail(f"`pos-sim card --profile {self.profile}` did not connect to vpcd")
        self.events = wait_reader_events(self.events, present=True)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
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
        counter, present = reader_events()
        if present or counter == self.events:
            self.events = wait_reader_events(self.events, present=False)
        else:
            self.events = counter

    def __enter__(self) -> VpcdCard:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def vpcd_card(profile: str, *options: str) -> VpcdCard:
    """`with vpcd_card(profile):` the card is in the vpcd reader for the block (see VpcdCard)."""
    return VpcdCard(profile, *options)


@dataclass
class TimedReader:
    """A reader that adds up the wall time spent in transmit (waiting for the card)."""

    inner: CardReader
    waited: float = 0.0
    cpu_in_transmit: float = 0.0
    exchanges: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            return self.inner.transmit(apdu)
        finally:
            self.waited += time.perf_counter() - start
            self.cpu_in_transmit += time.process_time() - cpu_start
            self.exchanges += 1

    def power_off(self) -> None:
        self.inner.power_off()
