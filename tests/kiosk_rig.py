"""The kiosk over a provisioned terminal and the simulated acquirer (tests/txn_rig.py), driven by keys.

    with kiosk_on(rig, language="en") as kiosk:
        play(kiosk, "ENTER", "1", "1", "2", "ENTER", "CARD INSERT visa-credit", "EXPECT Approved")

`play` takes script lines (the same tokens as `pos-terminal --script`); keys go in as the PC
keyboard's KEYDOWN events, through the real mapping and the real screens. `typed(text)` is the
key tokens of digits; `tapped(name)` the multi-tap keys of a name in capitals and spaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from firmware.app import CardSlot, Kiosk, KioskOptions, parse_script, run_script
from firmware.screens.base import Receipt, TerminalInfo
from firmware.screens.entry import TAP_LETTERS
from firmware.txn.terms import Language
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_rig import MERCHANT_ID, SUPERVISOR_PASSWORD, TERMINAL_ID, Rig

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
