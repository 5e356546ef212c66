"""The EMV kernel through pcscd: the terminal's own CPU time against the time spent waiting for the card.

Plain script (`./build.sh bench` runs it with pcscd up). It starts
`pos-sim card` itself, holding /tmp/pos-vpcd.lock while the card is in the
vpcd reader, like the tests, and runs whole online transactions (60.00, over
the floor limit: ODA, CVM, risk management, two GENERATE ACs) on:

* visa-credit: DDA (INTERNAL AUTHENTICATE), enciphered offline PIN, EXTERNAL AUTHENTICATE;
* mastercard-credit: CDA at both GENERATE ACs, plaintext offline PIN, ARPC in CDOL2.

For each it prints medians of
* terminal CPU: `time.process_time()` of this process over the transaction,
  less the CPU of the simulated issuer that answers the online callback in
  this process (that is the host's work, not the terminal's);
  (the pyscard client's CPU inside transmit is shown apart, it is part of it);
* card wait: wall time inside `CardReader.transmit` (pyscard, pcscd, vpcd
  and the card process);
and the ratio CPU / wait: below 1 the terminal is waiting on the card.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime

from _harness import VPCD_READER, TimedReader, fail, vpcd_card, vpcd_slot

from firmware.__main__ import issuer_online
from firmware.emv.application_list import load_application_list
from firmware.emv.capk import load_capk_store
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.online import OnlineRequest, OnlineResponse
from firmware.emv.reader import open_pcsc_reader
from firmware.emv.result import Outcome
from firmware.emv.transaction import TransactionInput
from sim.acquirer import issuer_from_profiles

RUNS = 20
CARDS = (("visa-credit", "DDA", "1234"), ("mastercard-credit", "CDA", "4315"))


@dataclass(frozen=True)
class Figures:
    cpu: float
    cpu_in_transmit: float
    wait: float
    wall: float
    exchanges: int


def measure(profile: str, pin: str) -> Figures:
    issuer = issuer_online(issuer_from_profiles())
    host_cpu = 0.0

    def online(request: OnlineRequest) -> OnlineResponse | None:
        nonlocal host_cpu
        start = time.process_time()
        try:
            return issuer(request)
        finally:
            host_cpu += time.process_time() - start

    services = KernelServices(
        terminal=load_application_list(),
        config=load_kernel_config(),
        capks=load_capk_store(),
        random_bytes=os.urandom,
        pin_entry=lambda kind, tries: pin,
        online_pin_block=lambda p, pan: bytes(8),
        online=online,
    )
    cpu: list[float] = []
    cpu_in_transmit: list[float] = []
    wait: list[float] = []
    wall: list[float] = []
    exchanges = 0
    for run in range(RUNS + 2):
        reader = TimedReader(open_pcsc_reader(VPCD_READER))
        txn = TransactionInput(
            amount=6000,
            now=datetime.now(),
            unpredictable_number=os.urandom(4),
            random_selection_number=99,
            sequence_counter=run + 1,
        )
        host_cpu = 0.0
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        result = run_transaction(reader, txn, services)
        cpu_used, wall_used = time.process_time() - cpu_start - host_cpu, time.perf_counter() - wall_start
        if result.outcome is not Outcome.APPROVED_ONLINE:
            fail(f"{profile} ended {result.outcome.value}: {result.reason}")
        if run >= 2:  # the first runs warm caches (imports, key objects)
            cpu.append(cpu_used)
            cpu_in_transmit.append(reader.cpu_in_transmit)
            wait.append(reader.waited)
            wall.append(wall_used)
            exchanges = reader.exchanges
    return Figures(
        statistics.median(cpu),
        statistics.median(cpu_in_transmit),
        statistics.median(wait),
        statistics.median(wall),
        exchanges,
    )


def main() -> int:
    figures: dict[str, Figures] = {}
    with vpcd_slot():
        for profile, _, pin in CARDS:
            with vpcd_card(profile):
                figures[profile] = measure(profile, pin)
    print(f"whole online transaction through pcscd + vpcd, median of {RUNS}")
    for profile, method, _ in CARDS:
        f = figures[profile]
        print(f"{profile} ({method}, {f.exchanges} APDUs):")
        print(f"  terminal CPU (this process, host excluded)  {f.cpu * 1e3:8.2f} ms")
        print(f"    of which in transmit (pyscard client)     {f.cpu_in_transmit * 1e3:8.2f} ms")
        print(f"  waiting for the card (in transmit, wall)    {f.wait * 1e3:8.2f} ms   (floor)")
        print(f"  CPU / card wait                             {f.cpu / f.wait:8.2f}x")
        ratio = f.wall / f.wait
        print(f"  whole transaction, wall                     {f.wall * 1e3:8.2f} ms   {ratio:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
