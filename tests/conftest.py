"""Shared fixtures. `vpcd_card(profile)`: a simulated card in pcscd's virtual reader.

`./build.sh test` starts a pcscd of the run's own (as root, in a private
mount namespace, see build.sh) and says where it is: PCSCLITE_CSOCK_NAME (its
socket, read by the PC/SC client library), POS_VPCD_PORT (the vpcd port the
card connects to) and POS_VPCD_READER (the reader's name). Without them the
tests use a system pcscd with vpcd's own configuration (port 35963,
'Virtual PCD 00 00'). Without a pcscd showing the reader the fixture fails,
it never skips.

The vpcd slot is shared by every test worker of the run, so the fixture holds
an exclusive `flock` on POS_VPCD_LOCK (build.sh keeps it beside its pcscd;
else /tmp/pos-vpcd-PORT.lock) for as long as its card is in the reader.
Tests using it are marked `@pytest.mark.pcsc` and
`@pytest.mark.xdist_group("pcsc")`.

Cards come and go by pcscd's event counter (the upper 16 bits of the
dwEventState SCardGetStatusChange returns), which only pcscd's card-event
thread moves, when it sees a card arrive or leave; "present" or "absent"
alone can be written by other paths. A card counts as gone only once that
thread has seen the reader empty: a card connected to vpcd before then is
never reported (the thread goes from present to present). If pcscd does not
report a card, the test fails and says so; nothing restarts pcscd.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import settings

# No wall-clock deadline on a shared 2-core machine; under CI the examples are
# derived from each test's name, so a run is repeatable (`--hypothesis-seed` or
# HYPOTHESIS_PROFILE=explore widens the search locally).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VPCD_PORT = 35963
LOCK_WAIT_S = 300.0
START_WAIT_S = 15.0  # bounds, not expectations: a loaded 2-core machine can be slow
PRESENCE_WAIT_S = 30.0

_RUN_THROUGH_BUILD = "run the tests through `./build.sh test`, which starts pcscd with the vpcd driver"


def vpcd_port() -> int:
    return int(os.environ.get("POS_VPCD_PORT", str(DEFAULT_VPCD_PORT)))


def vpcd_reader_name() -> str:
    """The reader of the vpcd slot on `vpcd_port()`.

    vpcd names its slots 'Virtual PCD 00 00' and 'Virtual PCD 00 01' whatever
    its port; with vpcd's own configuration, port 35963 is slot 00 and 35964
    slot 01.
    """
    name = os.environ.get("POS_VPCD_READER")
    return name if name else f"Virtual PCD 00 {vpcd_port() - DEFAULT_VPCD_PORT:02d}"


def vpcd_lock_path(port: int) -> Path:
    """The run's lock of the slot (POS_VPCD_LOCK, beside its pcscd), else one per port in /tmp."""
    path = os.environ.get("POS_VPCD_LOCK")
    return Path(path) if path else Path(f"/tmp/pos-vpcd-{port}.lock")


def _pcsc_context() -> int:
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        pytest.fail(f"pcscd does not answer ({scard.SCardGetErrorMessage(result)}); {_RUN_THROUGH_BUILD}")
    return int(context)


