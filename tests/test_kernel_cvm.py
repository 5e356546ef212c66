"""Cardholder verification (Book 3 10.5, Annex C3) with hand-built CVM lists and a fake card.

Expected CVM Results and TVR bits are written from the rules: byte 1 the CV rule's
method byte (with b7), byte 2 its condition, byte 3 00 unknown / 01 failed / 02 successful;
'3F' when no CVM was performed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from firmware.emv.cvm import (
    CvmContext,
    CvmOutcome,
    PinKind,
    RsaPublicKey,
    parse_cvm_list,
    perform_cardholder_verification,
    plaintext_pin_block,
)
from firmware.emv.transaction import TransactionType
from firmware.emv.tvr import TvrBit
from firmware.errors import CardDataError

ALL_CVMS = bytes.fromhex("E0F8C8")  # plaintext PIN, online PIN, signature, enciphered PIN, no CVM
PAN = "4761739001010010"


@dataclass
class FakeCard:
    pin: str = "1234"
    tries: int | None = 3
    verify_sw: int | None = None  # force one status word
    challenge: bytes = bytes.fromhex("0102030405060708")
    private_key: rsa.RSAPrivateKey | None = None
    apdus: list[tuple[str, bytes]] = field(default_factory=list)

    def get_data(self, tag: int) -> bytes | None:
        self.apdus.append(("GET DATA", tag.to_bytes(2, "big")))
        if tag == 0x9F17 and self.tries is not None:
            return bytes([self.tries])
        return None

    def get_challenge(self) -> bytes | None:
        self.apdus.append(("GET CHALLENGE", b""))
        return self.challenge

    def verify(self, qualifier: int, data: bytes) -> int:
        self.apdus.append(("VERIFY", bytes([qualifier]) + data))
        if self.verify_sw is not None:
            return self.verify_sw
        if qualifier == 0x88:
            assert self.private_key is not None
            numbers = self.private_key.private_numbers()
            n = numbers.public_numbers.n
            clear = pow(int.from_bytes(data, "big"), numbers.d, n).to_bytes(len(data), "big")
            assert clear[0] == 0x7F and clear[9:17] == self.challenge
            block = clear[1:9]
        else:
            block = data
        entered = block.hex()[2 : 2 + int(block.hex()[1], 16)]
        if self.tries == 0:
            return 0x6983
        if entered == self.pin:
            return 0x9000
        assert self.tries is not None
        self.tries -= 1
        return 0x63C0 | self.tries


@dataclass
class Keypad:
    answers: list[str | None]
    calls: list[tuple[PinKind, int | None]] = field(default_factory=list)

    def __call__(self, kind: PinKind, tries_left: int | None) -> str | None:
        self.calls.append((kind, tries_left))
        return self.answers.pop(0)


def ctx(
    amount: int = 1234,
    *,
    caps: bytes = ALL_CVMS,
    kind: TransactionType = TransactionType.PURCHASE,
    same_currency: bool = True,
    unattended: bool = False,
) -> CvmContext:
    return CvmContext(
        capabilities=caps,
        transaction_type=kind,
        amount=amount,
        amount_other=0,
        unattended=unattended,
        in_application_currency=same_currency,
    )


def cvm_list(rules: str, x: int = 0, y: int = 0) -> bytes:
    return x.to_bytes(4, "big") + y.to_bytes(4, "big") + bytes.fromhex(rules)


def no_key() -> RsaPublicKey | None:
    return None


def run(
    rules: bytes | None,
    context: CvmContext | None = None,
    *,
    card: FakeCard | None = None,
    keypad: Keypad | None = None,
    online_block: Callable[[str, str], bytes] | None = None,
    pin_key: Callable[[], RsaPublicKey | None] = no_key,
) -> CvmOutcome:
    return perform_cardholder_verification(
        rules,
        context or ctx(),
        card=card or FakeCard(),
        pan=PAN,
        pin_entry=keypad,
        online_pin_block=online_block,
        pin_key=pin_key,
        random_bytes=lambda n: bytes([0xAA]) * n,
    )


def test_plaintext_pin_block_layout() -> None:
    # Book 3 6.5.12: C=2, N=4, PIN 1234, filler F
    assert plaintext_pin_block("1234") == bytes.fromhex("241234FFFFFFFFFF")
    assert plaintext_pin_block("123456789012") == bytes.fromhex("2C123456789012FF")
    with pytest.raises(ValueError):
        plaintext_pin_block("123")


def test_parse_cvm_list() -> None:
    parsed = parse_cvm_list(cvm_list("42031E031F00", x=1000, y=2000))
    assert (parsed.amount_x, parsed.amount_y) == (1000, 2000)
    assert [(r.method, r.condition, r.apply_succeeding) for r in parsed.rules] == [
        (0x02, 0x03, True),
        (0x1E, 0x03, False),
        (0x1F, 0x00, False),
    ]
    with pytest.raises(CardDataError, match="8E"):
        parse_cvm_list(bytes(9))


def test_offline_plaintext_pin_correct() -> None:
    card = FakeCard()
    keypad = Keypad(["1234"])
    outcome = run(cvm_list("0100"), card=card, keypad=keypad)
    assert outcome.results == bytes.fromhex("010002")
    assert outcome.tvr == 0 and outcome.performed
    assert keypad.calls == [("offline", 3)]
    assert card.apdus[-1] == ("VERIFY", bytes.fromhex("80241234FFFFFFFFFF"))


def test_wrong_pin_then_right_passes_tries_left() -> None:
    keypad = Keypad(["9999", "1234"])
    outcome = run(cvm_list("0100"), keypad=keypad)
    assert outcome.results == bytes.fromhex("010002")
    assert keypad.calls == [("offline", 3), ("offline", 2)]


def test_last_try_wrong_sets_pin_try_limit_exceeded() -> None:
    outcome = run(cvm_list("0100"), card=FakeCard(tries=1), keypad=Keypad(["0000"]))
    assert outcome.results == bytes.fromhex("010001")
    assert outcome.tvr == TvrBit.PIN_TRY_LIMIT_EXCEEDED | TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL


def test_pin_try_counter_zero_means_no_pin_entry() -> None:
    card = FakeCard(tries=0)
    keypad = Keypad([])
    outcome = run(cvm_list("41001E00"), card=card, keypad=keypad)
    # PIN fails without prompting, signature (next rule) succeeds
    assert keypad.calls == []
    assert outcome.tvr == TvrBit.PIN_TRY_LIMIT_EXCEEDED
    assert outcome.results == bytes.fromhex("1E0000") and outcome.signature_required


def test_pin_blocked_status_word() -> None:
    outcome = run(cvm_list("0100"), card=FakeCard(tries=None, verify_sw=0x6983), keypad=Keypad(["1234"]))
    assert outcome.tvr == TvrBit.PIN_TRY_LIMIT_EXCEEDED | TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL


def test_bypass_then_signature_and_later_pin_cvms_count_as_bypassed() -> None:
    keypad = Keypad([None])
    outcome = run(cvm_list("41004200" + "1E00"), keypad=keypad, online_block=lambda p, a: b"x")
    assert keypad.calls == [("offline", 3)]  # the online PIN rule is not prompted again
    assert outcome.tvr == TvrBit.PIN_NOT_ENTERED
    assert outcome.results == bytes.fromhex("1E0000")


def test_no_pin_pad() -> None:
    outcome = run(cvm_list("0100"), keypad=None)
    assert outcome.tvr == (
        TvrBit.PIN_PAD_NOT_PRESENT_OR_NOT_WORKING | TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL
    )
    assert outcome.results == bytes.fromhex("3F0001")


def test_unrecognised_cvm_then_no_cvm() -> None:
    outcome = run(cvm_list("48001F00"))
    assert outcome.tvr == TvrBit.UNRECOGNISED_CVM
    assert outcome.results == bytes.fromhex("1F0002")


def test_unrecognised_cvm_without_succeeding_fails() -> None:
    outcome = run(cvm_list("08001F00"))
    assert outcome.tvr == TvrBit.UNRECOGNISED_CVM | TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL
    assert outcome.results == bytes.fromhex("3F0001")


def test_online_pin() -> None:
    seen: list[tuple[str, str]] = []

    def block(pin: str, pan: str) -> bytes:
        seen.append((pin, pan))
        return bytes(8)

    keypad = Keypad(["4321"])
    outcome = run(cvm_list("0200"), keypad=keypad, online_block=block)
    assert seen == [("4321", PAN)]
    assert keypad.calls == [("online", None)]
    assert outcome.tvr == TvrBit.ONLINE_PIN_ENTERED
    assert outcome.results == bytes.fromhex("020000")
    assert outcome.online_pin_block == bytes(8)


def test_fail_cvm_rule() -> None:
    outcome = run(cvm_list("0000"))
    assert outcome.results == bytes.fromhex("000001")
    assert outcome.tvr == TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL


@pytest.mark.parametrize(
    ("amount", "same_currency", "results"),
    [
        (999, True, "1F0602"),  # under X: no CVM
        (1000, True, "1E0000"),  # equal to X is neither under nor over: the 'always' rule
        (1500, True, "1E0700"),  # over X: signature
        (1500, False, "1E0000"),  # not in the application currency: amount rules never apply
    ],
)
def test_amount_conditions(amount: int, same_currency: bool, results: str) -> None:
    rules = cvm_list("1F06" + "1E07" + "1E00", x=1000)
    outcome = run(rules, ctx(amount, same_currency=same_currency))
    assert outcome.results == bytes.fromhex(results)


def test_amount_y_conditions() -> None:
    rules = cvm_list("1F08" + "1E09", x=0, y=5000)
    assert run(rules, ctx(4999)).results == bytes.fromhex("1F0802")
    assert run(rules, ctx(5001)).results == bytes.fromhex("1E0900")
    failed = run(rules, ctx(5000))
    assert failed.results == bytes.fromhex("3F0001")
    assert failed.tvr == TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL


def test_terminal_supports_condition_skips_unsupported() -> None:
    no_signature = bytes.fromhex("E0D8C8")
    outcome = run(cvm_list("1E031F00"), ctx(caps=no_signature))
    assert outcome.results == bytes.fromhex("1F0002") and outcome.tvr == 0


def test_cash_conditions() -> None:
    rules = cvm_list("1E01" + "1F04")  # unattended cash -> signature; manual cash -> no CVM
    assert run(rules, ctx(kind=TransactionType.CASH)).results == bytes.fromhex("1F0402")
    assert run(rules, ctx(kind=TransactionType.CASH, unattended=True)).results == bytes.fromhex("1E0100")
    assert run(cvm_list("1E021F05"), ctx()).results == bytes.fromhex("1E0200")
    assert run(cvm_list("1E021F05"), ctx(kind=TransactionType.PURCHASE_WITH_CASHBACK)).results == (
        bytes.fromhex("1F0502")
    )


def test_absent_list_is_icc_data_missing_and_not_performed() -> None:
    outcome = run(None)
    assert outcome.results == bytes.fromhex("3F0000")
    assert outcome.tvr == TvrBit.ICC_DATA_MISSING and not outcome.performed


def test_enciphered_offline_pin() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=1024)
    numbers = key.public_key().public_numbers()
    public = RsaPublicKey(numbers.n.to_bytes(128, "big"), numbers.e)
    card = FakeCard(private_key=key)
    outcome = run(cvm_list("0400"), card=card, keypad=Keypad(["1234"]), pin_key=lambda: public)
    assert outcome.results == bytes.fromhex("040002")
    kinds = [name for name, _ in card.apdus]
    assert kinds == ["GET DATA", "GET CHALLENGE", "VERIFY"]
    assert card.apdus[-1][1][0] == 0x88 and len(card.apdus[-1][1]) == 129


def test_enciphered_pin_without_key_fails() -> None:
    outcome = run(cvm_list("04001F00"), keypad=Keypad(["1234"]))
    assert outcome.results == bytes.fromhex("040001")
    assert outcome.tvr == TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL


def test_pin_and_signature_needs_signature() -> None:
    outcome = run(cvm_list("0300"), keypad=Keypad(["1234"]))
    assert outcome.results == bytes.fromhex("030000") and outcome.signature_required


# --- the PIN re-entry loop is bounded ---------------------------------------------------------------


@pytest.mark.parametrize(("reported", "entries"), [(3, 1), (None, 2)])
def test_a_counter_that_does_not_go_down_ends_the_pin_entry(reported: int | None, entries: int) -> None:
    # every wrong PIN answered 63C3: after 9F17 = 3 (or a first 63C3) the counter never drops
    keypad = Keypad(["9999"] * 50)
    outcome = run(cvm_list("0100"), card=FakeCard(tries=reported, verify_sw=0x63C3), keypad=keypad)
    assert len(keypad.calls) == entries
    assert outcome.results == bytes.fromhex("010001")
    assert outcome.tvr == TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL  # not 'PIN try limit exceeded'


def test_pin_entries_are_capped_whatever_the_card_counts() -> None:
    # a card reporting 200 tries and counting down 63CF, 63CE ...: at most 15 entries in all
    card = FakeCard(tries=200, pin="0000")
    answers = iter(range(0xF, 0, -1))
    card.verify = lambda qualifier, data: 0x63C0 | next(answers, 1)  # type: ignore[method-assign]
    keypad = Keypad(["9999"] * 50)
    outcome = run(cvm_list("0100"), card=card, keypad=keypad)
    assert len(keypad.calls) == 15
    assert outcome.results == bytes.fromhex("010001")
