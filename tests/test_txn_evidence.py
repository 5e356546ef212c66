"""Evidence of a reverse request: each field on both sides of its limits, errors naming the field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from firmware.errors import EvidenceError, PosError
from firmware.store.sensitive import check_storable
from firmware.txn.evidence import match_original, normalise_contact, validate_evidence
from firmware.txn.model import Evidence, EvidenceField, JournalEntry, TxnStatus, TxnType

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2025, 3, 1, 15, 30, tzinfo=BEIJING)
ALL = frozenset(EvidenceField)
GOOD = Evidence(
    order="ORD-2025_0001",
    original_time=datetime(2025, 3, 1, 9, 15, tzinfo=BEIJING),
    name="张伟",
    contact="+86 138 0013 8000",
    reason="顾客退货 / returned goods",
)


def luhn(digits: str) -> bool:
    """An independent Luhn check, to show the card-number cases are what they claim."""
    total = sum(int(d) if i % 2 == 0 else sum(divmod(int(d) * 2, 10)) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def test_good_evidence_is_kept_as_given() -> None:
    assert validate_evidence(GOOD, ALL, NOW) == GOOD


@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("order", "A", "A"),
        ("order", "x" * 32, "x" * 32),
        ("order", "  ORD-1  ", "ORD-1"),
        ("name", "张", "张"),
        ("name", "名" * 40, "名" * 40),
        ("name", "  Zhang   Wei  ", "Zhang Wei"),
        ("name", "Lǚ Xiǎomíng", "Lǚ Xiǎomíng"),
        ("name", "Lu\u0308", "Lü"),  # combining diaeresis, NFC-composed
        ("name", "阿沛·阿旺晋美", "阿沛·阿旺晋美"),
        ("name", "Seán O'Brien-Smith", "Seán O'Brien-Smith"),
        ("name", "Zhang\u3000Wei", "Zhang Wei"),  # ideographic space made one ASCII space
        ("contact", "13800138000", "13800138000"),
        ("contact", "12345", "12345"),  # 5 digits
        ("contact", "+" + "1" * 20, "+" + "1" * 20),  # 20 digits
        ("contact", "+86 138-0013-8000", "+86 138 0013 8000"),
        ("contact", "010  - 6552 2000", "010 6552 2000"),
        ("contact", "Zhang.Wei@Example.COM", "Zhang.Wei@example.com"),
        ("contact", "a@b.cn", "a@b.cn"),
        ("contact", "x" * 58 + "@ab.cn", "x" * 58 + "@ab.cn"),  # 64 characters
        ("reason", "", ""),
        ("reason", "因" * 80, "因" * 80),
        ("reason", "  wrong size \n", "wrong size"),
    ],
)
def test_accepted_fields(field: str, value: str, kept: str) -> None:
    checked = validate_evidence(replace(GOOD, **{field: value}), ALL - {EvidenceField.REASON}, NOW)
    assert getattr(checked, field) == kept


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("order", "", "is required"),
        ("order", "x" * 33, "more than 32 characters"),
        ("order", "ORD 1", "U+0020 is not allowed"),
        ("order", "ORD/1", "U+002F is not allowed"),
        ("order", "订单1", "U+8BA2 is not allowed"),
        ("order", "ORD\u200b1", "U+200B is not allowed (a control or invisible"),
        ("order", "ＯＲＤ", "U+FF2F is not allowed"),
        ("order", "202501011234567801", "reads like a card number"),  # Luhn-valid 18 digits
        ("name", "", "is required"),
        ("name", "   ", "is required"),
        ("name", "名" * 41, "more than 40 characters"),
        ("name", "Zhang\u200bWei", "U+200B is not allowed (a control or invisible"),
        ("name", "Zhang\u202eWei", "U+202E is not allowed (a control"),  # right-to-left override
        ("name", "Zhang\u00adWei", "U+00AD is not allowed (a control"),  # soft hyphen (Cf)
        ("name", "Zhang\x07Wei", "U+0007 is not allowed (a control"),
        ("name", "Zhang\nWei", "U+000A is not allowed (a control"),
        ("name", "Zhang\u2028Wei", "U+2028 is not allowed (a control"),
        ("name", "\ufeffZhang", "U+FEFF is not allowed (a control"),
        ("name", "Zhang Wei 2", "U+0032 is not allowed: a name has letters"),
        ("name", "张伟😀", "U+1F600 is not allowed"),
        ("name", "<b>", "U+003C is not allowed"),
        ("name", "-.-", "has no letter"),
        ("contact", "", "is required"),
        ("contact", "1234", "5 to 20 digits, not 4"),
        ("contact", "+" + "1" * 21, "5 to 20 digits, not 21"),
        ("contact", "１３８００１３８０００", "U+FF11 is not allowed"),
        ("contact", "(010) 6552 2000", "U+0028 is not allowed"),
        ("contact", "138 0013+8000", "U+002B is not allowed"),
        ("contact", "-13800138000", "is not a phone number"),
        ("contact", "++8613800138000", "is not a phone number"),
        ("contact", "138\u200b00138000", "U+200B is not allowed (a control"),
        ("contact", "x" * 59 + "@ab.cn", "at most 64 characters"),  # 65 characters
        ("contact", "zhang@", "is not an e-mail address"),
        ("contact", "@example.com", "is not an e-mail address"),
        ("contact", "zhang wei@example.com", "is not an e-mail address"),
        ("contact", "张伟@example.com", "is not an e-mail address"),
        ("contact", "zhang@example", "is not an e-mail address"),
        ("contact", "8613800138002", "reads like a card number"),  # Luhn-valid, no '+'
        ("reason", "因" * 81, "more than 80 characters"),
        ("reason", "wrong\x00size", "U+0000 is not allowed"),
        ("reason", "card 4111111111111111", "reads like a card number"),
    ],
)
def test_refused_fields(field: str, value: str, words: str) -> None:
    with pytest.raises(EvidenceError) as caught:
        validate_evidence(replace(GOOD, **{field: value}), ALL - {EvidenceField.REASON}, NOW)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert words in str(caught.value)
    assert isinstance(caught.value, PosError)


def test_card_number_cases_are_luhn_valid() -> None:
    assert luhn("202501011234567801")
    assert luhn("8613800138002")
    assert not luhn("8613800138000")


def test_a_phone_number_with_plus_that_reads_like_a_card_number_is_regrouped() -> None:
    # Every digit is kept; the store would refuse the 13 digits in a row.
    assert normalise_contact("+8613800138002") == "+8 6138 0013 8002"
    assert normalise_contact("+8613800138000") == "+8613800138000"  # not Luhn-valid: as typed
    check_storable(normalise_contact("+8613800138002"), "contact")


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (datetime(2025, 3, 1, 9, 15), "has no time zone"),
        (NOW + timedelta(seconds=1), "is after now"),
    ],
)
def test_original_time(when: datetime, words: str) -> None:
    assert validate_evidence(replace(GOOD, original_time=NOW), ALL, NOW).original_time == NOW
    with pytest.raises(EvidenceError, match=words) as caught:
        validate_evidence(replace(GOOD, original_time=when), ALL, NOW)
    assert caught.value.field == EvidenceField.ORIGINAL_TIME


@pytest.mark.parametrize("field", list(EvidenceField))
def test_required_comes_from_the_caller(field: EvidenceField) -> None:
    empty = Evidence(order="", original_time=None, name="", contact="", reason="")
    assert validate_evidence(empty, frozenset(), NOW) == empty
    with pytest.raises(EvidenceError, match="is required") as caught:
        validate_evidence(empty, {field}, NOW)
    assert caught.value.field == field


def test_a_field_not_required_is_still_checked() -> None:
    with pytest.raises(EvidenceError) as caught:
        validate_evidence(replace(GOOD, reason="a\x1bb"), frozenset(), NOW)
    assert caught.value.field == EvidenceField.REASON


def test_errors_do_not_echo_personal_data() -> None:
    with pytest.raises(EvidenceError) as caught:
        validate_evidence(replace(GOOD, name="Zhang Wei 2"), ALL, NOW)
    assert "Zhang" not in str(caught.value)


ORIGINAL = JournalEntry(
    trace=12,
    type=TxnType.SALE,
    amount=10000,
    status=TxnStatus.APPROVED,
    order="ORD-2025_0001",
    batch=1,
    created=datetime(2025, 3, 1, 0, 30, tzinfo=BEIJING),
)


def test_match_original() -> None:
    match_original(GOOD, ORIGINAL)
    # The same instant written in UTC is the previous day there: the date is read in the original's zone.
    match_original(replace(GOOD, original_time=datetime(2025, 2, 28, 16, 30, tzinfo=UTC)), ORIGINAL)
    match_original(replace(GOOD, order="", original_time=None), ORIGINAL)
    with pytest.raises(EvidenceError, match="not the order number") as caught:
        match_original(replace(GOOD, order="ORD-2025_0002"), ORIGINAL)
    assert caught.value.field == EvidenceField.ORDER
    with pytest.raises(EvidenceError, match=r"not the date of the original transaction \(2025-03-01\)"):
        match_original(replace(GOOD, original_time=datetime(2025, 2, 28, 23, 59, tzinfo=BEIJING)), ORIGINAL)
