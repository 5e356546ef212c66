"""APDU round trip: in-process SimReader (the floor) vs pcscd + vpcd + pyscard, with and without TCP_QUICKACK.

Plain script (`./build.sh bench` runs it with pcscd up). Prints medians and
their ratio to the floor measured in the same run. Holds /tmp/pos-vpcd.lock
while the card is in the vpcd reader, like the tests.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from smartcard import scard
from smartcard.System import readers

from sim.card import load_profile_card
from sim.reader import SimReader

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILE = "visa-credit"
SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
PORT = int(os.environ.get("POS_VPCD_PORT", "35963"))
READER = f"Virtual PCD 00 {PORT - 35963:02d}"


def median_seconds(call: object, count: int) -> float:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def card_present() -> bool:
    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        _, states = scard.SCardGetStatusChange(context, 0, [(READER, scard.SCARD_STATE_UNAWARE)])
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def wait_until(condition: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            sys.exit(f"bench_vpcd: timed out waiting for {what}")
        time.sleep(0.02)


def through_vpcd(quickack: bool, count: int) -> float:
    command = [sys.executable, "-m", "sim", "card", "--profile", PROFILE, "--vpcd", f"127.0.0.1:{PORT}"]
    if not quickack:
        command.append("--no-quickack")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            sys.exit("bench_vpcd: `pos-sim card` did not connect to vpcd")
        wait_until(card_present, "pcscd to see the card")
        [reader] = [r for r in readers() if str(r) == READER]
        connection = reader.createConnection()
        connection.connect()
        apdu = list(SELECT_PSE)
        for _ in range(5):
            connection.transmit(apdu)
        result = median_seconds(lambda: connection.transmit(apdu), count)
        connection.disconnect()
        return result
    finally:
        if process.stdin is not None:
            process.stdin.write("quit\n")
            process.stdin.close()
        process.wait(timeout=10)
        wait_until(lambda: not card_present(), "the card to leave the reader")


def main() -> int:
    if READER not in [str(r) for r in readers()]:
        sys.exit(f"bench_vpcd: pcscd shows no {READER!r}; run through ./build.sh bench")
    reader = SimReader(load_profile_card(PROFILE))
    reader.power_on()
    floor = median_seconds(lambda: reader.transmit(SELECT_PSE), 2000)
    with open("/tmp/pos-vpcd.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wait_until(lambda: not card_present(), "the vpcd reader to be empty")
        fast = through_vpcd(quickack=True, count=300)
        slow = through_vpcd(quickack=False, count=40)
    print(f"SELECT round trip, median ({PROFILE}):")
    print(f"  in-process SimReader (floor)     {floor * 1e6:9.1f} us   1.0x")
    print(f"  pcscd + vpcd, TCP_QUICKACK        {fast * 1e6:9.1f} us   {fast / floor:.1f}x")
    print(
        f"  pcscd + vpcd, no TCP_QUICKACK     {slow * 1e6:9.1f} us   {slow / floor:.1f}x"
        f"  ({slow / fast:.0f}x the QUICKACK figure)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
