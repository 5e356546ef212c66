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

import statistics
import sys
from collections.abc import Callable

from _harness import VPCD_READER, median_seconds, vpcd_card, vpcd_slot

from firmware.emv.apdu import select_by_name
from firmware.emv.application import ApplicationData, read_application
from firmware.emv.application_list import load_application_list
from firmware.emv.reader import CardReader, open_pcsc_reader
from firmware.emv.report import technician_chooser
from firmware.emv.transport import Transport
from sim.card import load_profile_card
from sim.reader import SimReader

PROFILES = ("visa-credit", "unionpay-debit")  # T=1 and T=0 (61xx / 6Cxx)
CONFIG = load_application_list()
TRANSACTION = {0x9F02: bytes(6), 0x9A: bytes.fromhex("250601"), 0x9C: b"\x00", 0x9F37: bytes(4)}


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
    """APDU round trip and whole read through pcscd, in seconds (inside `vpcd_slot()`)."""
    with vpcd_card(profile):
        selected = whole_read(lambda: open_pcsc_reader(VPCD_READER))().selected.aid
        apdu = apdu_round_trip(open_pcsc_reader(VPCD_READER), selected, 300)
        read = median_seconds(whole_read(lambda: open_pcsc_reader(VPCD_READER)), 30)
        return apdu, read


def measure_in_process(profile: str) -> tuple[float, float, float, float]:
    """APDU round trip, whole read, bare transmit and Transport.exchange, in seconds."""
    card_reader = SimReader(load_profile_card(profile))
    read = whole_read(lambda: card_reader)
    selected = read().selected.aid
    apdu = apdu_round_trip(card_reader, selected, 3000)
    whole = median_seconds(read, 300)
    command = select_by_name(selected)
    transport = Transport(card_reader)
    transport.power_on()
    bare = median_seconds(lambda: card_reader.transmit(command.encode()), 3000)
    layered = median_seconds(lambda: transport.exchange(command), 3000)
    return apdu, whole, bare, layered


def main() -> int:
    with vpcd_slot():
        pcsc = {profile: measure_pcsc(profile) for profile in PROFILES}

    for profile in PROFILES:
        apdu_floor, read_floor, bare, layered = measure_in_process(profile)
        apdu_pcsc, read_pcsc = pcsc[profile]
        print(f"{profile}:")
        print("  APDU round trip (SELECT), median:")
        print(f"    in-process SimReader (floor)   {apdu_floor * 1e6:10.1f} us   1.0x")
        print(
            f"    pcscd + vpcd + pyscard         {apdu_pcsc * 1e6:10.1f} us   {apdu_pcsc / apdu_floor:6.1f}x"
        )
        print("  whole read (power on, selection, GPO, records), median:")
        print(f"    in-process SimReader (floor)   {read_floor * 1e3:10.2f} ms   1.0x")
        print(
            f"    pcscd + vpcd + pyscard         {read_pcsc * 1e3:10.2f} ms   {read_pcsc / read_floor:6.1f}x"
        )
        print("  transport layer, in process:")
        print(f"    bare SimReader.transmit (floor){bare * 1e6:10.1f} us   1.0x")
        print(f"    Transport.exchange (trace kept){layered * 1e6:10.1f} us   {layered / bare:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
