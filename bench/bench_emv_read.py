"""The terminal's reading path: in-process SimReader (the floor) vs pcscd + vpcd + pyscard.

Plain script (`./build.sh bench` runs it with pcscd up). It starts
`pos-sim card` itself, holding /tmp/pos-vpcd.lock while the card is in the
vpcd reader, like the tests. Prints medians and their ratios to the floor
measured in the same run:

* one APDU round trip (SELECT of the application) through `Transport`;
* a whole read: power on, application selection, GPO, READ RECORD along the AFL;
* the transport layer's own cost: `Transport.exchange` vs a bare `SimReader.transmit`.
"""

from __future__ import annotations

import fcntl
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from firmware.emv.apdu import select_by_name
from firmware.emv.application import ApplicationData, read_application
from firmware.emv.diag import technician_chooser
from firmware.emv.reader import CardReader, list_pcsc_readers, open_pcsc_reader
from firmware.emv.terminal_config import load_terminal_config
from firmware.emv.transport import Transport
from sim.card import load_profile_card
from sim.reader import SimReader

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("visa-credit", "unionpay-debit")  # T=1 and T=0 (61xx / 6Cxx)
PORT = int(os.environ.get("POS_VPCD_PORT", "35963"))
READER = f"Virtual PCD 00 {PORT - 35963:02d}"
LOCK = Path("/tmp/pos-vpcd.lock")
CONFIG = load_terminal_config()
TRANSACTION = {0x9F02: bytes(6), 0x9A: bytes.fromhex("250601"), 0x9C: b"\x00", 0x9F37: bytes(4)}


def median(call: Callable[[], object], count: int) -> float:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"bench_emv_read: timed out waiting for {what}")
        time.sleep(0.02)


def card_in_vpcd() -> bool:
    from smartcard import scard

    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        _, states = scard.SCardGetStatusChange(context, 0, [(READER, scard.SCARD_STATE_UNAWARE)])
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def whole_read(open_reader: Callable[[], CardReader]) -> Callable[[], ApplicationData]:
    def run() -> ApplicationData:
        transport = Transport(open_reader())
        with transport.session():
            return read_application(
                transport, CONFIG, transaction_data=TRANSACTION, choose=technician_chooser(None)
            )

    return run


def apdu_round_trip(reader: CardReader, aid: bytes, count: int) -> float:
    transport = Transport(reader)
    command = select_by_name(aid)
    with transport.session():
        for _ in range(5):
            transport.exchange(command)
        transport.clear_trace()
        for _ in range(count):
            transport.exchange(command)
        return statistics.median(entry.elapsed for entry in transport.trace)


def measure_pcsc(profile: str) -> tuple[float, float]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "card", "--profile", profile, "--vpcd", f"127.0.0.1:{PORT}"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            sys.exit("bench_emv_read: `pos-sim card` did not connect to vpcd")
        wait_until(card_in_vpcd, "pcscd to see the card")
        selected = whole_read(lambda: open_pcsc_reader(READER))().selected.aid
        apdu = apdu_round_trip(open_pcsc_reader(READER), selected, 300)
        read = median(whole_read(lambda: open_pcsc_reader(READER)), 30)
        return apdu, read
    finally:
        if process.stdin is not None:
            process.stdin.write("quit\n")
            process.stdin.close()
        process.wait(timeout=10)
        wait_until(lambda: not card_in_vpcd(), "the card to leave the reader")


def measure_in_process(profile: str) -> tuple[float, float, float, float]:
    """APDU round trip, whole read, bare transmit and Transport.exchange, in seconds."""
    card_reader = SimReader(load_profile_card(profile))
    read = whole_read(lambda: card_reader)
    selected = read().selected.aid
    apdu = apdu_round_trip(card_reader, selected, 3000)
    whole = median(read, 300)
    command = select_by_name(selected)
    transport = Transport(card_reader)
    transport.power_on()
    bare = median(lambda: card_reader.transmit(command.encode()), 3000)
    layered = median(lambda: transport.exchange(command), 3000)
    return apdu, whole, bare, layered


def main() -> int:
    if READER not in list_pcsc_readers():
        sys.exit(f"bench_emv_read: pcscd shows no {READER!r}; run through ./build.sh bench")
    with LOCK.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wait_until(lambda: not card_in_vpcd(), "the vpcd reader to be empty")
        pcsc = {profile: measure_pcsc(profile) for profile in PROFILES}

    for profile in PROFILES:
        apdu_floor, read_floor, bare, layered = measure_in_process(profile)
        apdu_pcsc, read_pcsc = pcsc[profile]
        print(f"{profile}:")
        print("  APDU round trip (SELECT), median")
        print(f"    in-process SimReader (floor)   {apdu_floor * 1e6:10.1f} us   1.0x")
        print(
            f"    pcscd + vpcd + pyscard         {apdu_pcsc * 1e6:10.1f} us   {apdu_pcsc / apdu_floor:6.1f}x"
        )
        print("  whole read (power on, selection, GPO, records), median")
        print(f"    in-process SimReader (floor)   {read_floor * 1e3:10.2f} ms   1.0x")
        print(
            f"    pcscd + vpcd + pyscard         {read_pcsc * 1e3:10.2f} ms   {read_pcsc / read_floor:6.1f}x"
        )
        print("  transport layer, in process")
        print(f"    bare SimReader.transmit (floor){bare * 1e6:10.1f} us   1.0x")
        print(f"    Transport.exchange (trace kept){layered * 1e6:10.1f} us   {layered / bare:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
