"""APDU round trip: in-process SimReader (the floor) vs pcscd + vpcd + pyscard, with and without TCP_QUICKACK.

Plain script (`./build.sh bench` runs it with pcscd up). Prints medians and
their ratio to the floor measured in the same run. Holds /tmp/pos-vpcd.lock
while the card is in the vpcd reader, like the tests.
"""

from __future__ import annotations

import sys

from _harness import VPCD_READER, median_seconds, vpcd_card, vpcd_slot
from smartcard.System import readers

from sim.card import load_profile_card
from sim.reader import SimReader

PROFILE = "visa-credit"
SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")


def through_vpcd(quickack: bool, count: int) -> float:
    """Median SELECT round trip through pcscd (inside `vpcd_slot()`)."""
    options = () if quickack else ("--no-quickack",)
    with vpcd_card(PROFILE, *options):
        [reader] = [r for r in readers() if str(r) == VPCD_READER]
        connection = reader.createConnection()
        connection.connect()
        apdu = list(SELECT_PSE)
        for _ in range(5):
            connection.transmit(apdu)
        result = median_seconds(lambda: connection.transmit(apdu), count)
        connection.disconnect()
        return result


def main() -> int:
    reader = SimReader(load_profile_card(PROFILE))
    reader.power_on()
    floor = median_seconds(lambda: reader.transmit(SELECT_PSE), 2000)
    with vpcd_slot():
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
