"""The kiosk in a real X server (Xvfb) with real key presses (xdotool) sent to its window: a sale and a
cancel order, then the acquirer's ledger held against the terminal's journal.

`pos-terminal` runs as a process of its own with SDL's X11 driver, on the terminal and the simulated
acquirer of tests/txn_rig.py, a simulated card in its slot. `xdotool search --class .` finds SDL's
window (`--name` does not), and `xdotool windowfocus --sync WIN key ...` types into it. The window's
title names the screen shown (`POS TERM0001 · <title>`), which is how the test knows a screen is up.
Xvfb and xdotool are Debian packages (build.sh installs them): without them this test fails, loudly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.txn.model import TxnStatus, TxnType
from tests.kiosk_rig import tapped
from tests.txn_rig import SUPERVISOR_PASSWORD, Rig, assert_books_balance, ledger_rows, rig_fixture

REPO = Path(__file__).resolve().parent.parent
KEYSYMS = {"ENTER": "Return", "CANCEL": "Escape", "CLEAR": "BackSpace", "UP": "Up", "DOWN": "Down"}


def _tools() -> tuple[str, str]:
    xvfb, xdotool = shutil.which("Xvfb"), shutil.which("xdotool")
    if xvfb is None or xdotool is None:
        pytest.fail(
            "Xvfb and xdotool are needed for the window test: apt-get install xvfb xdotool (build.sh setup)"
        )
    return xvfb, xdotool


@pytest.fixture
def display() -> Iterator[str]:
    """An Xvfb on a display number it chose itself (-displayfd), stopped by its pid afterwards."""
    xvfb, _ = _tools()
    read, write = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "640x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as numbers:
            number = numbers.readline().strip()
        assert number.isdigit(), f"Xvfb did not start (exit {server.poll()})"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


class Window:
    def __init__(self, display: str, xdotool: str, kiosk: subprocess.Popen[bytes]) -> None:
        self.env = {**os.environ, "DISPLAY": display}
        self.xdotool = xdotool
        self.kiosk = kiosk
        self.id = self._find()

    def _run(self, *args: str) -> str:
        done = subprocess.run([self.xdotool, *args], env=self.env, capture_output=True, text=True, timeout=20)
        return done.stdout.strip() if done.returncode == 0 else ""

    def _find(self, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.kiosk.poll() is None, f"the kiosk ended (exit {self.kiosk.returncode})"
            found = self._run("search", "--class", ".").split()
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError("no window of the kiosk in the X server")

    def title(self) -> str:
        """The title of the screen shown (the window's name is `POS TERMINAL-ID · title`)."""
        return self._run("getwindowname", self.id).split(" · ", 1)[-1]

    def wait_title(self, text: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while self.title() != text:
            assert self.kiosk.poll() is None, f"the kiosk ended (exit {self.kiosk.returncode})"
            assert time.monotonic() < end, f"the window shows {self.title()!r}, not {text!r}"
            time.sleep(0.05)

    def press_until(self, key: str, text: str, tries: int = 20) -> None:
        """Press `key` until the screen titled `text` shows (a key on a screen still at work is ignored)."""
        for _ in range(tries):
            self.keys(key)
            try:
                self.wait_title(text, timeout=1.0)
                return
            except AssertionError:
                continue
        raise AssertionError(f"{key} never led to {text!r}: the window shows {self.title()!r}")

    def keys(self, *tokens: str) -> None:
        names = [KEYSYMS.get(token, token) for token in tokens]
        self._run("windowfocus", "--sync", self.id, "key", "--delay", "80", *names)


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _slips(tmp_path: Path) -> list[Path]:
    """The slips the kiosk printed: a result screen hands its receipt over as it is made."""
    return sorted((tmp_path / "receipts").glob("*.png"))


def test_a_sale_and_a_cancel_order_typed_into_the_window_under_xvfb(
    rig: Rig, display: str, tmp_path: Path
) -> None:
    _, xdotool = _tools()
    rig.service.close()  # the kiosk process opens the books; the test reads them again at the end
    env = {**os.environ, "DISPLAY": display, "SDL_AUDIODRIVER": "dummy", "PYTHONPATH": str(REPO)}
    env.pop("SDL_VIDEODRIVER", None)  # X11, not the dummy driver of the other tests
    command = [
        sys.executable, "-c", "import sys; from firmware.__main__ import main; sys.exit(main())",
        "--data-dir", str(rig.data_dir), "--host", f"127.0.0.1:{rig.sim.port}", "--plain", "--lang", "en",
        "--card", "sim:visa-credit", "--receipts", str(tmp_path / "receipts"),
    ]  # fmt: skip
    log = (tmp_path / "kiosk.log").open("wb")
    kiosk = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        window = Window(display, xdotool, kiosk)
        idle = "TEST MERCHANT SHANGHAI"  # the idle screen's title: the merchant
        window.wait_title(idle)
        # a sale of 36.00 with the card in the slot
        window.keys("ENTER")
        window.wait_title("Main menu")
        window.keys("1", "3", "6", "0", "0", "ENTER")
        window.wait_title("Enter PIN")
        window.keys("1", "2", "3", "4", "ENTER")
        _until(lambda: any(r["type"] == "sale" for r in ledger_rows(rig.acquirer).values()), "the sale")
        _until(lambda: len(_slips(tmp_path)) > 0, "the sale's slips")  # printed as its result is shown
        window.keys("ENTER")  # from the sale's result
        window.wait_title("Receipt")
        window.keys("ENTER")
        window.wait_title(idle)
        # cancel that order: orders, by amount, its detail, F1
        window.keys("F2")
        window.wait_title("Orders")
        window.keys("3", "3", "6", "0", "0", "ENTER")
        window.press_until("ENTER", "Order")  # the list's only order, then its detail
        window.keys("F1")
        window.wait_title("Cancel order")
        window.keys("ENTER")  # the original date and time: optional for a cancel
        window.keys(*tapped("LI LEI"), "ENTER")
        window.keys(*"13800138000", "ENTER")
        window.wait_title("Terms")
        window.keys("ENTER")
        window.wait_title("Please confirm")
        window.keys("ENTER")
        window.wait_title("Supervisor")
        window.keys(*SUPERVISOR_PASSWORD, "ENTER")
        _until(lambda: any(r["type"] == "void" for r in ledger_rows(rig.acquirer).values()), "the void")
        sale_slips = len(_slips(tmp_path))
        _until(lambda: len(_slips(tmp_path)) > sale_slips, "the void's slips")  # its result is shown
        _screenshot(display, tmp_path / "cancel-order.png")
        window.keys("ENTER")
        window.wait_title("Receipt")
        window.keys("ENTER")
        window.wait_title(idle)
    finally:
        kiosk.terminate()  # SIGTERM: the kiosk stops at its next wake-up
        kiosk.wait(30)
        log.close()
    assert kiosk.returncode == 0, (tmp_path / "kiosk.log").read_text(errors="replace")
    rig.reopen()
    sales = [e for e in rig.service.journal() if e.type is TxnType.SALE]
    voids = [e for e in rig.service.journal() if e.type is TxnType.VOID]
    assert [(s.amount, s.status) for s in sales] == [(3600, TxnStatus.VOIDED)]
    assert [(v.amount, v.status) for v in voids] == [(3600, TxnStatus.APPROVED)]
    assert voids[0].evidence is not None and voids[0].evidence.name == "LI LEI"
    assert_books_balance(rig)
    assert len(list((tmp_path / "receipts").glob("*.png"))) == 4  # two copies of the sale and of the void


def _screenshot(display: str, path: Path) -> None:
    """The X screen as a PNG (what a person at the desktop sees), when Pillow can read X."""
    try:
        from PIL import ImageGrab

        ImageGrab.grab(xdisplay=display).save(path)
    except OSError:
        pass
