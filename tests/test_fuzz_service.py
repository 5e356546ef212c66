"""Fuzzing the business service against the simulated acquirer, with a faulty host and faulty cards.

Each example provisions a terminal (a copy of one provisioned once), signs on
with an in-process `sim.acquirer.AcquirerHost`, then runs 1 to 5 operations
(sales, voids, refunds to the card and in cash, adjusts, settlements, drains)
while every exchange with the host may be answered, answered late (the host
acted, the terminal timed out), lost with the connection, never sent, damaged,
replaced by noise or by an earlier answer; and a card may be pulled out after
any command, or answer noise.

Properties:
- each operation returns, or raises what its own faults may give, bounded in
  time and memory (`ALLOWED`): a host fault a HostError, terms that refuse the
  amount a RuleViolation, a settlement the host would not close a
  SettlementError; the disk stays healthy, so a StoreError (a record that does
  not verify, counters that do not read back) is a finding, and so is any error
  once the host behaves again;
- after each one, a request that may have moved money and has no answer yet
  (a pending sale, pre-authorisation, completion or void) has its reversal armed;
- once the host behaves again, a drain and (if one was cut short) a settlement
  leave nothing pending, and the acquirer's ledger equals the journal
  (`tests.txn_rig.assert_books_balance`).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psec
from hypothesis import given
from hypothesis import strategies as st

from firmware.errors import (
    CardRemovedError,
    HostConnectionLostError,
    HostError,
    HostTimeoutError,
    HostUnreachableError,
    PosError,
    RuleViolation,
)
from firmware.host.profile import load_host_profile
from firmware.keys.layout import KeyLayout, open_key_store
from firmware.keys.provision import provision
from firmware.keys.tmk import install_tmk
from firmware.txn.model import RefundMethod, TxnStatus, TxnType
from firmware.txn.reverse import OriginalRef
from firmware.txn.service import TerminalService, open_terminal
from firmware.txn.settlement import SettlementError
from sim.acquirer import AcquirerHost, RegisteredTerminal, ReplyAction
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.fuzz_targets import bounded_allowing, fuzz_settings
from tests.txn_rig import _ISSUER, KBPK, MERCHANT_ID, TERMINAL_ID, TMK, assert_books_balance, evidence

# What may have moved money and is reversed when its answer is missing (0220 advices are repeated instead).
REVERSED_TYPES = frozenset({TxnType.SALE, TxnType.PREAUTH, TxnType.COMPLETION, TxnType.VOID})
FATES = ["answer"] * 6 + ["late", "lost", "unreachable", "damaged", "noise", "previous", "bad_mac"]
# What each operation may answer with under host and card faults (the card's own faults are outcomes:
# the kernel ends the transaction, it raises nothing). A drain reports what it could not send.
REVERSE_REFUSALS: tuple[type[PosError], ...] = (HostError, RuleViolation)
ALLOWED: dict[str, tuple[type[PosError], ...]] = {
    "sale": (HostError,),
    "void": REVERSE_REFUSALS,
    "refund": REVERSE_REFUSALS,
    "cash": REVERSE_REFUSALS,
    "adjust": REVERSE_REFUSALS,
    "settle": (HostError, SettlementError),
    "drain": (),
}


@functools.cache
def _provisioned() -> tuple[Path, bytes]:
    """One provisioned terminal (device key, signing key, TMK); each example works on a copy."""
    base = Path(tempfile.mkdtemp(prefix="pos-fuzz-terminal-"))
    atexit.register(shutil.rmtree, base, True)
    layout = KeyLayout.under(base / "terminal")
    provisioned = provision(layout, os.urandom)
    install_tmk(open_key_store(layout), KBPK, str(psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK)))
    return base / "terminal", provisioned.signing_public_key


class FaultyHost:
    """The acquirer in process; while `faults` is on, each exchange's fate is drawn."""

    def __init__(self, acquirer: AcquirerHost, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.acquirer = acquirer
        self.draw = draw
        self.faults = False
        self.previous = b""

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        fate = self.draw(st.sampled_from(FATES)) if self.faults else "answer"
        if fate == "unreachable":
            raise HostUnreachableError("no route to the host (fuzz)")
        reply = self.acquirer.handle(packed)
        if reply.action is ReplyAction.DROP or fate == "late":
            raise HostTimeoutError("no answer in time (fuzz)")
        if reply.action is ReplyAction.CLOSE or fate == "lost":
            raise HostConnectionLostError("connection closed (fuzz)")
        answer = reply.answer
        if fate == "damaged" and answer:
            at = self.draw(st.integers(0, len(answer) - 1))
            answer = answer[:at] + bytes([answer[at] ^ self.draw(st.integers(1, 255))]) + answer[at + 1 :]
        elif fate == "bad_mac" and len(answer) > 8:
            answer = answer[:-1] + bytes([answer[-1] ^ 1])
        elif fate == "noise":
            answer = self.draw(st.binary(min_size=1, max_size=80))
        elif fate == "previous" and self.previous:
            answer = self.previous
        self.previous = reply.answer
        return answer


class PulledReader:
    """A simulated card that leaves the reader after `commands` commands (None: never), or answers noise."""

    def __init__(self, reader: SimReader, commands: int | None, noise: bytes | None) -> None:
        self.reader = reader
        self.name = reader.name
        self.left = commands
        self.noise = noise

    def power_on(self) -> bytes:
        return self.reader.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        if self.left is not None:
            if self.left <= 0:
                raise CardRemovedError("card pulled out (fuzz)")
            self.left -= 1
            if self.left == 0 and self.noise is not None:
                return self.noise
        return self.reader.transmit(apdu)

    def power_off(self) -> None:
        self.reader.power_off()


def _supervisor(operation: object) -> bool:
    return True


def _operation(
    service: TerminalService, draw: Callable[[st.SearchStrategy[Any]], Any], n: int, kinds: list[str]
) -> object:
    """Run one drawn operation; what ran goes in `kinds` (a sale when there was nothing to reverse)."""
    kind = draw(st.sampled_from(["sale", "sale", "void", "refund", "cash", "adjust", "settle", "drain"]))
    approved = [
        e.order
        for e in service.ctx.book.open_entries()
        if e.type is TxnType.SALE and e.status is TxnStatus.APPROVED
    ]
    if not approved and kind in ("void", "refund", "cash", "adjust"):
        kind = "sale"
    kinds.append(kind)
    if kind == "sale":
        profile = draw(st.sampled_from(["visa-credit", "visa-credit", "fault-removed-before-second-ac"]))
        pulled = draw(st.none() | st.integers(1, 12))
        noise = draw(st.none() | st.binary(min_size=2, max_size=40)) if pulled else None
        reader = PulledReader(SimReader(load_profile_card(profile)), pulled, noise)
        amount = draw(st.sampled_from([1_234, 5_000, 12_051, 100, 88_888]))
        return service.sale(reader, amount, order=f"F{n:03d}", pin=lambda kind, tries: "1234")
    order = draw(st.sampled_from(approved)) if approved else "F000"
    ref = OriginalRef(order=order)
    if kind == "void":
        return service.void(ref, evidence(order), supervisor=_supervisor)
    if kind in ("refund", "cash"):
        method = RefundMethod.CARD if kind == "refund" else RefundMethod.CASH
        amount = draw(st.sampled_from([1, 100, 1_000]))
        return service.refund(ref, amount, method, evidence(order), supervisor=_supervisor)
    if kind == "adjust":
        [entry] = service.ctx.book.find(order=order, types=frozenset({TxnType.SALE})) or [None]
        original = entry.amount if entry is not None else 0
        return service.adjust(ref, original, original + 100, evidence(order), supervisor=_supervisor)
    if kind == "settle":
        return service.settle()
    return service.drain()


def _reversal_armed_where_money_may_have_moved(service: TerminalService) -> None:
    for entry in service.ctx.book.open_entries():
        if entry.status is TxnStatus.PENDING and entry.type in REVERSED_TYPES:
            assert service.ctx.book.outbox.reversal(entry.trace) is not None, (
                f"trace {entry.trace} ({entry.type.value}) may have moved money and has no reversal armed"
            )


def _settle_up(service: TerminalService) -> None:
    """What a merchant does once the host is back: send now, and finish a settlement cut short."""
    for _ in range(4):
        service.drain()
        if service.ctx.book.settling is not None:
            service.settle()
        if not service.ctx.book.outbox.armed() and service.ctx.book.settling is None:
            return


@fuzz_settings(40)
@given(st.data())
def test_the_service_under_host_and_card_faults_keeps_the_books_equal(data: st.DataObject) -> None:
    template, public_key = _provisioned()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "terminal"
        shutil.copytree(template, directory)
        registered = RegisteredTerminal(TERMINAL_ID, MERCHANT_ID, TMK, device_public_key=public_key)
        acquirer = AcquirerHost([registered], issuer=_ISSUER)
        host = FaultyHost(acquirer, data.draw)
        profile = replace(load_host_profile(), answer_timeout=1.0)
        service = open_terminal(directory, host, sleep=lambda seconds: None, profile=profile)
        try:
            signed_on = bounded_allowing("service sign on", service.sign_on, ())
            assert not isinstance(signed_on, PosError) and signed_on.approved
            host.faults = True
            for n in range(data.draw(st.integers(1, 5), label="operations")):
                kinds: list[str] = []
                run = functools.partial(_operation, service, data.draw, n, kinds)
                outcome = bounded_allowing("service operation", run, (PosError,))
                kind = kinds[-1] if kinds else "reading the book"
                if isinstance(outcome, PosError) and not isinstance(outcome, ALLOWED.get(kind, ())):
                    raise AssertionError(f"{kind}: {type(outcome).__name__}: {outcome}") from outcome
                _reversal_armed_where_money_may_have_moved(service)
            host.faults = False
            bounded_allowing("service settle up", lambda: _settle_up(service), ())
            assert not service.ctx.book.outbox.armed(), service.queue()
            assert_books_balance(SimpleNamespace(acquirer=acquirer, service=service))  # type: ignore[arg-type]
        finally:
            service.close()


def test_the_fuzzed_service_provisions_once_per_process() -> None:
    """One provisioning per process (scrypt, key generation), a copy of it per example."""
    first = _provisioned()
    assert _provisioned() is first
    assert any(first[0].iterdir())  # the terminal's keys are there to copy
