"""Rules of void, refund, cash refund and adjust: each rule with a case on both sides of its boundary.

Every rule id the module documents has a refused case here (`test_every_documented_rule_has_a_case`),
and each refused case sits next to an allowed one across the same boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from firmware.errors import PosError, RuleViolation
from firmware.txn.model import (
    CashRefund,
    Evidence,
    EvidenceField,
    JournalEntry,
    ReverseOperation,
    TxnStatus,
    TxnType,
)
from firmware.txn.rules import (
    Decision,
    check_adjust,
    check_cash_refund,
    check_refund,
    check_void,
    refunded_total,
    required_evidence,
    supervisor_required,
    terms_lines,
)
from firmware.txn.terms import Language, Terms, load_terms

BEIJING = timezone(timedelta(hours=8))
SOLD = datetime(2025, 3, 1, 10, 0, tzinfo=BEIJING)
NOW = SOLD + timedelta(hours=2)
OPEN = 7
TERMS = load_terms()
EVIDENCE = Evidence("ORD-1", SOLD, "张伟", "13800138000", "")

SALE = JournalEntry(
    trace=101,
    type=TxnType.SALE,
    amount=10000,
    status=TxnStatus.APPROVED,
    order="ORD-1",
    batch=OPEN,
    created=SOLD,
)
PREAUTH = replace(SALE, trace=102, type=TxnType.PREAUTH)


def acting(
    original: JournalEntry, kind: TxnType, amount: int, status: TxnStatus = TxnStatus.APPROVED
) -> JournalEntry:
    return JournalEntry(
        trace=original.trace + 500,
        type=kind,
        amount=amount,
        status=status,
        order=original.order,
        batch=OPEN,
        created=NOW,
        original_batch=original.batch,
        original_trace=original.trace,
    )


def cash(original: JournalEntry, amount: int) -> CashRefund:
    return CashRefund("C000007000001", amount, original.order, original.batch, original.trace, NOW, EVIDENCE)


def terms_with(**changes: object) -> Terms:
    """TERMS with some keys of its sections changed: `refund__max_per_day=...`."""
    terms = TERMS
    for key, value in changes.items():
        section, name = key.split("__")
        terms = replace(terms, **{section: replace(getattr(terms, section), **{name: value})})
    return terms


Case = Callable[[], Decision]


def void(
    original: JournalEntry = SALE,
    related: tuple[JournalEntry, ...] = (),
    cashed: tuple[CashRefund, ...] = (),
    **kw: object,
) -> Case:
    options: dict[str, object] = {"open_batch": OPEN, "now": NOW, "terms": TERMS} | kw
    return lambda: check_void(original, related, cashed, **options)  # type: ignore[arg-type]


def refund(
    amount: int,
    original: JournalEntry = SALE,
    related: tuple[JournalEntry, ...] = (),
    cashed: tuple[CashRefund, ...] = (),
    **kw: object,
) -> Case:
    options: dict[str, object] = {"refunded_today": 0, "open_batch": OPEN, "now": NOW, "terms": TERMS} | kw
    return lambda: check_refund(original, related, cashed, amount=amount, **options)  # type: ignore[arg-type]


def cash_refund(
    amount: int,
    original: JournalEntry = SALE,
    related: tuple[JournalEntry, ...] = (),
    cashed: tuple[CashRefund, ...] = (),
    **kw: object,
) -> Case:
    options: dict[str, object] = {"refunded_today": 0, "open_batch": OPEN, "now": NOW, "terms": TERMS} | kw
    return lambda: check_cash_refund(original, related, cashed, amount=amount, **options)  # type: ignore[arg-type]


def adjust(
    new: int,
    original: JournalEntry = SALE,
    related: tuple[JournalEntry, ...] = (),
    cashed: tuple[CashRefund, ...] = (),
    entered: int | None = None,
    **kw: object,
) -> Case:
    options: dict[str, object] = {"open_batch": OPEN, "now": NOW, "terms": TERMS} | kw
    typed = original.amount if entered is None else entered
    return lambda: check_adjust(original, related, cashed, entered_original=typed, new_amount=new, **options)  # type: ignore[arg-type]


COMPLETION = replace(SALE, trace=103, type=TxnType.COMPLETION)
DAY = timedelta(days=1)

CASES: list[tuple[str, Case, str | None]] = [
    # --- void ---
    ("void of an approved sale of the open batch", void(), None),
    ("void of a completion", void(COMPLETION), None),
    ("void of a pre-authorisation", void(PREAUTH), "void.original_type"),
    ("void of a refund", void(replace(SALE, type=TxnType.REFUND)), "void.original_type"),
    ("void of a voided sale", void(replace(SALE, status=TxnStatus.VOIDED)), "void.already_voided"),
    (
        "void with a pending void",
        void(related=(acting(SALE, TxnType.VOID, 10000, TxnStatus.PENDING),)),
        "void.already_voided",
    ),
    (
        "void after a reversed void",
        void(related=(acting(SALE, TxnType.VOID, 10000, TxnStatus.REVERSED),)),
        None,
    ),
    (
        "void after a declined void",
        void(related=(acting(SALE, TxnType.VOID, 10000, TxnStatus.DECLINED),)),
        None,
    ),
    ("void of a reversed sale", void(replace(SALE, status=TxnStatus.REVERSED)), "void.reversed"),
    ("void of a declined sale", void(replace(SALE, status=TxnStatus.DECLINED)), "void.not_approved"),
    ("void of a pending sale", void(replace(SALE, status=TxnStatus.PENDING)), "void.not_approved"),
    ("void of a card-refunded sale", void(related=(acting(SALE, TxnType.REFUND, 1),)), "void.refunded"),
    ("void of a cash-refunded sale", void(cashed=(cash(SALE, 1),)), "void.refunded"),
    ("void after a failed refund", void(related=(acting(SALE, TxnType.REFUND, 1, TxnStatus.FAILED),)), None),
    (
        "void ignores another sale's refund",
        void(related=(acting(COMPLETION, TxnType.REFUND, 1),), cashed=(cash(COMPLETION, 1),)),
        None,
    ),
    ("void of an adjusted sale", void(related=(acting(SALE, TxnType.ADJUST, 11000),)), "void.adjusted"),
    ("void in a later batch", void(open_batch=OPEN + 1), "void.same_batch"),
    ("void for one fen less", void(amount=9999), "void.full_amount"),
    ("void for one fen more", void(amount=10001), "void.full_amount"),
    ("void for the full amount", void(amount=10000), None),
    # --- card refund ---
    ("refund in full", refund(10000), None),
    ("refund in part", refund(1), None),
    ("refund of zero", refund(0), "refund.amount_not_positive"),
    ("refund below zero", refund(-1), "refund.amount_not_positive"),
    ("refund after settlement", refund(10000, open_batch=OPEN + 3), None),
    ("refund of a completion", refund(100, COMPLETION), None),
    ("refund of a pre-authorisation", refund(100, PREAUTH), "refund.original_type"),
    ("refund of a refund", refund(100, replace(SALE, type=TxnType.REFUND)), "refund.original_type"),
    ("refund of a voided sale", refund(100, replace(SALE, status=TxnStatus.VOIDED)), "refund.voided"),
    (
        "refund with a pending void",
        refund(100, related=(acting(SALE, TxnType.VOID, 10000, TxnStatus.PENDING),)),
        "refund.voided",
    ),
    ("refund of a reversed sale", refund(100, replace(SALE, status=TxnStatus.REVERSED)), "refund.reversed"),
    (
        "refund of a declined sale",
        refund(100, replace(SALE, status=TxnStatus.DECLINED)),
        "refund.not_approved",
    ),
    ("refund one fen past the sale", refund(10001), "refund.exceeds_sale"),
    (
        "refund of the rest after card and cash",
        refund(4000, related=(acting(SALE, TxnType.REFUND, 3000),), cashed=(cash(SALE, 3000),)),
        None,
    ),
    (
        "refund one fen past the rest",
        refund(4001, related=(acting(SALE, TxnType.REFUND, 3000),), cashed=(cash(SALE, 3000),)),
        "refund.exceeds_sale",
    ),
    (
        "pending refunds count",
        refund(1, related=(acting(SALE, TxnType.REFUND, 10000, TxnStatus.PENDING),)),
        "refund.exceeds_sale",
    ),
    (
        "reversed refunds do not",
        refund(10000, related=(acting(SALE, TxnType.REFUND, 10000, TxnStatus.REVERSED),)),
        None,
    ),
    ("refund on the last day of the window", refund(100, now=SOLD + 180 * DAY), None),
    (
        "refund a second past the window",
        refund(100, now=SOLD + 180 * DAY + timedelta(seconds=1)),
        "terms.refund.window",
    ),
    (
        "refund up to the terms' per-sale limit",
        refund(
            5000, related=(acting(SALE, TxnType.REFUND, 3000),), terms=terms_with(refund__max_per_sale=8000)
        ),
        None,
    ),
    (
        "refund past the terms' per-sale limit",
        refund(
            5001, related=(acting(SALE, TxnType.REFUND, 3000),), terms=terms_with(refund__max_per_sale=8000)
        ),
        "terms.refund.per_sale",
    ),
    ("refund up to the day's limit", refund(100, refunded_today=5_000_000 - 100), None),
    (
        "refund one fen past the day's limit",
        refund(101, refunded_today=5_000_000 - 100),
        "terms.refund.per_day",
    ),
    ("no daily limit", refund(100, refunded_today=10**12, terms=terms_with(refund__max_per_day=None)), None),
    # --- cash refund ---
    ("cash refund up to the cash limit", cash_refund(50000, replace(SALE, amount=60000)), None),
    (
        "cash refund past the cash limit",
        cash_refund(50001, replace(SALE, amount=60000)),
        "terms.cash_refund.max_amount",
    ),
    (
        "cash refund not offered",
        cash_refund(100, terms=terms_with(cash_refund__allowed=False)),
        "cash_refund.not_allowed",
    ),
    ("cash refund of zero", cash_refund(0), "cash_refund.amount_not_positive"),
    ("cash refund of a pre-authorisation", cash_refund(100, PREAUTH), "cash_refund.original_type"),
    (
        "cash refund of a voided sale",
        cash_refund(100, replace(SALE, status=TxnStatus.VOIDED)),
        "cash_refund.voided",
    ),
    (
        "cash refund of a pending sale",
        cash_refund(100, replace(SALE, status=TxnStatus.PENDING)),
        "cash_refund.not_approved",
    ),
    (
        "cash refund of a reversed sale",
        cash_refund(100, replace(SALE, status=TxnStatus.REVERSED)),
        "cash_refund.reversed",
    ),
    (
        "cash refund of the rest after a card refund",
        cash_refund(2000, related=(acting(SALE, TxnType.REFUND, 8000),)),
        None,
    ),
    (
        "cash refund past the rest",
        cash_refund(2001, related=(acting(SALE, TxnType.REFUND, 8000),)),
        "cash_refund.exceeds_sale",
    ),
    ("cash refund on the last day of its window", cash_refund(100, now=SOLD + 30 * DAY), None),
    (
        "cash refund past its window",
        cash_refund(100, now=SOLD + 30 * DAY + timedelta(seconds=1)),
        "terms.cash_refund.window",
    ),
    (
        "cash refund past the day's limit",
        cash_refund(101, refunded_today=5_000_000 - 100),
        "terms.refund.per_day",
    ),
    (
        "cash refund past the per-sale limit",
        cash_refund(101, terms=terms_with(refund__max_per_sale=100)),
        "terms.refund.per_sale",
    ),
    # --- tip adjust ---
    ("tip of 20 %", adjust(12000), None),
    ("tip one fen past 20 %", adjust(12001), "terms.adjust.tip_max"),
    ("tip of one fen", adjust(10001), None),
    ("tip of nothing", adjust(10000), "adjust.unchanged"),
    ("tip lowering the amount", adjust(9999), "adjust.below_original"),
    ("new amount zero", adjust(0), "adjust.amount_not_positive"),
    ("original typed right", adjust(11000, entered=10000), None),
    ("original typed one fen off", adjust(11000, entered=10001), "adjust.original_mismatch"),
    ("tip adjust after settlement", adjust(11000, open_batch=OPEN + 1), "adjust.same_batch"),
    (
        "second tip adjust",
        adjust(11000, related=(acting(SALE, TxnType.ADJUST, 10500),)),
        "adjust.already_adjusted",
    ),
    (
        "tip adjust after a declined one",
        adjust(11000, related=(acting(SALE, TxnType.ADJUST, 10500, TxnStatus.DECLINED),)),
        None,
    ),
    ("adjust of a voided sale", adjust(11000, replace(SALE, status=TxnStatus.VOIDED)), "adjust.voided"),
    (
        "adjust with a pending void",
        adjust(11000, related=(acting(SALE, TxnType.VOID, 10000, TxnStatus.PENDING),)),
        "adjust.voided",
    ),
    ("adjust of a reversed sale", adjust(11000, replace(SALE, status=TxnStatus.REVERSED)), "adjust.reversed"),
    (
        "adjust of a declined sale",
        adjust(11000, replace(SALE, status=TxnStatus.DECLINED)),
        "adjust.not_approved",
    ),
    (
        "adjust of a refunded sale",
        adjust(11000, related=(acting(SALE, TxnType.REFUND, 1),)),
        "adjust.refunded",
    ),
    ("adjust of a cash-refunded sale", adjust(11000, cashed=(cash(SALE, 1),)), "adjust.refunded"),
    ("adjust of a refund", adjust(11000, replace(SALE, type=TxnType.REFUND)), "adjust.original_type"),
    ("adjust of a completion", adjust(11000, COMPLETION), "adjust.original_type"),
    # --- pre-authorisation completion ---
    ("completion of the authorised amount", adjust(10000, PREAUTH), None),
    ("completion for less", adjust(1, PREAUTH), None),
    ("completion at +15 %", adjust(11500, PREAUTH), None),
    ("completion one fen past +15 %", adjust(11501, PREAUTH), "terms.adjust.completion_tolerance"),
    ("completion in a later batch", adjust(10000, PREAUTH, open_batch=OPEN + 2), None),
    ("completion on the last day", adjust(10000, PREAUTH, now=SOLD + 30 * DAY), None),
    (
        "completion past its window",
        adjust(10000, PREAUTH, now=SOLD + 30 * DAY + timedelta(seconds=1)),
        "terms.adjust.completion_window",
    ),
    (
        "second completion",
        adjust(10000, PREAUTH, related=(acting(PREAUTH, TxnType.COMPLETION, 10000),)),
        "adjust.already_completed",
    ),
    (
        "completion after a failed one",
        adjust(10000, PREAUTH, related=(acting(PREAUTH, TxnType.COMPLETION, 10000, TxnStatus.FAILED),)),
        None,
    ),
    (
        "completion of a voided pre-authorisation",
        adjust(10000, replace(PREAUTH, status=TxnStatus.VOIDED)),
        "adjust.voided",
    ),
    (
        "completion of a reversed pre-authorisation",
        adjust(10000, replace(PREAUTH, status=TxnStatus.REVERSED)),
        "adjust.reversed",
    ),
    (
        "completion with the original typed wrong",
        adjust(10000, PREAUTH, entered=1000),
        "adjust.original_mismatch",
    ),
]


@pytest.mark.parametrize(("what", "case", "rule"), CASES, ids=[what for what, _, _ in CASES])
def test_rules(what: str, case: Case, rule: str | None) -> None:
    if rule is None:
        assert isinstance(case(), Decision)
        return
    with pytest.raises(RuleViolation) as caught:
        case()
    assert caught.value.rule == rule
    assert str(caught.value).startswith(f"{rule}: ")
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, PosError)


def test_every_documented_rule_has_a_case() -> None:
    from firmware.txn import rules

    words = set(
        re.findall(r"(?:terms\.)?(?:<op>|void|refund|cash_refund|adjust)\.[a-z_]+", rules.__doc__ or "")
    )
    documented = {
        w for word in words for w in (word.replace("<op>", "refund"), word.replace("<op>", "cash_refund"))
    }
    covered = {rule for _, _, rule in CASES if rule}
    assert len(documented) > 30
    assert documented == covered


def test_decisions() -> None:
    assert void()() == Decision(
        ReverseOperation.VOID,
        TxnType.VOID,
        10000,
        None,
        True,
        frozenset({EvidenceField.ORDER, EvidenceField.NAME, EvidenceField.CONTACT}),
    )
    assert refund(300)().request is TxnType.REFUND
    decision = cash_refund(300)()
    assert decision.request is None  # no message to the host
    assert decision.operation is ReverseOperation.CASH_REFUND
    tip = adjust(11000)()
    assert (tip.request, tip.amount, tip.amount_before) == (TxnType.ADJUST, 11000, 10000)
    completion = adjust(9000, PREAUTH)()
    assert (completion.request, completion.amount, completion.amount_before) == (
        TxnType.COMPLETION,
        9000,
        10000,
    )
    relaxed = terms_with(refund__supervisor=False, refund__evidence_required=frozenset())
    assert refund(300, terms=relaxed)() == Decision(
        ReverseOperation.REFUND, TxnType.REFUND, 300, None, False, frozenset()
    )


def test_supervisor_and_evidence_come_from_the_terms() -> None:
    for operation in ReverseOperation:
        assert supervisor_required(operation, TERMS) is TERMS.of(operation).supervisor
        assert required_evidence(operation, TERMS) == TERMS.of(operation).evidence_required
    assert not supervisor_required(ReverseOperation.VOID, terms_with(void__supervisor=False))
    assert required_evidence(ReverseOperation.REFUND, TERMS) == frozenset(EvidenceField)


def test_refunded_total_counts_card_and_cash_of_this_sale_only() -> None:
    related = [
        acting(SALE, TxnType.REFUND, 1000),
        acting(SALE, TxnType.REFUND, 200, TxnStatus.PENDING),
        acting(SALE, TxnType.REFUND, 30, TxnStatus.DECLINED),
        acting(SALE, TxnType.VOID, 4),
        acting(COMPLETION, TxnType.REFUND, 5000),
    ]
    assert refunded_total(SALE, related, [cash(SALE, 5), cash(COMPLETION, 7)]) == 1205


def test_messages_name_the_limits() -> None:
    with pytest.raises(RuleViolation, match=r"at most 40.00 CNY more"):
        refund(4001, related=(acting(SALE, TxnType.REFUND, 6000),))()
    with pytest.raises(RuleViolation, match=r"more than 180 days old"):
        refund(1, now=SOLD + 181 * DAY)()
    with pytest.raises(RuleViolation, match=r"batch 000007 is settled \(open: 000008\)"):
        void(open_batch=8)()


@pytest.mark.parametrize("operation", list(ReverseOperation))
def test_terms_lines(operation: ReverseOperation) -> None:
    zh = terms_lines(operation, TERMS, Language.ZH)
    en = terms_lines(operation, TERMS, Language.EN)
    assert len(zh) == len(en) > 2
    assert zh[-1] == "条款版本：TT-2025.1" and en[-1] == "Terms: TT-2025.1"
    assert all(line and "\n" not in line for line in zh + en)
    assert "需主管密码" in zh and "Supervisor password required" in en


def test_terms_lines_say_the_numbers() -> None:
    refund_en = "\n".join(terms_lines(ReverseOperation.REFUND, TERMS, Language.EN))
    assert (
        "within 180 days" in refund_en
        and "50000.00 CNY a day" in refund_en
        and "3-7 working days" in refund_en
    )
    cash_zh = "\n".join(terms_lines(ReverseOperation.CASH_REFUND, TERMS, Language.ZH))
    assert "30天内" in cash_zh and "每笔不超过500.00元" in cash_zh
    adjust_en = "\n".join(terms_lines(ReverseOperation.ADJUST, TERMS, Language.EN))
    assert "20%" in adjust_en and "15% above" in adjust_en
    none = terms_lines(ReverseOperation.CASH_REFUND, terms_with(cash_refund__allowed=False), Language.EN)
    assert none == ("Cash refunds are not offered",)
    capped = terms_lines(ReverseOperation.REFUND, terms_with(refund__max_per_sale=80000), Language.ZH)
    assert any("且不超过800.00元" in line for line in capped)
