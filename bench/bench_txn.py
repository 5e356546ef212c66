"""The business layer against the simulated acquirer over TCP: the queue's drain rate, a sale's time split.

(a) Drain rate. A provisioned terminal (as tests/txn_rig.py makes one) signs on to `sim.host.SimHost`
on 127.0.0.1 and makes approved sales; with the network down it queues customer notices (cash
refunds) and advices (refunds to the card, each saved and waiting); then `drain()` sends them.
Printed per kind: items per second, ms per item, and the ratio to a floor measured in the same run:
the same request sent again over the same link, MAC-checked both ways (sealed, the host checks
the MAC and answers a request it has seen from memory, the terminal checks the answer's MAC:
`firmware.host.messages.send`), one connection per exchange as `TcpHostLink` always does. What the
ratio adds on top of that echo is the terminal's work per item: reading and verifying the record,
a trace taken (a notice), the answer recorded and the item acknowledged, each a crash-safe write,
and the host's own work of a first request (booking, signature check).

(b) A whole sale (visa-credit, PIN, online, second GENERATE AC), split into card time (inside
the CardReader's transmit), host time (inside the link's exchange) and terminal time (the rest:
kernel, crypto, the books' crash-safe writes), medians:
- in process, with `sim.reader.SimReader` (the card's own work is then this process's CPU);
- through pcscd and the vpcd driver (`pos-sim card --profile visa-credit --vpcd`, as
  bench/bench_kernel.py does), when pcscd shows the vpcd reader; otherwise that part is
  skipped with a printed line.

The terminal's files live under var/ (the repository's disk, not a tmpfs), so fsync is real.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import psec
from _harness import REPO_ROOT, VPCD_READER, TimedReader, fail, median_seconds, vpcd_card, vpcd_slot

from firmware.emv.reader import CardReader, list_pcsc_readers, open_pcsc_reader
from firmware.errors import HostUnreachableError, NoReaderError
from firmware.host.channel import TcpHostLink
from firmware.host.mac import StoreMac
from firmware.host.messages import send
from firmware.host.profile import load_host_profile
from firmware.host.spec import unpack
from firmware.keys.layout import KeyLayout, open_key_store
from firmware.keys.provision import provision
from firmware.keys.tmk import install_tmk
from firmware.txn.model import Evidence, RefundMethod, ReverseOperation, TxnStatus
from firmware.txn.reverse import OriginalRef
from firmware.txn.service import TerminalService, open_terminal
from sim.acquirer import AcquirerHost, RegisteredTerminal, issuer_from_profiles
from sim.card import load_profile_card
from sim.host import SimHost
from sim.reader import SimReader

TERMINAL_ID, MERCHANT_ID = "TERM0001", "123456789012345"  # firmware/data/identity.json
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
QUEUED = 40  # items of each kind in the queue
SALES = 15  # sales split per reader (after 2 to warm up)
ECHOES = 60
PIN = "1234"


def approve(operation: ReverseOperation) -> bool:
    return True


@dataclass
class TimedLink:
    """The TCP link; adds up the time inside exchange, keeps the last request of each message type."""

    inner: TcpHostLink
    down: bool = False
    waited: float = 0.0
    last: dict[str, bytes] = field(default_factory=dict)
    ends: list[tuple[float, str]] = field(default_factory=list)

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        if self.down:
            raise HostUnreachableError("network down (bench)")
        start = time.perf_counter()
        try:
            return self.inner.exchange(packed, timeout)
        finally:
            end = time.perf_counter()
            self.waited += end - start
            mti = unpack(packed)["t"]
            self.last[mti] = packed
            self.ends.append((end, mti))


@contextmanager
def terminal(work: Path) -> Iterator[tuple[TerminalService, TimedLink, AcquirerHost]]:
    data_dir = work / "terminal"
    layout = KeyLayout.under(data_dir)
    provisioned = provision(layout, os.urandom)
    install_tmk(open_key_store(layout), KBPK, str(psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK)))
    registered = RegisteredTerminal(
        TERMINAL_ID, MERCHANT_ID, TMK, device_public_key=provisioned.signing_public_key
    )
    acquirer = AcquirerHost([registered], issuer=issuer_from_profiles())
    sim = SimHost(acquirer).start()
    try:
        profile = replace(load_host_profile(), answer_timeout=5.0)
        link = TimedLink(TcpHostLink("127.0.0.1", sim.port, connect_timeout=2.0, read_timeout=5.0))
        service = open_terminal(data_dir, link, sleep=lambda seconds: None, profile=profile)
        try:
            if not service.sign_on().approved:
                fail("the simulated host refused the sign-on")
            yield service, link, acquirer
        finally:
            service.close()
    finally:
        sim.stop()


def sale(service: TerminalService, reader: CardReader, amount: int, order: str) -> None:
    result = service.sale(reader, amount, order=order, pin=lambda kind, tries: PIN)
    if result.entry is None or result.entry.status is not TxnStatus.APPROVED:
        fail(f"sale {order} was not approved: {result.reason}")


def evidence(order: str, when: datetime) -> Evidence:
    return Evidence(order=order, original_time=when, name="李雷 Li Lei", contact="13800138000",
                    reason="customer returned the goods")  # fmt: skip


# ----- (a) drain rate ---------------------------------------------------------------------------------


def echo_seconds(service: TerminalService, link: TimedLink, packed: bytes) -> float:
    """The floor: the same request again, sealed, MAC-checked both ways, over the same link."""
    message = unpack(packed)
    mac = StoreMac(service.ctx.keys, service.profile.mac_profile)
    return median_seconds(lambda: send(link.inner, message, mac, 5.0), ECHOES)


def drain_rate(work: Path) -> None:
    with terminal(work) as (service, link, _):
        orders = []
        for n in range(QUEUED):
            order = f"B{n:04d}"
            sale(service, SimReader(load_profile_card("visa-credit")), 10_000 + 100 * n, order)
            orders.append(order)
        originals = {entry.order: entry for entry in service.journal()}
        link.down = True
        for order in orders:  # cash refunds: a customer notice each, nothing else
            original = originals[order]
            service.refund(OriginalRef(order=order), 100, RefundMethod.CASH,
                           evidence(order, original.created), supervisor=approve)  # fmt: skip
        link.down = False
        started = time.perf_counter()
        report = service.drain()
        notice_seconds = (time.perf_counter() - started) / QUEUED
        if len(report.sent) != QUEUED or report.waiting:
            fail(f"the notices did not all go up: {report}")
        notice_echo = echo_seconds(service, link, link.last["0320"])

        link.down = True
        for order in orders:  # refunds to the card: an advice each, saved and waiting
            original = originals[order]
            result = service.refund(OriginalRef(order=order), 200, RefundMethod.CARD,
                                    evidence(order, original.created), supervisor=approve)  # fmt: skip
            if not result.waiting_for_host:
                fail(f"refund of {order} did not wait for the host: {result.message}")
        link.down = False
        link.ends.clear()
        started = time.perf_counter()
        report = service.drain()
        advice_ends = [end for end, mti in link.ends if mti == "0220"]
        if len(report.sent) != 2 * QUEUED or len(advice_ends) != QUEUED or report.waiting:
            fail(f"the advices (and their notices) did not all go up: {report}")
        advice_seconds = (advice_ends[-1] - started) / QUEUED
        advice_echo = echo_seconds(service, link, link.last["0220"])
    print(f"(a) drain of {QUEUED} queued items of each kind, over TCP to the simulated acquirer")
    print(f"{'kind':>24} {'per s':>8} {'ms each':>8} {'echo ms':>8} {'x echo':>7}")
    for kind, seconds, echo in (
        ("notice (0320, 60.3 801)", notice_seconds, notice_echo),
        ("advice (0220 refund)", advice_seconds, advice_echo),
    ):
        rate, each, floor = 1 / seconds, seconds * 1e3, echo * 1e3
        print(f"{kind:>24} {rate:>8.0f} {each:>8.2f} {floor:>8.2f} {seconds / echo:>7.2f}")


# ----- (b) a sale split -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    whole: float
    card: float
    host: float

    @property
    def terminal(self) -> float:
        return self.whole - self.card - self.host


def split_sales(service: TerminalService, link: TimedLink, reader: Callable[[], CardReader]) -> Split:
    rows: list[Split] = []
    for n in range(SALES + 2):
        timed = TimedReader(reader())
        link.waited = 0.0
        started = time.perf_counter()
        sale(service, timed, 6000 + 100 * n, f"S{os.urandom(4).hex()}")
        whole = time.perf_counter() - started
        if n >= 2:  # the first ones warm caches (key objects, files)
            rows.append(Split(whole, timed.waited, link.waited))
    medians = (statistics.median(getattr(row, name) for row in rows) for name in ("whole", "card", "host"))
    return Split(*medians)


def print_split(label: str, split: Split) -> None:
    parts = " + ".join(
        f"{name} {seconds * 1e3:6.1f} ms ({seconds / split.whole:4.0%})"
        for name, seconds in (("card", split.card), ("host", split.host), ("terminal", split.terminal))
    )
    print(f"  {label}: whole {split.whole * 1e3:7.1f} ms = {parts}")


def why_no_vpcd() -> str | None:
    """Why the pcscd part cannot run (None: pcscd shows the vpcd reader)."""
    try:
        readers = list_pcsc_readers()
    except NoReaderError as error:
        return str(error)
    return None if VPCD_READER in readers else f"pcscd shows no {VPCD_READER!r} (it has {readers})"


def sale_split(work: Path) -> None:
    print(f"(b) a whole sale (visa-credit, PIN, online), median of {SALES}")
    with terminal(work) as (service, link, _):
        in_process = split_sales(service, link, lambda: SimReader(load_profile_card("visa-credit")))
        print_split("SimReader in process", in_process)
        why = why_no_vpcd()
        if why is not None:
            print(f"  pcscd + vpcd: skipped: {why} (./build.sh bench starts pcscd with vpcd)")
            return
        with vpcd_slot(), vpcd_card("visa-credit"):
            through_pcscd = split_sales(service, link, lambda: open_pcsc_reader(VPCD_READER))
        print_split("pcscd + vpcd      ", through_pcscd)


def main() -> None:
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "var", prefix="bench-txn-") as work:
        drain_rate(Path(work) / "drain")
        sale_split(Path(work) / "sale")


if __name__ == "__main__":
    main()
