"""The kiosk over a provisioned terminal and the simulated acquirer (tests/txn_rig.py), driven by keys.

    with kiosk_on(rig, language="en") as kiosk:
        play(kiosk, "ENTER", "1", "1", "2", "ENTER", "CARD INSERT visa-credit", "EXPECT Approved")

`play` takes script lines (the same tokens as `pos-terminal --script`); keys go in as the PC
keyboard's KEYDOWN events, through the real mapping and the real screens. `typed(text)` is the
key tokens of digits; `tapped(name)` the multi-tap keys of a name in capitals and spaces.

`KioskProcess(rig, tmp_path)` runs `pos-terminal --headless` in a process of its own, with systemd's
notify socket in `tmp_path`, so a test waits for what the kiosk says (READY=1, WATCHDOG=1) rather
than for a time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from firmware.app import CardSlot, Kiosk, KioskOptions, parse_script, run_script
from firmware.screens.base import Receipt, TerminalInfo
from firmware.screens.entry import TAP_LETTERS
from firmware.txn.terms import Language
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_rig import MERCHANT_ID, SUPERVISOR_PASSWORD, TERMINAL_ID, Rig

REPO = Path(__file__).resolve().parent.parent
PROCESS_WAIT_S = 60.0  # a bound on a process starting or answering, never an expectation of speed
INFO = TerminalInfo("TEST MERCHANT SHANGHAI", TERMINAL_ID, MERCHANT_ID, "CNY")


@contextmanager
def kiosk_on(
    rig: Rig,
    *,
    language: str = "zh",
    width: int = 320,
    height: int = 480,
    receipts: list[Receipt] | None = None,
) -> Iterator[Kiosk]:
    kiosk = Kiosk(
        rig.service,
        INFO,
        CardSlot(),
        verify_supervisor=lambda password: password == SUPERVISOR_PASSWORD,
        receipts=(receipts.append if receipts is not None else lambda receipt: None),
        options=KioskOptions(width=width, height=height, language=Language(language), headless=True),
    )
    try:
        yield kiosk
    finally:
        kiosk.close()


def play(kiosk: Kiosk, *lines: str, shots: Path | None = None, expect_timeout: float = 30.0) -> None:
    run_script(
        kiosk,
        parse_script("\n".join(lines)),
        shots=shots,
        insert_card=lambda profile: SimReader(load_profile_card(profile)),
        expect_timeout=expect_timeout,
    )


def typed(digits: str) -> list[str]:
    return list(digits)


def tapped(name: str) -> list[str]:
    """The keys of `name` (capitals and spaces) by multi-tap; F2 between two letters on one key."""
    keys: list[str] = []
    last = ""
    for char in name:
        key = next(k for k, letters in TAP_LETTERS.items() if char in letters)
        if key == last:
            keys.append("F2")
        keys.extend([key] * (TAP_LETTERS[key].index(char) + 1))
        last = key
    return keys


class KioskProcess:
    """`pos-terminal --headless` over the rig's books and host, in a process of its own.

    Its systemd notify socket is a datagram socket in `tmp_path`; `wait_for(check)` reads what the
    kiosk sent until `check(messages)` holds. `env` is added to the kiosk's environment.
    """

    def __init__(self, rig: Rig, tmp_path: Path, env: Mapping[str, str] | None = None) -> None:
        notify_path = tmp_path / "notify"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        self.messages: list[str] = []
        self.stderr_path = tmp_path / "kiosk.stderr"
        full_env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "WATCHDOG_PID")}
        full_env.update(
            {"PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
            NOTIFY_SOCKET=str(notify_path),
        )
        full_env.update(env or {})
        argv = ["--data-dir", str(rig.data_dir), "--host", f"127.0.0.1:{rig.sim.port}", "--headless"]
        code = f"import sys; from firmware.__main__ import main; sys.exit(main({argv!r}))"
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=full_env, stderr=stderr)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def wait_for(self, check: Callable[[list[str]], bool], what: str) -> list[str]:
        deadline = time.monotonic() + PROCESS_WAIT_S
        while not check(self.messages):
            left = deadline - time.monotonic()
            assert left > 0, f"the kiosk did not say {what} in {PROCESS_WAIT_S:.0f} s: {self.messages}"
            assert self.process.poll() is None, (
                f"the kiosk ended (exit {self.process.returncode}): {self.stderr()}"
            )
            self.notify.settimeout(min(left, 0.5))
            try:
                self.messages.append(self.notify.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def stop(self) -> int:
        """SIGTERM; the kiosk's exit status."""
        self.process.terminate()
        return self.process.wait(PROCESS_WAIT_S)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.notify.close()
