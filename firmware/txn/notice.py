"""The customer notice of a reverse transaction: a record for the upload queue, its text in 中文 / English.

`build_notice(...)` returns a `Notice`; `Notice.record()` is a plain JSON
dict (str, int, None, nested dicts) that goes up with the upload queue and is
checked by `firmware.store.sensitive.check_storable` before it is returned,
so it never holds a clear PAN: the card shows as `firmware.emv.mask.mask_pan`
shows it (first 6, stars, last 4; or stars and last 4), anything else in
`masked_pan` is refused with `SensitiveDataError`.

The notice type follows the operation: a void is a cancellation (撤销), a
card or cash refund a refund (退款), an adjust an adjust (调整). Its
processing time, next steps (the terms' notice text) and terms reference
come from the `Terms`.

`notice_reference(batch, number, method)` is the notice's stable reference:
"N" + batch (6 digits) + trace (6 digits) for a request that went to the
host, "C" + batch + the cash refund's number in the batch for a cash refund
(which has no trace). A batch or number out of range is a programming
error (`ValueError`).

`render_notice(notice, language)` is the text printed or shown, one field a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from firmware.errors import SensitiveDataError
from firmware.store.sensitive import check_storable
from firmware.txn.model import Evidence, RefundMethod, ReverseOperation
from firmware.txn.money import format_amount
from firmware.txn.terms import Language, Terms, Text

__all__ = ["Notice", "NoticeType", "build_notice", "notice_reference", "render_notice"]

RECORD_FORMAT: Final = 1
_MASKED_PAN: Final = re.compile(r"[0-9]{6}\*{3,9}[0-9]{4}|\*{5,15}[0-9]{4}")
_SIX_DIGITS: Final = 999_999


class NoticeType(StrEnum):
    CANCELLATION = "cancellation"
    REFUND = "refund"
    ADJUST = "adjust"


_TYPE_OF: Final = {
    ReverseOperation.VOID: NoticeType.CANCELLATION,
    ReverseOperation.REFUND: NoticeType.REFUND,
    ReverseOperation.CASH_REFUND: NoticeType.REFUND,
    ReverseOperation.ADJUST: NoticeType.ADJUST,
}
_TITLES: Final = {
    NoticeType.CANCELLATION: Text("撤销通知", "Cancellation notice"),
    NoticeType.REFUND: Text("退款通知", "Refund notice"),
    NoticeType.ADJUST: Text("调整金额通知", "Amount adjustment notice"),
}


def notice_reference(batch: int, number: int, method: RefundMethod = RefundMethod.CARD) -> str:
    """ "N" + batch + trace of a request to the host; "C" + batch + number of a cash refund."""
    if not 0 <= batch <= _SIX_DIGITS or not 1 <= number <= _SIX_DIGITS:
        raise ValueError(f"notice reference: batch {batch} or number {number} is not 6 digits")
    prefix = "C" if method is RefundMethod.CASH else "N"
    return f"{prefix}{batch:06d}{number:06d}"


@dataclass(frozen=True)
class Notice:
    reference: str
    type: NoticeType
    operation: ReverseOperation
    masked_pan: str | None
    amount: int
    currency: str
    evidence: Evidence
    processing_time: Text
    next_steps: Text
    terms_reference: str
    trace: int | None
    rrn: str | None
    created: datetime

    def record(self) -> dict[str, object]:
        """The notice as plain JSON data, with no clear card data."""
        original_time = self.evidence.original_time
        return {
            "format": RECORD_FORMAT,
            "reference": self.reference,
            "type": self.type.value,
            "operation": self.operation.value,
            "masked_pan": self.masked_pan,
            "amount": self.amount,
            "currency": self.currency,
            "order": self.evidence.order,
            "original_time": original_time.isoformat() if original_time else None,
            "name": self.evidence.name,
            "contact": self.evidence.contact,
            "reason": self.evidence.reason,
            "processing_time": {"zh": self.processing_time.zh, "en": self.processing_time.en},
            "next_steps": {"zh": self.next_steps.zh, "en": self.next_steps.en},
            "terms_reference": self.terms_reference,
            "trace": self.trace,
            "rrn": self.rrn,
            "created": self.created.isoformat(),
        }


def build_notice(
    *,
    operation: ReverseOperation,
    reference: str,
    amount: int,
    masked_pan: str | None,
    evidence: Evidence,
    terms: Terms,
    created: datetime,
    trace: int | None = None,
    rrn: str | None = None,
) -> Notice:
    """The customer notice of one reverse request; `evidence` as `validate_evidence` returned it."""
    if masked_pan is not None and not _MASKED_PAN.fullmatch(masked_pan):
        raise SensitiveDataError(
            "field masked_pan is not a masked PAN (first 6, stars, last 4)", "masked_pan"
        )
    if created.tzinfo is None:
        raise ValueError("notice: created has no time zone")
    own = terms.of(operation)
    notice = Notice(
        reference=reference,
        type=_TYPE_OF[operation],
        operation=operation,
        masked_pan=masked_pan,
        amount=amount,
        currency=terms.currency,
        evidence=evidence,
        processing_time=own.processing_time,
        next_steps=own.notice,
        terms_reference=terms.reference,
        trace=trace,
        rrn=rrn,
        created=created,
    )
    check_storable(notice.record(), "notice")
    return notice


_LABELS: Final = {
    "reference": Text("通知编号", "Notice"),
    "card": Text("卡号", "Card"),
    "amount": Text("金额", "Amount"),
    "order": Text("订单号", "Order"),
    "original_time": Text("原交易时间", "Original date"),
    "name": Text("申请人", "Applicant"),
    "contact": Text("联系方式", "Contact"),
    "reason": Text("原因", "Reason"),
    "trace": Text("凭证号", "Trace"),
    "rrn": Text("参考号", "RRN"),
    "processing_time": Text("预计处理时间", "Expected processing time"),
    "next_steps": Text("后续说明", "Next steps"),
    "terms": Text("条款版本", "Terms"),
    "created": Text("日期时间", "Date"),
}


def render_notice(notice: Notice, language: Language) -> str:
    """The notice as printed: a title, then one `label: value` line per field that has a value."""
    colon = "：" if language is Language.ZH else ": "
    amount = format_amount(notice.amount)
    if language is Language.ZH and notice.currency == "CNY":
        amount_text = f"{amount}元"
    else:
        amount_text = f"{notice.currency} {amount}"
    original_time = notice.evidence.original_time
    fields = [
        ("reference", notice.reference),
        ("card", notice.masked_pan),
        ("amount", amount_text),
        ("order", notice.evidence.order),
        ("original_time", f"{original_time:%Y-%m-%d %H:%M}" if original_time else None),
        ("name", notice.evidence.name),
        ("contact", notice.evidence.contact),
        ("reason", notice.evidence.reason),
        ("trace", f"{notice.trace:06d}" if notice.trace is not None else None),
        ("rrn", notice.rrn),
        ("processing_time", notice.processing_time.in_language(language)),
        ("next_steps", notice.next_steps.in_language(language)),
        ("terms", notice.terms_reference),
        ("created", f"{notice.created:%Y-%m-%d %H:%M:%S}"),
    ]
    lines = [_TITLES[notice.type].in_language(language)]
    lines += [f"{_LABELS[key].in_language(language)}{colon}{value}" for key, value in fields if value]
    return "\n".join(lines)
