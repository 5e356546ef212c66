"""Kernel paths the stock profiles do not take: velocity checking, exception file, transaction log,
merchant-forced online, a card refusing GENERATE AC, a card declining at once, card answers that
break the book (a GENERATE AC answer without its cryptogram...).

Cards are the simulated ones, with a profile changed in memory (records outside the data signed for
ODA, or the fault switches), so their certificates still hold; `HookedReader` lets a test replace
one answer of the card with one the book does not allow.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from firmware.__main__ import issuer_online
from firmware.emv import tlv
from firmware.emv.application_list import load_application_list
from firmware.emv.capk import load_capk_store
from firmware.emv.cvm import PinEntry
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import ExceptionFile, KernelConfig, load_kernel_config, pan_fingerprint
from firmware.emv.online import OnlineHandler, OnlineRequest, OnlineResponse
from firmware.emv.result import Outcome, TransactionResult
from firmware.emv.transaction import TransactionInput
from firmware.emv.tvr import Tvr, TvrBit
from firmware.errors import (
    CardRemovedError,
    HostConnectionLostError,
    HostError,
    HostTimeoutError,
    HostUnreachableError,
    MacMismatchError,
    MessageFormatError,
    TlvError,
)
from sim import pki as sim_pki
from sim.acquirer import issuer_from_profiles
from sim.card import Card
from sim.issuer import ScriptRequest
from sim.profile import CardProfile, load_profile, profile_from_dict, read_profile_json
from sim.reader import SimReader

VISA_PAN = "4761739001010010"


def seeded(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return lambda n: bytes(generator.getrandbits(8) for _ in range(n))


# hook(command, the card's answer) -> the answer the terminal gets instead, or None for the card's own
Hook = Callable[[bytes, bytes], bytes | None]


@dataclass
class HookedReader:
    """A SimReader whose answers `hook` may replace; keeps every (command, answer) it passed on."""

    inner: SimReader
    hook: Hook | None = None
    name: str = "hooked"
    log: list[tuple[bytes, bytes]] = field(default_factory=list)

    def power_on(self) -> bytes:
        return self.inner.power_on()

    def power_off(self) -> None:
        self.inner.power_off()

    def transmit(self, apdu: bytes) -> bytes:
        answer = self.inner.transmit(apdu)
        if self.hook is not None:
            answer = self.hook(apdu, answer) or answer
        self.log.append((apdu, answer))
        return answer


def sim_services(
    *,
    pin: str = "1234",
    config: KernelConfig | None = None,
    transaction_log: Callable[[str], int] | None = None,
    online: OnlineHandler | Literal["sim"] | None = "sim",
    pin_entry: PinEntry | None = None,
) -> KernelServices:
    """The shipped configuration, randomness seeded; online "sim": the sim issuer."""
    return KernelServices(
        terminal=load_application_list(),
        config=config or load_kernel_config(),
        capks=load_capk_store(),
        random_bytes=seeded(2),
        pin_entry=pin_entry or (lambda kind, tries: pin),
        online_pin_block=lambda p, pan: bytes(8),
        online=issuer_online(issuer_from_profiles()) if isinstance(online, str) else online,
        transaction_log=transaction_log,
    )


def purchase(amount: int, *, forced_online: bool = False) -> TransactionInput:
    return TransactionInput(
        amount=amount,
        now=datetime(2025, 6, 15, 10, 30, 0),
        unpredictable_number=bytes.fromhex("0A0B0C0D"),
        random_selection_number=99,
        sequence_counter=3,
        merchant_forced_online=forced_online,
    )


def run(
    profile: CardProfile | Card,
    *,
    amount: int = 1234,
    pin: str = "1234",
    config: KernelConfig | None = None,
    transaction_log: Callable[[str], int] | None = None,
    forced_online: bool = False,
    hook: Hook | None = None,
    online: OnlineHandler | Literal["sim"] | None = "sim",
    pin_entry: PinEntry | None = None,
) -> TransactionResult:
    """One purchase on `profile` (or on a card already made), its randomness seeded; "sim": the sim issuer."""
    services = sim_services(
        pin=pin, config=config, transaction_log=transaction_log, online=online, pin_entry=pin_entry
    )
    txn = purchase(amount, forced_online=forced_online)
    card = profile if isinstance(profile, Card) else Card(profile, rng=seeded(4))
    return run_transaction(HookedReader(SimReader(card), hook), txn, services)


def resigned_card(name: str, raw: dict[str, Any], directory: Path) -> Card:
    """A card personalised from `raw` (a profile changed in memory, records signed for ODA too).

    `python -m sim.pki` signs it into `directory` with the committed TEST CA and issuer keys, so the
    terminal's shipped CA public keys (capk.json) verify its certificates; an ICC key is made anew.
    """
    profiles, pki_dir = directory / "profiles", directory / "pki"
    profiles.mkdir(parents=True)
    pki_dir.mkdir()
    (profiles / f"{name}.json").write_text(json.dumps(raw), encoding="utf-8")
    for key in [*sim_pki.PKI_DIR.glob("TEST-ca-*.key.pem"), *sim_pki.PKI_DIR.glob("TEST-issuer-*.key.pem")]:
        shutil.copy(key, pki_dir / key.name)
    sim_pki.generate(directory=pki_dir, profiles_dir=profiles)
    return Card(load_profile(name, profiles), rng=seeded(4), pki_dir=pki_dir)


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


def test_a_counter_of_the_wrong_length_counts_as_not_returned() -> None:
    # Book 3 10.6.3: both 'consecutive offline limit exceeded' bits, and the transaction goes on
    def hook(command: bytes, answer: bytes) -> bytes | None:
        return bytes.fromhex("9F1301009000") if command[:4] == bytes.fromhex("80CA9F13") else None

    result = run(unionpay_with_velocity_limits("01", "05"), pin="123456", hook=hook)
    assert result.outcome is Outcome.APPROVED_ONLINE
    bits = tvr(result)
    assert TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED in bits
    assert TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED in bits


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


# --- the Application Cryptogram (Book 3 6.5.5.4) ------------------------------------------------


def generate_ac_answer(cid: int, atc: bytes, **extra: bytes) -> bytes:
    """A format 2 GENERATE AC answer ('77') with 9000; `extra` maps 'x9F4B'-style names to values."""
    body = tlv.encode(0x9F27, bytes([cid])) + tlv.encode(0x9F36, atc)
    body += b"".join(tlv.encode(int(name[1:], 16), value) for name, value in extra.items())
    return tlv.encode(0x77, body) + b"\x90\x00"


def nth_generate_ac(n: int, answer: Callable[[bytes], bytes]) -> Hook:
    """Replace the card's answer to the n-th GENERATE AC (1 or 2) with `answer(card's answer)`."""
    seen = [0]

    def hook(command: bytes, card_answer: bytes) -> bytes | None:
        if command[1] != 0xAE:
            return None
        seen[0] += 1
        return answer(card_answer) if seen[0] == n else None

    return hook


def icc(field55: bytes | None) -> dict[int, bytes]:
    return {obj.tag: obj.value for obj in tlv.parse(field55 or b"")}


def test_tc_without_a_cryptogram_is_not_approved() -> None:
    # visa-credit is a DDA card: no CDA asked for, so 9F26 is mandatory; a 9F4B cannot stand in for it
    hook = nth_generate_ac(1, lambda _: generate_ac_answer(0x40, b"\x00\x11", x9F4B=bytes(16)))
    result = run(load_profile("visa-credit"), hook=hook)
    assert result.outcome is Outcome.TERMINATED and not result.approved
    assert "9F26" in result.reason and result.cryptogram is None


def test_a_second_answer_without_its_cryptogram_never_reports_the_arqc_as_a_tc() -> None:
    # unionpay-debit goes online (SDA, no CDA); the host approves; the TC comes back without 9F26
    hook = nth_generate_ac(2, lambda _: generate_ac_answer(0x40, b"\x00\x07", x9F4B=bytes(8)))
    result = run(load_profile("unionpay-debit"), pin="123456", hook=hook)
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED and result.reversal_required
    arqc = icc(result.authorisation_field55)
    final = icc(result.field55)
    # the final state is the last answer the card really gave: the ARQC, with its own CID 80
    assert (final[0x9F26], final[0x9F27], final[0x9F36]) == (arqc[0x9F26], b"\x80", arqc[0x9F36])
    assert result.cid == 0x80 and result.cryptogram == arqc[0x9F26]


def test_failed_cda_at_the_second_generate_ac_keeps_the_arqc_out_of_the_final_state() -> None:
    def corrupt_signature(answer: bytes) -> bytes:
        at = answer.index(b"\x9f\x4b") + 10
        return answer[:at] + bytes([answer[at] ^ 0xFF]) + answer[at + 1 :]

    hook = nth_generate_ac(2, corrupt_signature)
    result = run(load_profile("mastercard-credit"), amount=6000, pin="4315", hook=hook)
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED
    assert TvrBit.CDA_FAILED in tvr(result)
    arqc = icc(result.authorisation_field55)
    final = icc(result.field55)
    # the second answer (CID 40, its own ATC): its cryptogram is only inside the signature that failed
    assert final[0x9F27] == b"\x40" and 0x9F26 not in final
    assert result.cryptogram is None and arqc[0x9F26] not in result.field55


# --- records read for offline data authentication (Book 3 10.3) ---------------------------------


def test_a_record_of_sfi_12_signed_for_oda_but_not_coded_70_fails_sda(tmp_path: Path) -> None:
    raw = read_profile_json("unionpay-debit")
    app = raw["applications"][0]
    app["afl"] += "60010101"  # SFI 12, record 1, flagged for ODA
    app["records"].append({"sfi": 12, "record": 1, "raw": "DF0103AABBCC"})  # not a '70' template
    card = resigned_card("unionpay-sfi12", raw, tmp_path)
    result = run(card, pin="123456")
    # the issuer signed that record as it is, so only the record's coding can fail SDA
    assert TvrBit.SDA_FAILED in tvr(result) and TvrBit.SDA_SELECTED in tvr(result)
    assert result.oda_failure is not None and "not coded as tag 70" in result.oda_failure
    assert result.tsi[0] & 0x80  # offline data authentication performed
    # the same card with the record coded as '70' passes SDA: the signature itself is good
    app["records"][-1]["raw"] = "7006DF0103AABBCC"
    good = run(resigned_card("unionpay-sfi12", raw, tmp_path / "good"), pin="123456")
    assert TvrBit.SDA_FAILED not in tvr(good) and good.oda_failure is None


# --- card data the kernel hands on --------------------------------------------------------------


def replace_in_records(tag: int, value: bytes) -> Hook:
    """Give `tag` the value `value` in whichever record (a '70' template) carries it."""

    def hook(command: bytes, answer: bytes) -> bytes | None:
        if command[1] != 0xB2 or answer[-2:] != b"\x90\x00" or tlv.find(answer[:-2], tag) is None:
            return None
        objects = tlv.parse_one(answer[:-2], 0x70).children()
        body = b"".join(tlv.encode(obj.tag, value if obj.tag == tag else obj.value) for obj in objects)
        return tlv.encode(0x70, body) + b"\x90\x00"

    return hook


@pytest.mark.parametrize(
    "pan", ["47617390010100AF", "FFFFFFFFFFFFFFFF", ""], ids=["not-digits", "all-F", "empty"]
)
def test_a_pan_that_is_not_a_pan_ends_the_transaction_as_card_data(pan: str) -> None:
    # the exception file is checked for every card: a fingerprint of a PAN that is not one used to
    # raise the kernel configuration's error out of the kernel
    result = run(load_profile("visa-credit"), hook=replace_in_records(0x5A, bytes.fromhex(pan)))
    assert result.outcome is Outcome.TERMINATED
    assert "(tag 5A)" in result.reason and result.masked_pan is None
    assert not any(entry["name"] == "GENERATE AC" for entry in result.trace)


# --- what the host's answer approves ------------------------------------------------------------


def sim_host(code: str, approved_amount: int | None = None) -> OnlineHandler:
    """The sim issuer answering `code` (its ARPC made over that code), naming an approved amount."""
    issuer = issuer_from_profiles()

    def online(request: OnlineRequest) -> OnlineResponse | None:
        psn = request.pan_sequence_number
        answer = issuer.authorise(request.field55, request.pan, psn, request.amount, response_code=code)
        assert answer is not None
        arpc, scripts = answer.issuer_authentication_data, answer.scripts
        return OnlineResponse(answer.response_code, arpc, scripts, approved_amount=approved_amount)

    return online


@pytest.mark.parametrize(("code", "approved"), [("10", None), ("10", 3000), ("00", 3000), ("00", 6001)])
def test_an_approval_of_another_amount_is_declined_and_reversed(code: str, approved: int | None) -> None:
    result = run(load_profile("visa-credit"), amount=6000, online=sim_host(code, approved))
    assert not result.approved
    assert result.outcome is Outcome.HOST_APPROVED_CARD_DECLINED and result.reversal_required
    assert result.cid == 0x00  # the card was asked for an AAC, not a TC over the whole 60.00
    assert (result.response_code, result.approved_amount) == (code, approved)
    assert "partial approval" in result.reason
    assert TvrBit.ISSUER_AUTHENTICATION_FAILED not in tvr(result)  # the ARPC was made over that code


@pytest.mark.parametrize(("code", "approved"), [("10", 6000), ("00", 6000), ("00", None)])
def test_an_approval_of_the_whole_amount_is_approved(code: str, approved: int | None) -> None:
    result = run(load_profile("visa-credit"), amount=6000, online=sim_host(code, approved))
    assert result.outcome is Outcome.APPROVED_ONLINE and result.cid == 0x40


# --- applications without kernel parameters (Book 1 12.3.1, 12.4) -------------------------------


def visa_electron_and_credit(directory: Path) -> Card:
    """Visa Electron (priority 1) and Visa Credit (priority 2) on one card, re-signed with the TEST keys."""
    raw = read_profile_json("visa-credit")
    credit = raw["applications"][0]
    electron = json.loads(json.dumps(credit))
    electron["aid"] = "A0000000032010"
    electron["fci"].update({"50": "ascii:VISA ELECTRON", "87": "01"})
    credit["fci"]["87"] = "02"
    raw["applications"] = [electron, credit]
    return resigned_card("visa-two-apps", raw, directory)


def test_application_without_kernel_parameters_is_left_out_before_gpo(tmp_path: Path) -> None:
    shipped = load_kernel_config()
    electron = bytes.fromhex("A0000000032010")
    no_electron = replace(shipped, applications=tuple(a for a in shipped.applications if a.aid != electron))
    result = run(visa_electron_and_credit(tmp_path), config=no_electron)
    assert result.outcome is Outcome.APPROVED_OFFLINE
    assert result.aid == bytes.fromhex("A0000000031010")
    gpo = [entry for entry in result.trace if entry["name"] == "GET PROCESSING OPTIONS"]
    assert len(gpo) == 1  # the Electron application was never initiated (its ATC not spent)
    # with its parameters (shipped kernel.json) the terminal takes the higher-priority Electron
    first = run(visa_electron_and_credit(tmp_path / "shipped"))
    assert first.aid == electron and first.outcome is Outcome.APPROVED_OFFLINE


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x5F34, "0A"),  # not two decimal digits
        (0x5F34, "0101"),  # n 2 is one byte
        (0x5F34, ""),
        (0x57, "4761739001010010D30122010000FF"),  # two pad nibbles
        (0x57, "4761739001010010"),  # no separator, no expiry
        (0x57, "4761739001010010D3012A01"),  # service code not digits
    ],
)
def test_card_data_for_the_host_is_checked_when_read(tag: int, value: str) -> None:
    seen: list[OnlineRequest] = []

    def online(request: OnlineRequest) -> OnlineResponse | None:
        seen.append(request)
        return None

    profile = load_profile("visa-credit")
    result = run(profile, amount=6000, hook=replace_in_records(tag, bytes.fromhex(value)), online=online)
    assert result.outcome is Outcome.TERMINATED and f"(tag {tag:X})" in result.reason
    assert seen == []  # nothing malformed reaches the host side


HOST_LINK_ERRORS = [
    HostTimeoutError("no answer"),
    HostUnreachableError("connection refused"),
    HostConnectionLostError("reset by peer"),
    MacMismatchError("field 64"),
    MessageFormatError("field 39"),
]


@pytest.mark.parametrize("error", HOST_LINK_ERRORS, ids=lambda error: type(error).__name__)
def test_a_host_link_error_is_unable_to_go_online(error: HostError) -> None:
    calls: list[OnlineRequest] = []

    def online(request: OnlineRequest) -> OnlineResponse | None:
        calls.append(request)
        raise error

    result = run(load_profile("visa-credit"), amount=6000, online=online)
    assert len(calls) == 1 and calls[0].pan_sequence_number == 1  # 5F34 01 handed over as a number
    # default action analysis: TAC default DC4000A800 covers 'exceeds floor limit' -> AAC
    assert result.outcome is Outcome.DECLINED_OFFLINE and result.cid == 0x00
    failed = f"host callback failed ({type(error).__name__})"
    assert result.reason == f"unable to go online ({failed}); card declined"


@dataclass
class PowerWatchingReader(HookedReader):
    powered_off: bool = False

    def power_off(self) -> None:
        self.powered_off = True
        super().power_off()


@pytest.mark.parametrize(
    "error",
    # a buggy callback; errors of the kernel's own kinds (card data, reader) are not taken for the card's
    [KeyError(3), ValueError("invalid literal"), TlvError("bad length", 7), CardRemovedError("?")],
    ids=lambda error: type(error).__name__,
)
def test_any_other_error_of_the_host_callback_propagates(error: Exception) -> None:
    def online(request: OnlineRequest) -> OnlineResponse | None:
        raise error

    services = replace(sim_services(), online=online)
    reader = PowerWatchingReader(SimReader(Card(load_profile("visa-credit"), rng=seeded(4))))
    with pytest.raises(type(error)) as raised:
        run_transaction(reader, purchase(6000), services)
    assert raised.value is error
    assert any("may need reversal" in note for note in raised.value.__notes__)
    # the card got nothing after the ARQC, and the session ended: powered off
    assert [command[1] for command, _ in reader.log].count(0xAE) == 1
    assert reader.powered_off


def test_the_sim_issuer_adapter_takes_the_pan_sequence_number_as_a_number() -> None:
    seen: list[OnlineRequest] = []
    run(load_profile("visa-credit"), amount=6000, online=lambda request: seen.append(request) or None)
    adapter = issuer_online(issuer_from_profiles())
    answer = adapter(seen[0])
    assert answer is not None and answer.response_code == "00"
    # another sequence number derives other card keys: the ARQC does not verify, a decline and no error
    other = adapter(replace(seen[0], pan_sequence_number=10))
    assert other is not None and other.response_code == "05"


def test_a_card_answering_63c3_to_every_pin_is_not_asked_for_ever() -> None:
    asked: list[tuple[str, int | None]] = []

    def keypad(kind: str, tries_left: int | None) -> str | None:
        asked.append((kind, tries_left))
        assert len(asked) <= 50, "still asking for a PIN after 50 entries"
        return "9999"

    hook: Hook = lambda command, answer: b"\x63\xc3" if command[1] == 0x20 else None  # noqa: E731
    result = run(load_profile("mastercard-credit"), pin_entry=keypad, hook=hook)
    # 9F17 said 3 tries; 63C3 after a wrong PIN means the counter did not go down: the offline PIN
    # CVM fails after one entry, and the card's next rule (online PIN) is asked once
    assert asked == [("offline", 3), ("online", None)]
    assert TvrBit.PIN_TRY_LIMIT_EXCEEDED not in tvr(result)


# --- data capture: 8A and 9F5B in the final field 55 (Book 4 Annex A6, 12) ------------------------


def capture_config() -> KernelConfig:
    shipped = load_kernel_config()
    return replace(shipped, field55_tags=(*shipped.field55_tags, 0x8A, 0x9F5B))


def test_offline_outcomes_carry_the_terminals_authorisation_response_code() -> None:
    approved = run(load_profile("visa-credit"), config=capture_config())
    assert approved.outcome is Outcome.APPROVED_OFFLINE
    assert approved.response_code == "Y1" and icc(approved.field55)[0x8A] == b"Y1"
    profile = load_profile("visa-credit")
    declining = replace(profile, faults=replace(profile.faults, aac_on_first_generate_ac=True))
    declined = run(declining, config=capture_config())
    assert declined.outcome is Outcome.DECLINED_OFFLINE
    assert declined.response_code == "Z1" and icc(declined.field55)[0x8A] == b"Z1"
    unable = run(load_profile("visa-credit"), amount=6000, online=None, config=capture_config())
    assert unable.response_code == "Z3" and icc(unable.field55)[0x8A] == b"Z3"
    # the authorisation request never carries an 8A: the host has not answered yet
    online = run(load_profile("visa-credit"), amount=6000, config=capture_config())
    assert 0x8A not in icc(online.authorisation_field55) and icc(online.field55)[0x8A] == b"00"


def test_issuer_script_results_reach_field55_when_configured() -> None:
    issuer = issuer_from_profiles()
    issuer.queue_script(VISA_PAN, ScriptRequest.pin_unblock(), template=0x71)
    issuer.queue_script(VISA_PAN, ScriptRequest.application_unblock(), template=0x72)
    host = issuer_online(issuer)
    result = run(load_profile("visa-credit"), amount=6000, online=host, config=capture_config())
    assert result.outcome is Outcome.APPROVED_ONLINE and len(result.script_results) == 2
    assert icc(result.field55)[0x9F5B] == result.issuer_script_results
    plain = run(load_profile("visa-credit"), amount=6000)
    assert 0x9F5B not in icc(plain.field55)  # not in the default tag list
