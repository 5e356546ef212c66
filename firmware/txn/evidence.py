"""The evidence (凭证) a reverse request carries: checked, normalised, or refused naming the field.

`validate_evidence(evidence, required, now)` returns the evidence as it is
kept and printed, or raises `EvidenceError` whose `.field` is the
`EvidenceField` at fault. Which fields are required is the terms' choice
(`firmware.txn.rules.required_evidence`); a field that is not required may
be empty ("" or None), and is checked like any other when it is given.

- order: 1 to 32 ASCII letters, digits, "-" or "_".
- original_time: timezone-aware, not after `now`.
- name: NFC-normalised, trimmed, runs of spaces made one; 1 to 40 characters
  of letters of any script (汉字, pinyin with its tone marks, Latin),
  combining marks, spaces and the punctuation of names (. ' ’ - · ・).
  Control and invisible formatting characters (Unicode category C*) and
  line or paragraph separators are refused by code point.
- contact: a phone number, 5 to 20 ASCII digits with an optional leading
  "+", spaces and dashes kept as single spaces between the groups typed
  ("+86 138-0013-8000" -> "+86 138 0013 8000"); or, when it holds "@", an
  e-mail address of at most 64 ASCII characters (its domain lower-cased).
- reason: NFC-normalised, trimmed, 0 to 80 characters, no C* characters.

The terminal never keeps a clear card number (`firmware.store.sensitive`), so
a field that reads like one (13 to 19 digits in a row passing the Luhn
check) is refused here, where the person can still change it, rather than
by the store later. A phone number given with "+" is regrouped in fours
instead, which keeps every digit.

`match_original(evidence, original)` checks the evidence against the journal:
the order number is the original's, the original date is its date.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import datetime
from typing import Final

from firmware.errors import EvidenceError, SensitiveDataError
from firmware.store.sensitive import check_storable
from firmware.txn.model import Evidence, EvidenceField, JournalEntry

__all__ = ["match_original", "normalise_contact", "validate_evidence"]

MAX_ORDER: Final = 32
MAX_NAME: Final = 40
MAX_EMAIL: Final = 64
MAX_REASON: Final = 80
MIN_PHONE_DIGITS: Final = 5
MAX_PHONE_DIGITS: Final = 20

_ORDER_CHAR: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_NAME_PUNCTUATION: Final = frozenset(".'’-·・")
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_PHONE: Final = re.compile(r"\+?[0-9]+(?:[ -]+[0-9]+)*")


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def _refuse_invisible(text: str, field: EvidenceField) -> None:
    for char in text:
        category = unicodedata.category(char)
        if category.startswith("C") or category in ("Zl", "Zp"):
            raise EvidenceError(
                f"character {_code_point(char)} is not allowed (a control or invisible formatting character)",
                field,
            )


def _refuse_card_number(text: str, field: EvidenceField) -> None:
    try:
        check_storable(text, field.value)
    except SensitiveDataError:
        raise EvidenceError(
            "reads like a card number (13 to 19 digits passing the Luhn check), which the terminal "
            "does not keep",
            field,
        ) from None


def _text(value: str, field: EvidenceField) -> str:
    """NFC-normalised and trimmed of white space; invisible characters left inside are refused."""
    text = unicodedata.normalize("NFC", value).strip()
    _refuse_invisible(text, field)
    return text


def _order(value: str) -> str:
    field = EvidenceField.ORDER
    text = _text(value, field)
    for char in text:
        if char not in _ORDER_CHAR:
            raise EvidenceError(
                f"character {_code_point(char)} is not allowed: only letters A-Z, a-z, digits, '-' and '_'",
                field,
            )
    if len(text) > MAX_ORDER:
        raise EvidenceError(f"has more than {MAX_ORDER} characters", field)
    _refuse_card_number(text, field)
    return text


def _name(value: str) -> str:
    field = EvidenceField.NAME
    text = " ".join(_text(value, field).split())
    for char in text:
        category = unicodedata.category(char)
        if not (category[0] in "LM" or char == " " or char in _NAME_PUNCTUATION):
            raise EvidenceError(
                f"character {_code_point(char)} is not allowed: a name has letters, spaces and . ' - · only",
                field,
            )
    if len(text) > MAX_NAME:
        raise EvidenceError(f"has more than {MAX_NAME} characters", field)
    if text and not any(unicodedata.category(char).startswith("L") for char in text):
        raise EvidenceError("has no letter", field)
    return text


def _grouped_in_fours(digits: str) -> str:
    head = len(digits) % 4
    groups = ([digits[:head]] if head else []) + [digits[i : i + 4] for i in range(head, len(digits), 4)]
    return " ".join(groups)


def normalise_contact(value: str) -> str:
    """The contact as kept: a phone number with single spaces between its groups, or an e-mail address."""
    field = EvidenceField.CONTACT
    text = _text(value, field)
    if not text:
        return text
    if "@" in text:
        if len(text) > MAX_EMAIL:
            raise EvidenceError(f"an e-mail address has at most {MAX_EMAIL} characters", field)
        if not text.isascii() or not _EMAIL.fullmatch(text):
            raise EvidenceError("is not an e-mail address like name@example.com", field)
        local, _, domain = text.rpartition("@")
        text = f"{local}@{domain.lower()}"
        _refuse_card_number(text, field)
        return text
    if not _PHONE.fullmatch(text):
        for char in text:
            if not (char in "0123456789 -" or (char == "+" and text.index(char) == 0)):
                raise EvidenceError(
                    f"character {_code_point(char)} is not allowed: a phone number has ASCII digits, "
                    "a leading '+', spaces and dashes; an e-mail address has '@'",
                    field,
                )
        raise EvidenceError("is not a phone number: a '+' may only lead, a '-' only join digits", field)
    plus = "+" if text.startswith("+") else ""
    groups = re.split(r"[ -]+", text.removeprefix("+"))
    digits = "".join(groups)
    if not MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
        raise EvidenceError(
            f"a phone number has {MIN_PHONE_DIGITS} to {MAX_PHONE_DIGITS} digits, not {len(digits)}", field
        )
    text = plus + " ".join(groups)
    try:
        check_storable(text, field.value)
    except SensitiveDataError:
        if not plus:
            raise EvidenceError(
                "reads like a card number (13 to 19 digits passing the Luhn check), which the terminal "
                "does not keep: write it with '+' and the country code",
                field,
            ) from None
        text = plus + _grouped_in_fours(digits)
    return text


def _reason(value: str) -> str:
    field = EvidenceField.REASON
    text = _text(value, field)
    if len(text) > MAX_REASON:
        raise EvidenceError(f"has more than {MAX_REASON} characters", field)
    _refuse_card_number(text, field)
    return text


def _original_time(value: datetime | None, now: datetime) -> datetime | None:
    field = EvidenceField.ORIGINAL_TIME
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise EvidenceError("has no time zone", field)
    if value > now:
        raise EvidenceError("is after now", field)
    return value


def _require(value: str, field: EvidenceField, required: Collection[EvidenceField]) -> str:
    if not value and field in required:
        raise EvidenceError("is required", field)
    return value


def validate_evidence(evidence: Evidence, required: Collection[EvidenceField], now: datetime) -> Evidence:
    """The evidence as kept and printed; `EvidenceError` naming the first field at fault, in field order."""
    order = _require(_order(evidence.order), EvidenceField.ORDER, required)
    original_time = _original_time(evidence.original_time, now)
    if original_time is None and EvidenceField.ORIGINAL_TIME in required:
        raise EvidenceError("is required", EvidenceField.ORIGINAL_TIME)
    return Evidence(
        order=order,
        original_time=original_time,
        name=_require(_name(evidence.name), EvidenceField.NAME, required),
        contact=_require(normalise_contact(evidence.contact), EvidenceField.CONTACT, required),
        reason=_require(_reason(evidence.reason), EvidenceField.REASON, required),
    )


def match_original(evidence: Evidence, original: JournalEntry) -> None:
    """Raise `EvidenceError` unless the evidence speaks of `original` (its order number, its date)."""
    if evidence.order and evidence.order != original.order:
        raise EvidenceError("is not the order number of the original transaction", EvidenceField.ORDER)
    when = evidence.original_time
    if when is not None and when.astimezone(original.created.tzinfo).date() != original.created.date():
        raise EvidenceError(
            f"is not the date of the original transaction ({original.created:%Y-%m-%d})",
            EvidenceField.ORIGINAL_TIME,
        )
