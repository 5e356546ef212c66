"""Kernel paths the stock profiles do not take: velocity checking, exception file, transaction log,
merchant-forced online, a card refusing GENERATE AC, a card declining at once.

Cards are the simulated ones, with a profile changed in memory (records outside the data signed for
ODA, or the fault switches), so their certificates still hold.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from firmware.__main__ import issuer_online
from firmware.emv.capk import load_capk_store
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import ExceptionFile, KernelConfig, load_kernel_config, pan_fingerprint
from firmware.emv.result import Outcome, TransactionResult
from firmware.emv.terminal_config import load_terminal_config
from firmware.emv.transaction import TransactionInput
from firmware.emv.tvr import Tvr, TvrBit
from sim.acquirer import issuer_from_profiles
from sim.card import Card
from sim.profile import CardProfile, load_profile, profile_from_dict, read_profile_json
from sim.reader import SimReader

VISA_PAN = "4761739001010010"


def seeded(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return lambda n: bytes(generator.getrandbits(8) for _ in range(n))


def run(
    profile: CardProfile,
    *,
    amount: int = 1234,
    pin: str = "1234",
    config: KernelConfig | None = None,
    transaction_log: Callable[[str], int] | None = None,
    forced_online: bool = False,
) -> TransactionResult:
    services = KernelServices(
        terminal=load_terminal_config(),
        config=config or load_kernel_config(),
        capks=load_capk_store(),
        random_bytes=seeded(2),
        pin_entry=lambda kind, tries: pin,
        online_pin_block=lambda p, pan: bytes(8),
        online=issuer_online(issuer_from_profiles()),
        transaction_log=transaction_log,
    )
    txn = TransactionInput(
        amount=amount,
        now=datetime(2025, 6, 15, 10, 30, 0),
        unpredictable_number=bytes.fromhex("0A0B0C0D"),
        random_selection_number=99,
        sequence_counter=3,
        merchant_forced_online=forced_online,
    )
    return run_transaction(SimReader(Card(profile, rng=seeded(4))), txn, services)


def tvr(result: TransactionResult) -> Tvr:
    return Tvr.from_bytes(result.tvr)


def unionpay_with_velocity_limits(lower: str, upper: str) -> CardProfile:
    raw: dict[str, Any] = read_profile_json("unionpay-debit")
    # SFI 2 record 2 is not signed for SDA (AFL 10 01 02 01: only record 1 is)
    record = next(r for r in raw["applications"][0]["records"] if (r["sfi"], r["record"]) == (2, 2))
    record["data"].update({"9F14": lower, "9F23": upper})
    return profile_from_dict("unionpay-debit", raw)


def test_velocity_checking_asks_the_counters_and_sets_the_limit_bits() -> None:
    # ATC 5 in the profile, 6 after GPO; last online ATC 4: two offline transactions in a row
    result = run(unionpay_with_velocity_limits("01", "05"), pin="123456")
    names = [entry["name"] for entry in result.trace]
    commands = [entry["command"] for entry in result.trace]
    assert "80CA9F3600" in commands and "80CA9F1300" in commands
    assert names.index("GET DATA") < names.index("GENERATE AC")
    bits = tvr(result)
    assert TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED in bits  # 2 > 1
    assert TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED not in bits  # 2 <= 5
    assert TvrBit.NEW_CARD not in bits
    relaxed = run(unionpay_with_velocity_limits("02", "05"), pin="123456")
    assert TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED not in tvr(relaxed)


def test_card_on_the_exception_file() -> None:
    config = load_kernel_config()
    salt = config.exception_file.salt
    hot = replace(config, exception_file=ExceptionFile(salt, frozenset({pan_fingerprint(VISA_PAN, salt)})))
    result = run(load_profile("visa-credit"), config=hot)
    assert TvrBit.CARD_ON_EXCEPTION_FILE in tvr(result)
    # Visa TAC online byte 1 DC covers bit 5 (10): the card goes online instead of offline
    assert result.outcome is Outcome.APPROVED_ONLINE
    clean = run(load_profile("visa-credit"))
    assert TvrBit.CARD_ON_EXCEPTION_FILE not in tvr(clean) and clean.outcome is Outcome.APPROVED_OFFLINE


def test_floor_limit_counts_the_logged_amount_of_the_same_card() -> None:
    asked: list[str] = []

    def log(fingerprint: str) -> int:
        asked.append(fingerprint)
        return 4000

    config = replace(load_kernel_config(), floor_limit_uses_transaction_log=True)
    result = run(load_profile("visa-credit"), config=config, transaction_log=log)
    assert asked == [pan_fingerprint(VISA_PAN, config.exception_file.salt)]  # never the clear PAN
    assert TvrBit.EXCEEDS_FLOOR_LIMIT in tvr(result)  # 12.34 + 40.00 >= 50.00
    unused = run(load_profile("visa-credit"), transaction_log=log)  # not configured: not asked
    assert len(asked) == 1 and TvrBit.EXCEEDS_FLOOR_LIMIT not in tvr(unused)


def test_merchant_forced_online() -> None:
    result = run(load_profile("visa-credit"), forced_online=True)
    assert TvrBit.MERCHANT_FORCED_ONLINE in tvr(result)
    assert result.outcome is Outcome.APPROVED_ONLINE  # TAC online byte 4 F8 covers bit 4 (08)


def test_card_refusing_generate_ac_terminates() -> None:
    profile = load_profile("visa-credit")
    refusing = replace(profile, faults=replace(profile.faults, status_words=((0xAE, 0x6985),)))
    result = run(refusing)
    assert result.outcome is Outcome.TERMINATED
    assert "6985" in result.reason and result.field55 == b""


def test_card_declining_at_the_first_generate_ac() -> None:
    profile = load_profile("visa-credit")
    declining = replace(profile, faults=replace(profile.faults, aac_on_first_generate_ac=True))
    result = run(declining)
    assert result.outcome is Outcome.DECLINED_OFFLINE
    assert result.cid is not None and result.cid & 0xC0 == 0x00
    assert result.authorisation_field55 is None  # never went online


def test_bad_cryptogram_is_declined_by_the_issuer() -> None:
    profile = load_profile("visa-credit")
    lying = replace(profile, faults=replace(profile.faults, bad_cryptogram=True))
    result = run(lying, amount=6000)
    assert result.outcome is Outcome.DECLINED_ONLINE and result.response_code == "05"
