"""Whole transactions against the simulated cards: in process (SimReader) and through pcscd + vpcd.

Every row of CASES is written from the EMV rules and the profile's data, not
from a run: the terminal parameters of firmware/data/kernel.json (type 22,
capabilities E0F8C8, floor limit 50.00, threshold 20.00, target 20 %, max
50 %, TACs per scheme), the random selection number 99 (never selected),
2025-06-15, and each profile's card data (AIP, CVM list, IACs, AUC, dates).
The card's own decisions follow the profile's documented "risk" rules.

TSI bits: 80 ODA performed, 40 cardholder verification, 20 card risk
management, 10 issuer authentication, 08 terminal risk management, 04
script processing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import pytest
from conftest import VpcdCard, reader_events

from firmware.__main__ import issuer_online
from firmware.emv import tlv
from firmware.emv.application_list import load_application_list
from firmware.emv.capk import CapkStore, Revocation, load_capk_store
from firmware.emv.genac import CryptogramType
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.online import OnlineHandler, OnlineRequest
from firmware.emv.reader import CardReader, open_pcsc_reader
from firmware.emv.report import technician_chooser
from firmware.emv.result import Outcome, TransactionResult
from firmware.emv.transaction import TransactionInput, TransactionType
from sim.acquirer import issuer_from_profiles
from sim.card import load_profile_card
from sim.issuer import Issuer, ScriptRequest
from sim.reader import SimReader

NOW = datetime(2025, 6, 15, 10, 30, 0)
PINS = {"visa": "1234", "mastercard": "4315", "unionpay": "123456"}
VISA_PAN = "4761739001010010"


@dataclass(frozen=True)
class Case:
    name: str
    profile: str
    amount: int
    outcome: Outcome
    tvr: str
    tsi: str
    cvm_results: str | None
    pin: str | None = "1234"
    online: bool = True
    transaction_type: TransactionType = TransactionType.PURCHASE
    # "shipped" (firmware/data/capk.json), "revoked" (0BAD01 on the Visa E1 list), "no-revocations",
    # "withdrawn" (Visa E1 past its withdrawal date)
    capks: str = "shipped"
    # 8A: the host's code, or the terminal's own (Book 4 Annex A6): Y1/Z1 offline, Y3/Z3 unable to go online
    response_code: str | None = None
    signature_required: bool = False
    aid: str | None = None  # the application the technician confirms on a multi-application card
    pcsc: bool = False  # also run through pcscd + vpcd (one case per profile)


CASES = [
    # Visa DDA, enciphered offline PIN; TVR clean -> TC asked; card approves offline (1 offline in a row < 5)
    Case("visa-offline", "visa-credit", 1234, Outcome.APPROVED_OFFLINE, "0000000000", "E800", "440302",
         response_code="Y1", pcsc=True),
    # over the floor limit: TAC online byte 4 F8 -> ARQC; host 00; AIP issuer auth -> EXTERNAL AUTHENTICATE
    Case("visa-online", "visa-credit", 6000, Outcome.APPROVED_ONLINE, "0000008000", "F800", "440302",
         response_code="00"),
    # unable to go online: TAC default byte 4 A8 covers the floor limit bit -> AAC (Z3)
    Case("visa-unable-online", "visa-credit", 6000, Outcome.DECLINED_OFFLINE, "0000008000", "E800", "440302",
         online=False, response_code="Z3"),
    # the issuer's table declines amounts ending in 05
    Case("visa-host-declines", "visa-credit", 6005, Outcome.DECLINED_ONLINE, "0000008000", "F800", "440302",
         response_code="05"),
    # PIN bypassed: 44 and 42 fail ('PIN not entered'), signature 1E 03 succeeds with result 00
    Case("visa-pin-bypass", "visa-credit", 1234, Outcome.APPROVED_ONLINE, "0000080000", "F800", "1E0300",
         pin="bypass", response_code="00", signature_required=True),
    # no PIN pad: both PIN rules set 'PIN pad not present', signature succeeds
    Case("visa-no-pin-pad", "visa-credit", 1234, Outcome.APPROVED_ONLINE, "0000100000", "F800", "1E0300",
         pin=None, response_code="00", signature_required=True),
    Case("visa-refund", "visa-credit", 1234, Outcome.APPROVED_ONLINE, "0000000000", "A000", "3F0000",
         transaction_type=TransactionType.REFUND, response_code="00", pcsc=True),
    Case("visa-refund-no-host", "visa-credit", 1234, Outcome.DECLINED_OFFLINE, "0000000000", "A000", "3F0000",
         transaction_type=TransactionType.REFUND, online=False, response_code="Z3"),
    # Mastercard CDA, plaintext offline PIN 4315; TC with CDA, signature checked
    Case("mastercard-offline-cda", "mastercard-credit", 1234, Outcome.APPROVED_OFFLINE, "0000000000", "E800",
         "410302", pin="4315", response_code="Y1"),
    # online with CDA at both GENERATE ACs; ARPC travels in CDOL2 (AIP has no issuer auth bit: no TSI 10)
    Case("mastercard-online-cda", "mastercard-credit", 6000, Outcome.APPROVED_ONLINE, "0000008000", "E800",
         "410302", pin="4315", response_code="00", pcsc=True),
    # UnionPay SDA (TVR 'SDA selected'), online PIN (TVR 'online PIN entered'): TAC online byte 3 04 -> ARQC
    Case("unionpay-online", "unionpay-debit", 1234, Outcome.APPROVED_ONLINE, "0200040000", "F800", "420300",
         pin="123456", response_code="00", pcsc=True),
    # Visa SDA card past 5F24: 'expired application' is in the TAC online -> ARQC; the issuer approves
    Case("expired-application", "expired", 1234, Outcome.APPROVED_ONLINE, "0240040000", "F800", "420300",
         response_code="00", pcsc=True),
    Case("no-pse-aid-list", "no-pse", 1234, Outcome.APPROVED_OFFLINE, "0000000000", "E800", "440302",
         response_code="Y1", pcsc=True),
    # two UnionPay applications needing confirmation: debit (SDA) and credit (DDA); online PIN -> ARQC
    Case("multi-app-debit", "multi-app", 1234, Outcome.APPROVED_ONLINE, "0200040000", "F800", "420300",
         aid="A000000333010101", response_code="00"),
    Case("multi-app-credit", "multi-app", 1234, Outcome.APPROVED_ONLINE, "0000040000", "F800", "420300",
         aid="A000000333010102", response_code="00", pcsc=True),
    Case("blocked-application", "blocked", 1234, Outcome.TERMINATED, "0000000000", "0000", None, pcsc=True),
    # --- fault profiles ---
    # SDA selected + SDA failed (42); TAC online byte 1 D8 covers SDA failed -> ARQC
    Case("tampered-sda-record", "fault-tampered-sda-record", 1234, Outcome.APPROVED_ONLINE, "4200040000",
         "F800", "420300", pin="123456", response_code="00", pcsc=True),
    # offline: TAC default byte 1 D8 covers SDA failed -> AAC
    Case("tampered-sda-record-no-host", "fault-tampered-sda-record", 1234, Outcome.DECLINED_OFFLINE,
         "4200040000", "E800", "420300", pin="123456", online=False, response_code="Z3"),
    # DDA failed (08); no ICC key for the enciphered PIN -> 44 fails, online PIN 42 succeeds
    Case("expired-issuer-certificate", "fault-expired-issuer-cert", 1234, Outcome.APPROVED_ONLINE,
         "0800040000", "F800", "420300", response_code="00", pcsc=True),
    Case("revoked-issuer-certificate", "fault-revoked-ca-key", 1234, Outcome.APPROVED_ONLINE, "0800040000",
         "F800", "420300", capks="revoked", response_code="00", pcsc=True),
    # the same card with a terminal whose list does not carry the serial: DDA passes, offline approval
    Case("revoked-entry-absent", "fault-revoked-ca-key", 1234, Outcome.APPROVED_OFFLINE, "0000000000", "E800",
         "440302", capks="no-revocations", response_code="Y1"),
    # the CA key itself withdrawn by the terminal (past its date): 'CA key not held' -> DDA failed
    Case("ca-key-withdrawn", "visa-credit", 1234, Outcome.APPROVED_ONLINE, "0800040000", "F800", "420300",
         capks="withdrawn", response_code="00"),
    # CVM code 20 unknown, no 'apply succeeding': unrecognised CVM + CV not successful, results 3F0001;
    # Visa TAC/IAC online byte 3 is 04 only -> TC asked; the card (TVR not zero) goes online
    Case("unsupported-cvm", "fault-unsupported-cvm", 1234, Outcome.APPROVED_ONLINE, "0000C00000", "F800",
         "3F0001", response_code="00", pcsc=True),
    # PIN try counter 0: 'PIN try limit exceeded' without a prompt; online PIN (next rule) entered;
    # TAC online byte 3 BC covers both -> ARQC
    Case("pin-blocked", "fault-pin-blocked", 1234, Outcome.APPROVED_ONLINE, "0000240000", "E800", "420300",
         pin="4315", response_code="00", pcsc=True),
    # ARQC with a CDA signature that does not verify: CDA failed (04), closed with an AAC (Z3), declined
    Case("bad-cda-signature", "fault-bad-cda-signature", 6000, Outcome.DECLINED_OFFLINE, "0400008000", "E800",
         "410302", pin="4315", response_code="Z3", pcsc=True),
    Case("card-removed-before-second-ac", "fault-removed-before-second-ac", 6000,
         Outcome.HOST_APPROVED_CARD_DECLINED, "0000008000", "F800", "440302", response_code="00", pcsc=True),
    Case("aac-after-host-approval", "fault-aac-after-approval", 6000, Outcome.HOST_APPROVED_CARD_DECLINED,
         "0000008000", "F800", "440302", response_code="00", pcsc=True),
]  # fmt: skip


def transaction(case: Case) -> TransactionInput:
    return TransactionInput(
        amount=case.amount,
        now=NOW,
        unpredictable_number=bytes.fromhex("A1B2C3D4"),
        random_selection_number=99,
        sequence_counter=42,
        transaction_type=case.transaction_type,
    )


def seeded(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return lambda n: bytes(generator.getrandbits(8) for _ in range(n))


def capk_store(kind: str) -> CapkStore:
    shipped = load_capk_store()
    if kind == "shipped":
        return shipped
    if kind == "revoked":
        revocation = Revocation(bytes.fromhex("A000000003"), 0xE1, bytes.fromhex("0BAD01"), "test")
        return CapkStore.of(shipped.keys.values(), [revocation])
    if kind == "no-revocations":
        return CapkStore.of(shipped.keys.values())
    assert kind == "withdrawn"
    keys = [
        replace(key, expiry=NOW.date().replace(year=2024)) if key.rid.hex() == "a000000003" else key
        for key in shipped.keys.values()
    ]
    return CapkStore.of(keys)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return issuer_from_profiles()


def services(case: Case, online: OnlineHandler | None) -> KernelServices:
    pin = case.pin

    def pin_entry(kind: str, tries_left: int | None) -> str | None:
        return None if pin == "bypass" else pin

    return KernelServices(
        terminal=load_application_list(),
        config=load_kernel_config(),
        capks=capk_store(case.capks),
        random_bytes=seeded(7),
        pin_entry=pin_entry if pin is not None else None,
        online_pin_block=lambda pin, pan: bytes.fromhex("0123456789ABCDEF"),
        online=online if case.online else None,
        choose=technician_chooser(bytes.fromhex(case.aid) if case.aid else None),
    )


def online_sale(
    profile: str, amount: int, online: OnlineHandler, pin: str | None = "1234"
) -> TransactionResult:
    """A purchase on a fresh `profile` card (its randomness seeded) that goes online through `online`."""
    case = Case("x", profile, amount, Outcome.APPROVED_ONLINE, "", "", None, pin=pin)
    reader = SimReader(load_profile_card(profile, rng=seeded(1)))
    return run_transaction(reader, transaction(case), services(case, online))


def check(case: Case, result: TransactionResult) -> None:
    summary = (result.outcome, result.tvr.hex().upper(), result.tsi.hex().upper(), result.reason)
    assert summary[:3] == (case.outcome, case.tvr, case.tsi), summary
    cvm = result.cvm_results.hex().upper() if result.cvm_results is not None else None
    assert cvm == case.cvm_results
    assert result.response_code == case.response_code
    assert result.signature_required is case.signature_required
    assert result.reversal_required is (case.outcome is Outcome.HOST_APPROVED_CARD_DECLINED)
    if case.outcome is Outcome.TERMINATED:
        assert result.field55 == b""
        return
    assert result.masked_pan is not None and "*" in result.masked_pan
    if case.aid is not None:
        assert result.aid == bytes.fromhex(case.aid)
    assert result.cid is not None
    final = CryptogramType.of(result.cid)
    if case.name == "card-removed-before-second-ac":
        assert final is CryptogramType.ARQC  # the last cryptogram the card gave
    elif case.transaction_type is TransactionType.REFUND:
        assert final is CryptogramType.AAC  # a refund is credited by the host on the card's AAC
    elif result.approved:
        assert final is CryptogramType.TC
    else:
        assert final is CryptogramType.AAC
    icc = dict((obj.tag, obj.value) for obj in tlv.parse(result.field55))
    assert icc[0x9F26] == result.cryptogram and icc[0x95] == result.tvr
    assert icc[0x9F27] == bytes([result.cid]) and icc[0x9F36] == result.atc
    assert icc[0x9C] == bytes([int(case.transaction_type)])
    assert 0x5A not in icc and 0x57 not in icc
    rendered = result.to_json()
    for pan in (VISA_PAN, "5413330089010053", "6250947000000014"):
        assert pan not in rendered


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_profile_outcome_in_process(case: Case, issuer: Issuer) -> None:
    reader = SimReader(load_profile_card(case.profile, rng=seeded(1)))
    result = run_transaction(reader, transaction(case), services(case, issuer_online(issuer)))
    check(case, result)


PCSC_CASES = [c for c in CASES if c.pcsc]


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
@pytest.mark.parametrize("case", PCSC_CASES, ids=[c.name for c in PCSC_CASES])
def test_profile_outcome_through_pcscd(
    case: Case, issuer: Issuer, vpcd_card: Callable[[str], VpcdCard]
) -> None:
    card = vpcd_card(case.profile)
    reader: CardReader = open_pcsc_reader(card.reader_name)
    result = run_transaction(reader, transaction(case), services(case, issuer_online(issuer)))
    check(case, result)
    if case.name == "card-removed-before-second-ac":
        # The terminal leaves a card that has gone: had it powered it down,
        # pcscd would show the reader empty before its card-event thread
        # counted the card leaving, and would then miss the next card.
        events, present = reader_events(card.reader_name)
        assert present or events != card.events, "reader marked empty without a card event"


# --- behaviour around the table ---------------------------------------------------------


def test_every_fault_profile_is_in_the_table() -> None:
    from sim.profile import profile_names

    faults = {name for name in profile_names() if name.startswith("fault-")}
    assert faults <= {c.profile for c in CASES}
    assert faults <= {c.profile for c in PCSC_CASES}


def test_online_request_carries_arqc_field55_and_masked_pan(issuer: Issuer) -> None:
    seen: list[OnlineRequest] = []
    answer = issuer_online(issuer)

    def online(request: OnlineRequest) -> object:
        seen.append(request)
        return answer(request)

    result = online_sale("visa-credit", 6000, online)  # type: ignore[arg-type]
    assert result.outcome is Outcome.APPROVED_ONLINE
    (request,) = seen
    icc = dict((obj.tag, obj.value) for obj in tlv.parse(request.field55))
    assert icc[0x9F27] == b"\x80" and icc[0x9F37] == bytes.fromhex("A1B2C3D4")
    assert icc[0x9F02] == bytes.fromhex("000000006000") and icc[0x5F2A] == bytes.fromhex("0156")
    assert request.field55 == result.authorisation_field55
    assert request.masked_pan == "476173******0010" and request.pan == VISA_PAN
    assert VISA_PAN not in repr(request) and VISA_PAN not in str(request.to_log())
    assert request.cryptogram_type == "ARQC" and request.transaction_type is TransactionType.PURCHASE


def test_online_pin_block_goes_to_the_host_not_to_json(issuer: Issuer) -> None:
    seen: list[OnlineRequest] = []
    answer = issuer_online(issuer)

    def online(request: OnlineRequest) -> object:
        seen.append(request)
        return answer(request)

    result = online_sale("unionpay-debit", 1234, online, pin="123456")  # type: ignore[arg-type]
    assert seen[0].online_pin_block == bytes.fromhex("0123456789ABCDEF")
    assert result.online_pin_block == bytes.fromhex("0123456789ABCDEF")
    assert "0123456789ABCDEF" not in result.to_json().upper()
    assert '"online_pin": true' in result.to_json()


def test_issuer_scripts_before_and_after_the_final_generate_ac(issuer: Issuer) -> None:
    first = issuer.queue_script(VISA_PAN, ScriptRequest.pin_unblock(), template=0x71)
    second = issuer.queue_script(VISA_PAN, ScriptRequest.application_unblock(), template=0x72)
    result = online_sale("visa-credit", 6000, issuer_online(issuer))
    assert result.outcome is Outcome.APPROVED_ONLINE
    assert result.issuer_script_results == b"\x20" + first + b"\x20" + second
    assert result.tsi.hex().upper() == "FC00"  # script processing performed
    assert not result.tvr[4] & 0x30
    names = [entry["name"] for entry in result.trace]
    # 71 runs before the second GENERATE AC, 72 after it
    second_ac = len(names) - 1 - names[::-1].index("GENERATE AC")
    script_positions = [i for i, name in enumerate(names) if name == "ISSUER SCRIPT"]
    assert script_positions[0] < second_ac < script_positions[1]


def test_failed_script_sets_tvr_and_9f5b_but_not_the_outcome(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issuer.faults, "bad_script_mac", True)
    first = issuer.queue_script(VISA_PAN, ScriptRequest.pin_unblock(), template=0x71)
    second = issuer.queue_script(VISA_PAN, ScriptRequest.application_unblock(), template=0x72)
    result = online_sale("visa-credit", 6000, issuer_online(issuer))
    assert result.outcome is Outcome.APPROVED_ONLINE
    # status 1 (failed), command 1; both 'script failed' TVR bits (byte 5: 20 before, 10 after)
    assert result.issuer_script_results == b"\x11" + first + b"\x11" + second
    assert result.tvr[4] & 0x30 == 0x30


def test_bad_arpc_sets_issuer_authentication_failed(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issuer.faults, "bad_arpc", True)
    result = online_sale("visa-credit", 6000, issuer_online(issuer))
    assert result.tvr[4] & 0x40  # issuer authentication failed
    assert result.tsi[0] & 0x10  # ... but performed
    # the host approved; this card requires issuer authentication (profile risk rule) and answers AAC
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED and result.reversal_required


def test_no_card_is_terminated() -> None:
    case = CASES[0]
    result = run_transaction(SimReader(None), transaction(case), services(case, None))
    assert result.outcome is Outcome.TERMINATED and result.reason.startswith("no card")


def test_host_that_never_answers_is_unable_to_go_online(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(issuer.faults, "no_answer", True)
    result = online_sale("visa-credit", 6000, issuer_online(issuer))
    assert result.outcome is Outcome.DECLINED_OFFLINE
    icc = dict((obj.tag, obj.value) for obj in tlv.parse(result.authorisation_field55 or b""))
    assert icc[0x9F27] == b"\x80"
