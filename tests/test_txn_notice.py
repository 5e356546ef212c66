"""Customer notices: a plain JSON record with no clear PAN, a stable reference, the text in zh and en."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from firmware.emv.mask import mask_pan
from firmware.errors import SensitiveDataError
from firmware.store.sensitive import check_storable
from firmware.txn.model import Evidence, RefundMethod, ReverseOperation
from firmware.txn.notice import NoticeType, build_notice, notice_reference, render_notice
from firmware.txn.terms import Language, load_terms

BEIJING = timezone(timedelta(hours=8))
NOW = datetime(2025, 3, 1, 12, 0, 5, tzinfo=BEIJING)
TERMS = load_terms()
PAN = "6222021234567890128"  # 19 digits, Luhn-valid, as a UnionPay debit card
EVIDENCE = Evidence(
    "ORD-1", datetime(2025, 3, 1, 9, 15, tzinfo=BEIJING), "张伟", "+86 138 0013 8000", "尺码不合"
)


def card_notice(operation: ReverseOperation = ReverseOperation.REFUND, **changes: object) -> object:
    options: dict[str, object] = {
        "operation": operation,
        "reference": notice_reference(7, 123),
        "amount": 1234,
        "masked_pan": mask_pan(PAN),
        "evidence": EVIDENCE,
        "terms": TERMS,
        "created": NOW,
        "trace": 123,
        "rrn": "250301000042",
    } | changes
    return build_notice(**options)  # type: ignore[arg-type]


def test_the_pan_really_is_a_clear_pan() -> None:
    with pytest.raises(SensitiveDataError):
        check_storable(PAN, "pan")


@pytest.mark.parametrize(
    ("batch", "number", "method", "reference"),
    [
        (7, 123, RefundMethod.CARD, "N000007000123"),
        (0, 1, RefundMethod.CARD, "N000000000001"),
        (999999, 999999, RefundMethod.CARD, "N999999999999"),
        (7, 1, RefundMethod.CASH, "C000007000001"),
    ],
)
def test_notice_reference(batch: int, number: int, method: RefundMethod, reference: str) -> None:
    assert notice_reference(batch, number, method) == reference


@pytest.mark.parametrize(("batch", "number"), [(-1, 1), (1_000_000, 1), (1, 0), (1, 1_000_000)])
def test_notice_reference_out_of_range(batch: int, number: int) -> None:
    with pytest.raises(ValueError, match="not 6 digits"):
        notice_reference(batch, number)


def test_the_record_is_plain_json_without_a_clear_pan() -> None:
    notice = card_notice()
    record = notice.record()  # type: ignore[attr-defined]
    check_storable(record, "notice")
    assert json.loads(json.dumps(record, ensure_ascii=False)) == record
    assert PAN not in json.dumps(record)
    assert record == {
        "format": 1,
        "reference": "N000007000123",
        "type": "refund",
        "operation": "refund",
        "masked_pan": "622202*********0128",
        "amount": 1234,
        "currency": "CNY",
        "order": "ORD-1",
        "original_time": "2025-03-01T09:15:00+08:00",
        "name": "张伟",
        "contact": "+86 138 0013 8000",
        "reason": "尺码不合",
        "processing_time": {"zh": "3-7个工作日", "en": "3-7 working days"},
        "next_steps": {"zh": TERMS.refund.notice.zh, "en": TERMS.refund.notice.en},
        "terms_reference": "TT-2025.1",
        "trace": 123,
        "rrn": "250301000042",
        "created": "2025-03-01T12:00:05+08:00",
    }


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        (ReverseOperation.VOID, NoticeType.CANCELLATION),
        (ReverseOperation.REFUND, NoticeType.REFUND),
        (ReverseOperation.CASH_REFUND, NoticeType.REFUND),
        (ReverseOperation.ADJUST, NoticeType.ADJUST),
    ],
)
def test_the_type_and_texts_follow_the_operation(operation: ReverseOperation, kind: NoticeType) -> None:
    notice = card_notice(operation)
    assert notice.type is kind  # type: ignore[attr-defined]
    assert notice.next_steps == TERMS.of(operation).notice  # type: ignore[attr-defined]
    assert notice.processing_time == TERMS.of(operation).processing_time  # type: ignore[attr-defined]


def test_a_cash_refund_notice() -> None:
    notice = build_notice(
        operation=ReverseOperation.CASH_REFUND,
        reference=notice_reference(7, 1, RefundMethod.CASH),
        amount=5000,
        masked_pan=None,
        evidence=EVIDENCE,
        terms=TERMS,
        created=NOW,
    )
    record = notice.record()
    check_storable(record, "notice")
    assert (record["reference"], record["trace"], record["rrn"]) == ("C000007000001", None, None)
    assert "immediately" in str(record["processing_time"])


@pytest.mark.parametrize(
    "masked",
    [PAN, "6222021234567890", "622202 1234 5678 90123", "622202*1234", "6222021234******0123", "abc"],
)
def test_anything_but_a_masked_pan_is_refused(masked: str) -> None:
    with pytest.raises(SensitiveDataError) as caught:
        card_notice(masked_pan=masked)
    assert caught.value.field == "masked_pan"
    assert PAN not in str(caught.value)


@pytest.mark.parametrize("pan", ["4111111111111111", "6222021234567890123", "4222222222222", "123456789"])
def test_every_shape_mask_pan_gives_is_accepted(pan: str) -> None:
    card_notice(masked_pan=mask_pan(pan))


def test_a_clear_pan_hidden_in_the_evidence_is_refused_too() -> None:
    with pytest.raises(SensitiveDataError):
        card_notice(evidence=replace(EVIDENCE, reason=f"card {PAN}"))


def test_created_needs_a_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        card_notice(created=datetime(2025, 3, 1, 12, 0))


def test_render_in_chinese() -> None:
    text = render_notice(card_notice(), Language.ZH)  # type: ignore[arg-type]
    lines = text.splitlines()
    assert lines[0] == "退款通知"
    assert "通知编号：N000007000123" in lines
    assert "卡号：622202*********0128" in lines
    assert "金额：12.34元" in lines
    assert "原交易时间：2025-03-01 09:15" in lines
    assert "申请人：张伟" in lines
    assert "凭证号：000123" in lines and "参考号：250301000042" in lines
    assert "预计处理时间：3-7个工作日" in lines
    assert f"后续说明：{TERMS.refund.notice.zh}" in lines
    assert "条款版本：TT-2025.1" in lines
    assert PAN not in text


def test_render_in_english_leaves_out_what_is_not_there() -> None:
    notice = card_notice(ReverseOperation.VOID, rrn=None, evidence=replace(EVIDENCE, reason=""))
    lines = render_notice(notice, Language.EN).splitlines()  # type: ignore[arg-type]
    assert lines[0] == "Cancellation notice"
    assert "Amount: CNY 12.34" in lines
    assert "Expected processing time: immediately" in lines
    assert "Date: 2025-03-01 12:00:05" in lines
    assert not any(line.startswith(("RRN", "Reason")) for line in lines)
