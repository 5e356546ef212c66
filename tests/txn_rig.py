"""A provisioned terminal against the simulated acquirer over real TCP, for the business-layer tests.

`Rig(tmp_path)` provisions a data directory (device key, signing key, a TMK from a TR-31 block, the
supervisor's password), starts `sim.host.SimHost` on 127.0.0.1 with the terminal registered (its
device public key too, so every uploaded record is verified), opens the service over a
`TcpHostLink` and signs on. Clocks are real; backoff waits are not slept.

`assert_books_balance(rig)` holds the terminal's journal against the acquirer's ledger.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psec

from firmware.errors import HostUnreachableError
from firmware.host.channel import TcpHostLink
from firmware.host.profile import load_host_profile
from firmware.keys.layout import KeyLayout, open_key_store, open_password_store
from firmware.keys.provision import provision
from firmware.keys.tmk import install_tmk
from firmware.txn.model import Evidence, ReverseOperation, TxnStatus
from firmware.txn.service import TerminalService, open_terminal
from sim.acquirer import AcquirerHost, RegisteredTerminal, issuer_from_profiles
from sim.host import SimHost

TERMINAL_ID = "TERM0001"  # firmware/data/identity.json
MERCHANT_ID = "123456789012345"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
SUPERVISOR_PASSWORD = "246810"
_ISSUER = issuer_from_profiles()


def supervisor_approves(operation: ReverseOperation) -> bool:
    return True


class SwitchableLink:
    """The TCP link, which a test can take down after a given number of exchanges (cable pulled)."""

    def __init__(self, link: TcpHostLink) -> None:
        self.link = link
        self.exchanges_left: int | None = None

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        if self.exchanges_left is not None:
            if self.exchanges_left <= 0:
                raise HostUnreachableError("network down (test)")
            self.exchanges_left -= 1
        return self.link.exchange(packed, timeout)

    def down_after(self, exchanges: int | None) -> None:
        self.exchanges_left = exchanges


class Rig:
    def __init__(
        self, tmp_path: Path, *, faults: str = "", sign_on: bool = True, answer_timeout: float = 5.0
    ) -> None:
        self.answer_timeout = answer_timeout
        self.clock: Callable[[], datetime] | None = None  # the terminal's clock; None: the real one
        self.data_dir = tmp_path / "terminal"
        layout = KeyLayout.under(self.data_dir)
        provisioned = provision(layout, os.urandom)
        install_tmk(open_key_store(layout), KBPK, str(psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK)))
        passwords = open_password_store(layout, time.monotonic)
        passwords.install_factory_passwords({"supervisor": "000000"})
        passwords.change_password("supervisor", "000000", SUPERVISOR_PASSWORD)
        registered = RegisteredTerminal(
            TERMINAL_ID, MERCHANT_ID, TMK, device_public_key=provisioned.signing_public_key
        )
        self.acquirer = AcquirerHost([registered], issuer=_ISSUER)
        self.acquirer.set_faults(faults)
        self.sim = SimHost(self.acquirer).start()
        self.profile = load_host_profile()
        self.service = self.open()
        if sign_on:
            assert self.service.sign_on().approved

    def open(self, *, answer_timeout: float | None = None) -> TerminalService:
        answer_timeout = answer_timeout or self.answer_timeout
        from dataclasses import replace

        self.link = SwitchableLink(
            TcpHostLink("127.0.0.1", self.sim.port, connect_timeout=2.0, read_timeout=answer_timeout)
        )
        profile = replace(self.profile, answer_timeout=answer_timeout)
        return open_terminal(
            self.data_dir, self.link, sleep=lambda seconds: None, profile=profile, clock=self.clock
        )

    def reopen(self) -> TerminalService:
        self.service.close()
        self.service = self.open()
        return self.service

    def close(self) -> None:
        self.service.close()
        self.sim.stop()


def rig_fixture(tmp_path: Path, *, answer_timeout: float = 5.0) -> Iterator[Rig]:
    """A rig for one test; `answer_timeout` short where the host is made to drop answers."""
    rig = Rig(tmp_path, answer_timeout=answer_timeout)
    try:
        yield rig
    finally:
        rig.close()


def evidence(
    order: str, when: datetime | None = None, reason: str = "customer returned the goods"
) -> Evidence:
    return Evidence(
        order=order,
        original_time=when or datetime.now().astimezone(),
        name="李雷 Li Lei",
        contact="13800138000",
        reason=reason,
    )


def ledger_rows(acquirer: AcquirerHost) -> dict[int, dict[str, Any]]:
    """The acquirer's ledger for this terminal, by trace, as the host itself shows it (`ledger_view`)."""
    return {row["trace"]: row for row in acquirer.ledger_view() if row["terminal"] == TERMINAL_ID}


def assert_books_balance(rig: Rig) -> None:
    """Every request the journal says the host approved is in the ledger alike; nothing more is there.

    A journal entry approved or voided is in the ledger with the same type, amount, RRN and status;
    one reversed is in the ledger as reversed or not at all (it never arrived); one declined or
    failed is not in it; the ledger holds nothing the journal does not know.
    """
    ledger = ledger_rows(rig.acquirer)
    journal = {entry.trace: entry for entry in rig.service.journal()}
    for trace, entry in journal.items():
        row = ledger.get(trace)
        if entry.status in (TxnStatus.APPROVED, TxnStatus.VOIDED):
            assert row is not None, f"trace {trace}: {entry.status} in the journal, not in the ledger"
            assert (row["type"], row["amount"], row["rrn"]) == (entry.type.value, entry.amount, entry.rrn), (
                trace
            )
            assert row["status"] == entry.status.value, (trace, row, entry.status)
        elif entry.status is TxnStatus.REVERSED:
            assert row is None or row["status"] == "reversed", (trace, row)
        elif entry.status in (TxnStatus.DECLINED, TxnStatus.FAILED):
            assert row is None, (trace, row, entry.status)
        else:
            raise AssertionError(f"trace {trace} still pending after the run: {entry}")
    unknown = set(ledger) - set(journal)
    assert not unknown, f"the ledger holds requests the journal does not know: {sorted(unknown)}"
