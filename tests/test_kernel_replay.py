"""Replay: the same inputs give the same APDUs, byte for byte (clock, UN, randomness all injected)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from firmware.__main__ import issuer_online
from firmware.emv.application_list import load_application_list
from firmware.emv.capk import load_capk_store
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.result import TransactionResult
from firmware.emv.transaction import TransactionInput
from sim.acquirer import issuer_from_profiles
from sim.card import load_profile_card
from sim.reader import SimReader


@dataclass
class RecordingReader:
    """Wraps a reader and keeps every APDU exchanged, raw."""

    inner: SimReader
    exchanges: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        response = self.inner.transmit(apdu)
        self.exchanges.append((bytes(apdu), bytes(response)))
        return response

    def power_off(self) -> None:
        self.inner.power_off()


def seeded(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return lambda n: bytes(generator.getrandbits(8) for _ in range(n))


def run_once(
    profile: str, amount: int, pin: str, un: bytes
) -> tuple[list[tuple[bytes, bytes]], TransactionResult]:
    reader = RecordingReader(SimReader(load_profile_card(profile, rng=seeded(11))))
    services = KernelServices(
        terminal=load_application_list(),
        config=load_kernel_config(),
        capks=load_capk_store(),
        random_bytes=seeded(5),
        pin_entry=lambda kind, tries: pin,
        online_pin_block=lambda p, pan: bytes(8),
        online=issuer_online(issuer_from_profiles()),
    )
    txn = TransactionInput(
        amount=amount,
        now=datetime(2025, 6, 15, 10, 30, 0),
        unpredictable_number=un,
        random_selection_number=99,
        sequence_counter=7,
    )
    ticks = iter(range(10_000))
    result = run_transaction(reader, txn, services, clock=lambda: float(next(ticks)))
    return reader.exchanges, result


@pytest.mark.parametrize(
    ("profile", "amount", "pin"),
    [
        ("visa-credit", 6000, "1234"),  # DDA, enciphered PIN (random pad), online, EXTERNAL AUTHENTICATE
        ("mastercard-credit", 6000, "4315"),  # CDA at both GENERATE ACs, ARPC in CDOL2
        ("unionpay-debit", 1234, "123456"),  # T=0 (61xx/6Cxx), SDA, online PIN
    ],
)
def test_same_inputs_same_apdus(profile: str, amount: int, pin: str) -> None:
    first, first_result = run_once(profile, amount, pin, bytes.fromhex("01020304"))
    second, second_result = run_once(profile, amount, pin, bytes.fromhex("01020304"))
    assert len(first) > 10
    assert first == second
    assert first_result.to_json() == second_result.to_json()


def test_another_unpredictable_number_changes_the_dialogue() -> None:
    first, _ = run_once("visa-credit", 6000, "1234", bytes.fromhex("01020304"))
    other, _ = run_once("visa-credit", 6000, "1234", bytes.fromhex("01020305"))
    assert first != other
    # the dialogue is the same up to the first command that carries the UN (INTERNAL AUTHENTICATE)
    commands = [command for command, _ in first]
    internal_authenticate = next(i for i, c in enumerate(commands) if c[1] == 0x88)
    assert first[:internal_authenticate] == other[:internal_authenticate]