def reader_events(reader: str) -> tuple[int, bool]:
    """pcscd's event counter for `reader` and whether it holds a card, now."""
    from smartcard import scard

    context = _pcsc_context()
    try:
        result, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if result != scard.SCARD_S_SUCCESS:
            pytest.fail(f"pcscd cannot report reader {reader!r}: {scard.SCardGetErrorMessage(result)}")
        state = states[0][1]
        return (state >> 16) & 0xFFFF, bool(state & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def pcsc_card_present(reader: str) -> bool:
    """What pcscd says about the reader right now (pyscard, tests only)."""
    return reader_events(reader)[1]


def wait_reader_events(reader: str, since: int, present: bool, events: int = 1) -> int:
    """Until pcscd's card-event thread has counted `events` card arrivals or
    departures in `reader` since its counter read `since`, and shows the card
    `present` (or not); returns the counter then. Fails the test after
    PRESENCE_WAIT_S.

    One PC/SC context for the whole wait, blocking in SCardGetStatusChange
    with the counter last seen, so pcscd answers as soon as it moves.
    """
    from smartcard import scard

    context = _pcsc_context()
    try:
        deadline = time.monotonic() + PRESENCE_WAIT_S
        known = scard.SCARD_STATE_UNAWARE
        counter, is_present = since, not present
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            result, states = scard.SCardGetStatusChange(context, left_ms if known else 0, [(reader, known)])
            if result not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                pytest.fail(f"pcscd cannot report reader {reader!r}: {scard.SCardGetErrorMessage(result)}")
            if result == scard.SCARD_S_SUCCESS:
                known = states[0][1] & ~scard.SCARD_STATE_CHANGED
                counter, is_present = (known >> 16) & 0xFFFF, bool(known & scard.SCARD_STATE_PRESENT)
                if (counter - since) & 0xFFFF >= events and is_present == present:
                    return counter
            if time.monotonic() >= deadline:
                break
    finally:
        scard.SCardReleaseContext(context)
    seen = (counter - since) & 0xFFFF
    pytest.fail(
        f"pcscd did not report the card {'inserted in' if present else 'gone from'} {reader!r}"
        f" within {PRESENCE_WAIT_S:.0f} s: {seen} of {events} card event(s) counted since {since},"
        f" the reader shows the card {'present' if is_present else 'absent'}"
        + (" (pcscd's card-event thread missed this card)" if present else "")
    )


def _require_vpcd_reader(reader: str) -> None:
    from smartcard.Exceptions import CardServiceException, ListReadersException
    from smartcard.System import readers

    try:
        names = [str(r) for r in readers()]
    except (ListReadersException, CardServiceException, OSError) as error:
        pytest.fail(f"pcscd is not running or not reachable ({error}); {_RUN_THROUGH_BUILD}")
    if reader not in names:
        pytest.fail(f"pcscd shows no reader {reader!r} (it has {names}); {_RUN_THROUGH_BUILD}")


class VpcdCard:
    """A `pos-sim card` process whose card sits in the vpcd reader.

    Made while the reader is empty; follows the card by pcscd's event counter.
    """

    def __init__(self, profile: str, port: int, reader: str) -> None:
        self.profile = profile
        self.port = port
        self.reader_name = reader
        self._events, present = reader_events(reader)
        if present:
            pytest.fail(f"a card is already in {reader!r}: the vpcd slot is not ours alone")
        self._in_reader = False
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sim", "card", "--profile", profile, "--vpcd", f"127.0.0.1:{port}"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    @property
    def events(self) -> int:
        """pcscd's event counter for the reader when the card was last seen arriving or leaving."""
        return self._events

    def wait_inserted(self) -> None:
        """Until vpcd has taken the card and pcscd has reported it arriving."""
        self._expect("ready", START_WAIT_S)
        self._in_reader = True
        self._wait_event(present=True)

    def _wait_event(self, present: bool) -> None:
        self._events = wait_reader_events(self.reader_name, self._events, present)
        self._in_reader = present

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def _expect(self, word: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(
                    f"`pos-sim card --profile {self.profile}` did not print {word!r} in {timeout:.0f} s"
                )
            if line is None:
                pytest.fail(
                    f"`pos-sim card --profile {self.profile}` ended (exit {self.process.wait()}) before"
                    f" printing {word!r}; stderr:\n{self._stderr_text()}"
                )
            if line == word:
                return

    def present(self) -> bool:
        """Whether pcscd sees a card in this reader now."""
        return pcsc_card_present(self.reader_name)

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def remove(self) -> None:
        """Pull the card out of the reader; returns once pcscd has seen it go."""
        self._send("remove")
        self._expect("removed", START_WAIT_S)
        self._wait_event(present=False)

    def insert(self) -> None:
        """Put the card back (same card, counters kept); returns once pcscd has seen it."""
        self._send("insert")
        self._expect("ready", START_WAIT_S)
        self._in_reader = True
        self._wait_event(present=True)

    def stop(self) -> None:
        """End the card process; if its card was in the reader (or pulled itself out
        in the middle of a command), returns once pcscd has seen it go."""
        if self.process.poll() is None:
            try:
                self._send("quit")
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()
        if self._in_reader:
            self._wait_event(present=False)


@contextlib.contextmanager
def hold_vpcd_slot(reader: str, port: int) -> Iterator[None]:
    """Exclusive use of the vpcd slot on `port`, across test workers and processes.

    Entered once pcscd shows the reader empty; whoever held it before has
    waited for pcscd to see its card go.
    """
    _require_vpcd_reader(reader)
    with vpcd_lock_path(port).open("a+") as lock_file:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{vpcd_lock_path(port)} stayed locked for {LOCK_WAIT_S:.0f} s: the vpcd slot is busy"
                    )
                time.sleep(0.05)
        try:
            since, present = reader_events(reader)
            if present:
                wait_reader_events(reader, since, present=False)
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@pytest.fixture
def vpcd_card() -> Iterator[Callable[[str], VpcdCard]]:
    """Factory: `card = vpcd_card("visa-credit")` puts that card in the vpcd reader.

    Calling it again in the same test swaps the card for another profile.
    """
    port = vpcd_port()
    reader = vpcd_reader_name()
    cards: list[VpcdCard] = []

    with contextlib.ExitStack() as slot:
        held = False

        def start(profile: str) -> VpcdCard:
            nonlocal held
            if not held:
                slot.enter_context(hold_vpcd_slot(reader, port))
                held = True
            while cards:
                cards.pop().stop()
            card = VpcdCard(profile, port, reader)
            cards.append(card)
            card.wait_inserted()
            return card

        try:
            yield start
        finally:
            while cards:
                cards.pop().stop()
