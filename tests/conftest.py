"""Shared fixtures. `vpcd_card(profile)`: a simulated card in pcscd's virtual reader.

The one vpcd slot is shared by every test worker and every helper on the
machine, so the fixture holds an exclusive `flock` on /tmp/pos-vpcd.lock for
as long as its card is in the reader. Tests using it are marked
`@pytest.mark.pcsc` and `@pytest.mark.xdist_group("pcsc")`.

pcscd must already be running with the vpcd driver (`./build.sh test` starts
it); without it the fixture fails, it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
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
VPCD_LOCK = Path("/tmp/pos-vpcd.lock")
DEFAULT_VPCD_PORT = 35963
FIRST_VPCD_PORT = 35963
LOCK_WAIT_S = 300.0
START_WAIT_S = 15.0  # bounds, not expectations: a loaded 2-core machine can be slow
PRESENCE_WAIT_S = 30.0

_RUN_THROUGH_BUILD = "run the tests through `./build.sh test`, which starts pcscd with the vpcd driver"


def vpcd_port() -> int:
    return int(os.environ.get("POS_VPCD_PORT", str(DEFAULT_VPCD_PORT)))


def vpcd_reader_name(port: int) -> str:
    """vpcd opens one reader per port: 35963 is 'Virtual PCD 00 00', 35964 'Virtual PCD 00 01'."""
    return f"Virtual PCD 00 {port - FIRST_VPCD_PORT:02d}"


def pcsc_card_present(reader: str) -> bool:
    """What pcscd says about the reader right now (pyscard, tests only)."""
    return _wait_pcsc_state(reader, None, 0.0)


def _wait_pcsc_state(reader: str, present: bool | None, timeout: float) -> bool:
    """Whether a card is in `reader`, waiting up to `timeout` s for it to become `present`.

    One PC/SC context for the whole wait, blocking in SCardGetStatusChange: a
    new context per poll would open a new socket to pcscd every few ms.
    """
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        pytest.fail(f"pcscd does not answer ({scard.SCardGetErrorMessage(result)}); {_RUN_THROUGH_BUILD}")
    try:
        deadline = time.monotonic() + timeout
        known = scard.SCARD_STATE_UNAWARE
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            result, states = scard.SCardGetStatusChange(context, left_ms if known else 0, [(reader, known)])
            if result == scard.SCARD_E_TIMEOUT:
                return not present if present is not None else bool(known & scard.SCARD_STATE_PRESENT)
            if result != scard.SCARD_S_SUCCESS:
                pytest.fail(f"pcscd cannot report reader {reader!r}: {scard.SCardGetErrorMessage(result)}")
            known = states[0][1] & ~scard.SCARD_STATE_CHANGED
            is_present = bool(known & scard.SCARD_STATE_PRESENT)
            if present is None or is_present == present or time.monotonic() >= deadline:
                return is_present
    finally:
        scard.SCardReleaseContext(context)


def _require_vpcd_reader(reader: str) -> None:
    from smartcard.Exceptions import CardServiceException, ListReadersException
    from smartcard.System import readers

    try:
        names = [str(r) for r in readers()]
    except (ListReadersException, CardServiceException, OSError) as error:
        pytest.fail(f"pcscd is not running or not reachable ({error}); {_RUN_THROUGH_BUILD}")
    if reader not in names:
        pytest.fail(f"pcscd shows no reader {reader!r} (it has {names}); {_RUN_THROUGH_BUILD}")


def wait_presence(reader: str, present: bool) -> None:
    if _wait_pcsc_state(reader, present, PRESENCE_WAIT_S) != present:
        state = "present" if present else "absent"
        pytest.fail(f"pcscd did not see the card {state} in {reader!r} within {PRESENCE_WAIT_S:.0f} s")


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class VpcdCard:
    """A `pos-sim card` process whose card sits in the vpcd reader."""

    def __init__(self, profile: str, port: int) -> None:
        self.profile = profile
        self.port = port
        self.reader_name = vpcd_reader_name(port)
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

    def wait_inserted(self) -> None:
        """Until vpcd has taken the card and pcscd reports it present."""
        self._expect("ready", START_WAIT_S)
        self._wait_presence(True)

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

    def _wait_presence(self, present: bool) -> None:
        wait_presence(self.reader_name, present)

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
        self._wait_presence(False)

    def insert(self) -> None:
        """Put the card back (same card, counters kept); returns once pcscd has seen it."""
        self._send("insert")
        self._expect("ready", START_WAIT_S)
        self._wait_presence(True)

    def stop(self) -> None:
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


def _process_ended(pid: int) -> bool:
    """Gone, or a zombie its parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def restart_pcscd() -> None:
    """Replace the pcscd that `./build.sh test` started (its pid file says which) by a new one.

    vsmartcard's vpcd driver can stop taking connections after a card leaves
    in the middle of a dialogue (its reader thread and the thread powering
    the card down race on the closed socket); pcscd then never sees another
    card in that reader. The driver is not ours to mend, so the harness
    restarts the daemon it owns, says so, and goes on.
    """
    pidfile = os.environ.get("POS_PCSCD_PIDFILE")
    if not pidfile or not Path(pidfile).exists():
        pytest.fail(f"vpcd stopped taking cards and this run does not own pcscd; {_RUN_THROUGH_BUILD}")
    old = int(Path(pidfile).read_text().strip() or 0)
    if old:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGTERM)
        _wait_for(lambda: _process_ended(old), 10, "the stuck pcscd to stop")
    log = Path(pidfile).with_name("pcscd.log").open("ab")
    daemon = subprocess.Popen(
        ["pcscd", "--foreground"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
    )
    Path(pidfile).write_text(f"{daemon.pid}\n")
    warnings.warn(f"vpcd stopped taking cards: pcscd {old} replaced by {daemon.pid}", stacklevel=1)

    def vpcd_reader_listed() -> bool:
        from smartcard.System import readers

        try:
            return any("Virtual PCD" in str(r) for r in readers())
        except Exception:
            return False

    _wait_for(vpcd_reader_listed, 10, "the new pcscd to list the vpcd readers")


def start_card_recovering_vpcd(profile: str, port: int) -> VpcdCard:
    """A card in the vpcd reader; if vpcd no longer takes cards, pcscd is restarted once."""
    card = VpcdCard(profile, port)
    try:
        card.wait_inserted()
    except pytest.fail.Exception:
        card.stop()
        restart_pcscd()
        card = VpcdCard(profile, port)
        card.wait_inserted()
    return card


def ensure_vpcd_takes_cards(port: int) -> None:
    """For a test that puts its own card in the reader: check (and mend) vpcd first."""
    card = start_card_recovering_vpcd("visa-credit", port)
    card.stop()
    wait_presence(card.reader_name, False)


@contextlib.contextmanager
def hold_vpcd_slot(reader: str) -> Iterator[None]:
    """Exclusive use of the one vpcd slot, across test workers and processes."""
    _require_vpcd_reader(reader)
    with VPCD_LOCK.open("a+") as lock_file:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{VPCD_LOCK} stayed locked for {LOCK_WAIT_S:.0f} s: the vpcd slot is busy")
                time.sleep(0.05)
        try:
            wait_presence(reader, False)
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@pytest.fixture
def vpcd_card() -> Iterator[Callable[[str], VpcdCard]]:
    """Factory: `card = vpcd_card("visa-credit")` puts that card in the vpcd reader.

    Calling it again in the same test swaps the card for another profile.
    """
    port = vpcd_port()
    reader = vpcd_reader_name(port)
    cards: list[VpcdCard] = []

    with contextlib.ExitStack() as slot:
        held = False

        def start(profile: str) -> VpcdCard:
            nonlocal held
            if not held:
                slot.enter_context(hold_vpcd_slot(reader))
                held = True
            while cards:
                cards.pop().stop()
                wait_presence(reader, False)
            card = start_card_recovering_vpcd(profile, port)
            cards.append(card)
            return card

        try:
            yield start
        finally:
            for card in cards:
                card.stop()
            if cards:
                wait_presence(reader, False)
