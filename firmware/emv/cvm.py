"""Cardholder verification (EMV Book 3 10.5, Annex C3; Book 4 6.3.4).

The CVM list (8E) is parsed and walked rule by rule. Everything that needs
the card goes through `PinCard` (GET DATA, GET CHALLENGE, VERIFY), the PIN
comes from the caller's `pin_entry` callback and an online PIN block from the
caller's `online_pin_block` callable, so this module never touches a keypad
or a key.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from firmware.emv.transaction import TransactionType
from firmware.emv.tvr import TvrBit
from firmware.errors import CardDataError

__all__ = [
    "CvRule",
    "CvmCode",
    "CvmCondition",
    "CvmContext",
    "CvmList",
    "CvmOutcome",
    "OnlinePinBlock",
    "PinCard",
    "PinEntry",
    "PinKind",
    "RsaPublicKey",
    "condition_satisfied",
    "enciphered_pin_data",
    "parse_cvm_list",
    "perform_cardholder_verification",
    "plaintext_pin_block",
    "terminal_supports",
]

PinKind = Literal["offline", "online"]
PinEntry = Callable[[PinKind, "int | None"], "str | None"]
OnlinePinBlock = Callable[[str, str], bytes]

RESULT_UNKNOWN = 0x00
RESULT_FAILED = 0x01
RESULT_SUCCESSFUL = 0x02
NO_CVM_PERFORMED = 0x3F

VERIFY_PLAINTEXT = 0x80
VERIFY_ENCIPHERED = 0x88

# A card answers a wrong PIN with 63Cx, x the tries left: a counter of at most 15. The terminal asks
# again only while that counter goes down, and never more often than this.
MAX_OFFLINE_PIN_ENTRIES = 15


class CvmCode(enum.IntEnum):
    """CV Rule byte 1, bits 6-1 (Annex C3)."""

    FAIL = 0x00
    PLAINTEXT_PIN = 0x01
    ONLINE_PIN = 0x02
    PLAINTEXT_PIN_AND_SIGNATURE = 0x03
    ENCIPHERED_PIN = 0x04
    ENCIPHERED_PIN_AND_SIGNATURE = 0x05
    SIGNATURE = 0x1E
    NO_CVM_REQUIRED = 0x1F


class CvmCondition(enum.IntEnum):
    """CV Rule byte 2 (Annex C3); other values are not understood and the rule is skipped."""

    ALWAYS = 0x00
    UNATTENDED_CASH = 0x01
    NOT_CASH_OR_CASHBACK = 0x02
    TERMINAL_SUPPORTS = 0x03
    MANUAL_CASH = 0x04
    PURCHASE_WITH_CASHBACK = 0x05
    UNDER_X = 0x06
    OVER_X = 0x07
    UNDER_Y = 0x08
    OVER_Y = 0x09


@dataclass(frozen=True)
class CvRule:
    method: int
    condition: int
    apply_succeeding: bool

    @property
    def code_byte(self) -> int:
        return self.method | (0x40 if self.apply_succeeding else 0)


@dataclass(frozen=True)
class CvmList:
    amount_x: int
    amount_y: int
    rules: tuple[CvRule, ...]


@dataclass(frozen=True)
class RsaPublicKey:
    """The ICC PIN encipherment key (9F2D..) or the ICC public key, as recovered by ODA."""

    modulus: bytes
    exponent: int


@dataclass(frozen=True)
class CvmContext:
    capabilities: bytes
    transaction_type: TransactionType
    amount: int
    amount_other: int
    unattended: bool
    in_application_currency: bool


class PinCard(Protocol):
    """The card commands cardholder verification needs (the kernel adapts its transport)."""

    def get_data(self, tag: int) -> bytes | None:
        """GET DATA; the value of `tag`, or None when the card does not return it."""
        ...

    def get_challenge(self) -> bytes | None:
        """GET CHALLENGE; 8 bytes, or None when the card refuses."""
        ...

    def verify(self, qualifier: int, data: bytes) -> int:
        """VERIFY with P2 = qualifier; returns the status word."""
        ...


@dataclass
class CvmOutcome:
    results: bytes
    tvr: TvrBit = field(default_factory=lambda: TvrBit(0))
    performed: bool = False
    signature_required: bool = False
    online_pin_block: bytes | None = field(default=None, repr=False)


def parse_cvm_list(data: bytes) -> CvmList:
    """8E: amount X (4), amount Y (4), then 2-byte CV rules."""
    if len(data) < 8 or len(data) % 2:
        raise CardDataError(f"CVM list of {len(data)} bytes is not 8 + 2n", 0x8E)
    rules = tuple(
        CvRule(method=data[i] & 0x3F, condition=data[i + 1], apply_succeeding=bool(data[i] & 0x40))
        for i in range(8, len(data), 2)
    )
    return CvmList(int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big"), rules)


_PIN_OFFLINE_PLAIN = (1, 0x80)
_PIN_ONLINE = (1, 0x40)
_SIGNATURE = (1, 0x20)
_PIN_OFFLINE_ENCIPHERED = (1, 0x10)
_NO_CVM = (1, 0x08)

_NEEDS: dict[int, tuple[tuple[int, int], ...]] = {
    CvmCode.PLAINTEXT_PIN: (_PIN_OFFLINE_PLAIN,),
    CvmCode.ONLINE_PIN: (_PIN_ONLINE,),
    CvmCode.PLAINTEXT_PIN_AND_SIGNATURE: (_PIN_OFFLINE_PLAIN, _SIGNATURE),
    CvmCode.ENCIPHERED_PIN: (_PIN_OFFLINE_ENCIPHERED,),
    CvmCode.ENCIPHERED_PIN_AND_SIGNATURE: (_PIN_OFFLINE_ENCIPHERED, _SIGNATURE),
    CvmCode.SIGNATURE: (_SIGNATURE,),
    CvmCode.NO_CVM_REQUIRED: (_NO_CVM,),
    CvmCode.FAIL: (),
}

_PIN_METHODS = frozenset(
    {
        CvmCode.PLAINTEXT_PIN,
        CvmCode.ONLINE_PIN,
        CvmCode.PLAINTEXT_PIN_AND_SIGNATURE,
        CvmCode.ENCIPHERED_PIN,
        CvmCode.ENCIPHERED_PIN_AND_SIGNATURE,
    }
)


def terminal_supports(method: int, capabilities: bytes) -> bool:
    """Terminal Capabilities 9F33 byte 2 (Book 4 Annex A2) against a CVM code."""
    needs = _NEEDS.get(method)
    if needs is None:
        return False
    return all(capabilities[index] & mask for index, mask in needs)


def condition_satisfied(rule: CvRule, cvm_list: CvmList, ctx: CvmContext) -> bool:
    cash = ctx.transaction_type is TransactionType.CASH
    cashback = ctx.transaction_type is TransactionType.PURCHASE_WITH_CASHBACK or (
        ctx.transaction_type is TransactionType.PURCHASE and ctx.amount_other > 0
    )
    condition = rule.condition
    if condition == CvmCondition.ALWAYS:
        return True
    if condition == CvmCondition.UNATTENDED_CASH:
        return cash and ctx.unattended
    if condition == CvmCondition.MANUAL_CASH:
        return cash and not ctx.unattended
    if condition == CvmCondition.NOT_CASH_OR_CASHBACK:
        return not cash and not cashback
    if condition == CvmCondition.PURCHASE_WITH_CASHBACK:
        return cashback
    if condition == CvmCondition.TERMINAL_SUPPORTS:
        return terminal_supports(rule.method, ctx.capabilities)
    if condition in (CvmCondition.UNDER_X, CvmCondition.OVER_X, CvmCondition.UNDER_Y, CvmCondition.OVER_Y):
        if not ctx.in_application_currency:
            return False
        against_x = condition in (CvmCondition.UNDER_X, CvmCondition.OVER_X)
        limit = cvm_list.amount_x if against_x else cvm_list.amount_y
        under = condition in (CvmCondition.UNDER_X, CvmCondition.UNDER_Y)
        return ctx.amount < limit if under else ctx.amount > limit
    return False


def plaintext_pin_block(pin: str) -> bytes:
    """Book 3 6.5.12: control 2, length N, the PIN digits, filler F; 8 bytes."""
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValueError("a PIN is 4 to 12 digits")
    return bytes.fromhex(f"2{len(pin):X}{pin}".ljust(16, "F"))


def enciphered_pin_data(pin: str, challenge: bytes, key: RsaPublicKey, pad: bytes) -> bytes:
    """Book 2 7.1: RSA over '7F' || PIN block || ICC unpredictable number || random pad."""
    size = len(key.modulus)
    if len(challenge) != 8:
        raise CardDataError(f"GET CHALLENGE gave {len(challenge)} bytes, not 8")
    if len(pad) != size - 17:
        raise ValueError(f"the pad must be {size - 17} bytes for a {size}-byte modulus")
    message = int.from_bytes(b"\x7f" + plaintext_pin_block(pin) + challenge + pad, "big")
    modulus = int.from_bytes(key.modulus, "big")
    if message >= modulus:
        raise CardDataError("PIN encipherment key modulus is too small for the PIN data")
    return pow(message, key.exponent, modulus).to_bytes(size, "big")


class _Failed(Exception):
    """Internal: this CVM was not successful (handled inside this module)."""


@dataclass
class _Run:
    cvm_list: CvmList
    ctx: CvmContext
    card: PinCard
    pan: str
    pin_entry: PinEntry | None
    online_pin_block: OnlinePinBlock | None
    pin_key: Callable[[], RsaPublicKey | None]
    random_bytes: Callable[[int], bytes]
    outcome: CvmOutcome
    pin_bypassed: bool = False

    def offline_pin(self, enciphered: bool) -> None:
        if self.pin_bypassed:
            self.outcome.tvr |= TvrBit.PIN_NOT_ENTERED
            raise _Failed
        assert self.pin_entry is not None
        tries_left: int | None = None
        counter = self.card.get_data(0x9F17)
        if counter is not None and len(counter) == 1:
            tries_left = counter[0]
            if tries_left == 0:
                self.outcome.tvr |= TvrBit.PIN_TRY_LIMIT_EXCEEDED
                raise _Failed
        key = self.pin_key() if enciphered else None
        if enciphered and key is None:
            raise _Failed
        for _ in range(MAX_OFFLINE_PIN_ENTRIES):
            pin = self.pin_entry("offline", tries_left)
            if pin is None or not pin.isdigit() or not 4 <= len(pin) <= 12:
                self.pin_bypassed = True
                self.outcome.tvr |= TvrBit.PIN_NOT_ENTERED
                raise _Failed
            if key is not None:
                challenge = self.card.get_challenge()
                if challenge is None:
                    raise _Failed
                pad = self.random_bytes(len(key.modulus) - 17)
                sw = self.card.verify(VERIFY_ENCIPHERED, enciphered_pin_data(pin, challenge, key, pad))
            else:
                sw = self.card.verify(VERIFY_PLAINTEXT, plaintext_pin_block(pin))
            if sw == 0x9000:
                return
            if sw & 0xFFF0 == 0x63C0:
                left = sw & 0x0F
                if left == 0:
                    self.outcome.tvr |= TvrBit.PIN_TRY_LIMIT_EXCEEDED
                    raise _Failed
                if tries_left is not None and left >= tries_left:
                    raise _Failed  # the card's counter did not go down: it would take PINs for ever
                tries_left = left
                continue
            if sw in (0x6983, 0x6984):
                self.outcome.tvr |= TvrBit.PIN_TRY_LIMIT_EXCEEDED
            raise _Failed
        raise _Failed

    def online_pin(self) -> None:
        if self.pin_bypassed:
            self.outcome.tvr |= TvrBit.PIN_NOT_ENTERED
            raise _Failed
        assert self.pin_entry is not None and self.online_pin_block is not None
        pin = self.pin_entry("online", None)
        if pin is None or not pin.isdigit() or not 4 <= len(pin) <= 12:
            self.pin_bypassed = True
            self.outcome.tvr |= TvrBit.PIN_NOT_ENTERED
            raise _Failed
        self.outcome.online_pin_block = self.online_pin_block(pin, self.pan)
        self.outcome.tvr |= TvrBit.ONLINE_PIN_ENTERED

    def can_enter_pin(self, method: int) -> bool:
        if self.pin_entry is None:
            return False
        return method != CvmCode.ONLINE_PIN or self.online_pin_block is not None

    def perform(self, rule: CvRule) -> int:
        """Carry out one recognised, supported CVM; the CVM Results byte 3 on success."""
        method = rule.method
        if method == CvmCode.FAIL:
            raise _Failed
        if method == CvmCode.NO_CVM_REQUIRED:
            return RESULT_SUCCESSFUL
        if method == CvmCode.SIGNATURE:
            self.outcome.signature_required = True
            return RESULT_UNKNOWN
        if method == CvmCode.ONLINE_PIN:
            self.online_pin()
            return RESULT_UNKNOWN
        enciphered = method in (CvmCode.ENCIPHERED_PIN, CvmCode.ENCIPHERED_PIN_AND_SIGNATURE)
        self.offline_pin(enciphered)
        if method in (CvmCode.PLAINTEXT_PIN_AND_SIGNATURE, CvmCode.ENCIPHERED_PIN_AND_SIGNATURE):
            self.outcome.signature_required = True
            return RESULT_UNKNOWN
        return RESULT_SUCCESSFUL


def perform_cardholder_verification(
    cvm_list_data: bytes | None,
    ctx: CvmContext,
    *,
    card: PinCard,
    pan: str,
    pin_entry: PinEntry | None,
    online_pin_block: OnlinePinBlock | None,
    pin_key: Callable[[], RsaPublicKey | None],
    random_bytes: Callable[[int], bytes],
) -> CvmOutcome:
    """Walk the CVM list (Book 3 10.5). `pin_entry` None means no PIN pad.

    CVM Results 9F34: the last CVM performed with its condition and result
    ('00' unknown, '01' failed, '02' successful), or '3F' when none was.
    """
    if not cvm_list_data:
        return CvmOutcome(results=bytes([NO_CVM_PERFORMED, 0, RESULT_UNKNOWN]), tvr=TvrBit.ICC_DATA_MISSING)
    cvm_list = parse_cvm_list(cvm_list_data)
    outcome = CvmOutcome(results=bytes([NO_CVM_PERFORMED, 0, RESULT_FAILED]), performed=True)
    run = _Run(cvm_list, ctx, card, pan, pin_entry, online_pin_block, pin_key, random_bytes, outcome)
    for position, rule in enumerate(cvm_list.rules):
        if not condition_satisfied(rule, cvm_list, ctx):
            continue
        if rule.method not in _NEEDS:
            outcome.tvr |= TvrBit.UNRECOGNISED_CVM
        elif not terminal_supports(rule.method, ctx.capabilities) or (
            rule.method in _PIN_METHODS and not run.can_enter_pin(rule.method)
        ):
            if rule.method in _PIN_METHODS:
                outcome.tvr |= TvrBit.PIN_PAD_NOT_PRESENT_OR_NOT_WORKING
        else:
            try:
                result = run.perform(rule)
            except _Failed:
                outcome.results = bytes([rule.code_byte, rule.condition, RESULT_FAILED])
            else:
                outcome.results = bytes([rule.code_byte, rule.condition, result])
                return outcome
        last = position == len(cvm_list.rules) - 1
        if not rule.apply_succeeding or last:
            break
    outcome.tvr |= TvrBit.CARDHOLDER_VERIFICATION_NOT_SUCCESSFUL
    return outcome
