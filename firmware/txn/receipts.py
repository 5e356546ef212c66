"""Receipts (签购单 and slips): what each slip says, independent of how it is printed or shown.

    slips = build_slips(ReceiptInput(kind, result, original=..., language=..., now=...), merchant, terms)
    for slip in slips:              # the merchant copy first, then the customer copy (where there is one)
        slip.text()                 # plain text, one line a line (tests, the preview's EXPECT)

Kinds and copies (merchant copy first):

- sale: merchant (with the cardholder's signature line) and customer: card
  (masked), order, batch/trace, auth code, RRN, time, amount, status;
- void, refund, adjust: merchant and customer: the request as for a sale,
  the original (batch/trace, amount), the refund method, the evidence
  (original time, applicant, contact, reason), the supervisor's approval,
  the terms that applied, the expected processing time and the notice
  reference; the customer copy adds the notice's next steps and a QR code
  of the notice reference;
- cash_refund: as a refund, paid in cash, with its reference (C...); the
  merchant copy has the signature of the person paid;
- settlement: merchant only: batch, debits and credits, balanced or not,
  uploaded, new batch;
- reversal_failure: merchant and customer: a reversal the host never
  acknowledged after its tries (trace, amount, reason code, tries, last
  error, what happens next); the customer copy says what it means for the
  card, with a QR code of the slip's reference (R + batch + trace).

A PAN appears only masked (first 6, stars, last 4), as the journal keeps it;
`build_slips` refuses (SensitiveDataError) a slip any of whose text holds a
run of digits that could be a card number (`firmware.store.sensitive`).

The slip's text is in one language (the kiosk's at the time of the result).
A renderer (`firmware.screens.slip`: PNG; `firmware.printer.escpos`: ESC/POS)
draws the `SlipLine`s in order: their `mark` says how.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Final

from firmware.store.sensitive import check_storable
from firmware.txn.model import CashRefund, Evidence, JournalEntry, ReverseOperation, TxnType
from firmware.txn.money import format_amount
from firmware.txn.notice import notice_reference
from firmware.txn.rules import terms_lines
from firmware.txn.terms import Language, Terms, Text

__all__ = [
    "KINDS",
    "Copy",
    "Mark",
    "Merchant",
    "ReceiptInput",
    "Slip",
    "SlipLine",
    "build_slips",
]


class Copy(StrEnum):
    MERCHANT = "merchant"
    CUSTOMER = "customer"


class Mark(Enum):
    HEADER = "header"  # merchant name: centred, bold
    TITLE = "title"  # the slip's title: centred, large
    CENTER = "center"  # a centred line (which copy this is)
    PAIR = "pair"  # label and value
    TEXT = "text"  # a paragraph, wrapped
    SMALL = "small"  # a fine-print paragraph
    AMOUNT = "amount"  # the amount: large
    RULE = "rule"  # a separating line
    QR = "qr"  # a QR code of `text`
    SIGN = "sign"  # a signature line with its caption in `text`


@dataclass(frozen=True)
class SlipLine:
    mark: Mark
    text: str = ""
    value: str = ""

    def plain(self, colon: str) -> str:
        if self.mark is Mark.PAIR:
            return f"{self.text}{colon}{self.value}"
        if self.mark is Mark.RULE:
            return "-" * 16
        if self.mark is Mark.SIGN:
            return f"{self.text}{colon}________"
        return self.text


@dataclass(frozen=True)
class Slip:
    kind: str
    copy: Copy
    language: Language
    reference: str  # names the slip's files: the notice reference, batch/trace, or the batch
    lines: tuple[SlipLine, ...]

    @property
    def colon(self) -> str:
        return "：" if self.language is Language.ZH else ": "

    def text(self) -> str:
        return "\n".join(line.plain(self.colon) for line in self.lines)

    def qr_data(self) -> str | None:
        return next((line.text for line in self.lines if line.mark is Mark.QR), None)


@dataclass(frozen=True)
class Merchant:
    name: str
    merchant_id: str
    terminal_id: str
    currency: str


@dataclass(frozen=True)
class ReceiptInput:
    """A result to print: `kind` (KINDS), the service's result object, the original it spoke of."""

    kind: str
    result: Any
    language: Language
    now: datetime
    original: JournalEntry | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


KINDS: Final = ("sale", "void", "refund", "cash_refund", "adjust", "settlement", "reversal_failure")

_T = Text
_L: Final[dict[str, Text]] = {
    "copy.merchant": _T("商户存根", "MERCHANT COPY"),
    "copy.customer": _T("持卡人存根", "CUSTOMER COPY"),
    "title.sale": _T("签购单 · 消费", "SALE"),
    "title.preauth": _T("签购单 · 预授权", "PRE-AUTHORISATION"),
    "title.void": _T("撤销单", "VOID · CANCEL ORDER"),
    "title.refund": _T("退货单", "REFUND"),
    "title.cash_refund": _T("现金退款单", "CASH REFUND"),
    "title.adjust": _T("调整金额单", "AMOUNT ADJUSTMENT"),
    "title.completion": _T("预授权完成单", "PRE-AUTH COMPLETION"),
    "title.settlement": _T("结算单", "SETTLEMENT"),
    "title.reversal_failure": _T("冲正未完成", "REVERSAL NOT DELIVERED"),
    "merchant": _T("商户号", "Merchant"),
    "terminal": _T("终端号", "Terminal"),
    "operator": _T("操作员", "Operator"),
    "card": _T("卡号", "Card"),
    "order": _T("订单号", "Order"),
    "batch_trace": _T("批次/凭证号", "Batch/trace"),
    "auth_code": _T("授权码", "Auth code"),
    "rrn": _T("参考号", "RRN"),
    "time": _T("日期时间", "Date"),
    "amount": _T("金额", "Amount"),
    "status": _T("状态", "Status"),
    "why": _T("原因", "Why"),
    "original": _T("原交易", "Original"),
    "original_amount": _T("原交易金额", "Original amount"),
    "amount_before": _T("调整前金额", "Amount before"),
    "amount_after": _T("调整后金额", "Amount after"),
    "method": _T("退款方式", "Refund to"),
    "method.card": _T("退回原卡", "the card paid with"),
    "method.cash": _T("现金当面退还", "cash, at the counter"),
    "reference": _T("编号", "Reference"),
    "evidence": _T("申请凭证", "Evidence"),
    "original_time": _T("原交易时间", "Original date"),
    "name": _T("申请人", "Applicant"),
    "contact": _T("联系方式", "Contact"),
    "reason": _T("原因", "Reason"),
    "supervisor": _T("主管授权", "Supervisor"),
    "supervisor.yes": _T("已授权（密码验证）", "approved (password checked)"),
    "supervisor.no": _T("条款未要求", "not required by the terms"),
    "terms": _T("交易条款", "Terms"),
    "processing_time": _T("预计处理时间", "Expected processing time"),
    "notice": _T("通知编号", "Notice"),
    "next_steps": _T("后续说明", "Next steps"),
    "qr": _T("扫码查询通知编号", "Scan for the notice reference"),
    "sign.cardholder": _T("持卡人签名", "Cardholder signature"),
    "sign.cardholder_agree": _T(
        "本人确认以上交易，同意将其记入本卡账户", "I agree to pay the above total per my card agreement"
    ),
    "sign.received": _T("收款人签名", "Cash received by"),
    "sign.supervisor": _T("主管签名", "Supervisor signature"),
    "status.approved": _T("交易成功", "APPROVED"),
    "status.voided": _T("已撤销", "VOIDED"),
    "status.reversed": _T("已冲正", "REVERSED"),
    "status.declined": _T("交易失败", "DECLINED"),
    "status.pending": _T("等待主机应答", "WAITING FOR THE HOST"),
    "status.failed": _T("失败", "FAILED"),
    "status.paid": _T("已付现", "PAID IN CASH"),
    "debits": _T("借记", "Debits"),
    "credits": _T("贷记", "Credits"),
    "count_amount": _T("{count} 笔  {amount}", "{count}  {amount}"),
    "balanced": _T("平账", "balanced"),
    "unbalanced": _T("不平，已批上送", "not balanced: batch uploaded"),
    "uploaded": _T("批上送笔数", "Uploaded"),
    "new_batch": _T("新批次", "New batch"),
    "batch": _T("批次号", "Batch"),
    "reversal.reason": _T("冲正原因", "Reversal reason"),
    "reversal.tries": _T("已尝试", "Tries"),
    "reversal.last_error": _T("最后错误", "Last error"),
    "reversal.kept": _T(
        "冲正已保存，不会丢失：下一笔联机交易前及在“请求状态”中“立即重试”时再次上送；"
        "如持续失败请联系收单机构。",
        "The reversal is kept and not lost: it goes up again before the next online request and "
        "with Retry now on Request status; if it keeps failing, call the acquirer.",
    ),
    "reversal.customer": _T(
        "本笔交易未完成，已申请撤回。如您的账户显示该笔扣款，将在终端联系到银行后自动撤回，"
        "一般1-3个工作日；如有疑问请凭本单编号联系商户。",
        "This payment did not complete and is being called back. If your account shows it, it is "
        "released once the terminal reaches the bank, usually within 1-3 working days; for questions, "
        "contact the merchant with this slip's reference.",
    ),
    "reason.98": _T("主机无应答（98）", "no answer from the host (98)"),
    "reason.A0": _T("应答MAC错误（A0）", "the answer's MAC failed (A0)"),
    "reason.06": _T("主机批准但卡片拒绝（06）", "host approved, card refused (06)"),
    "reason.96": _T("终端未能完成（96）", "the terminal could not complete (96)"),
    "type.sale": _T("消费", "sale"),
    "type.preauth": _T("预授权", "pre-auth"),
    "type.completion": _T("预授权完成", "completion"),
    "type.void": _T("撤销", "void"),
    "type.refund": _T("退货", "refund"),
    "type.adjust": _T("调整", "adjust"),
    "yuan": _T("{amount} 元", "{currency} {amount}"),
}


class _Writer:
    def __init__(self, language: Language, currency: str) -> None:
        self.language = language
        self.currency = currency
        self.lines: list[SlipLine] = []

    def t(self, key: str, **values: object) -> str:
        text = _L[key].in_language(self.language)
        return text.format(**values) if values else text

    def money(self, amount: int) -> str:
        if self.currency == "CNY":
            return self.t("yuan", amount=format_amount(amount), currency=self.currency)
        return f"{self.currency} {format_amount(amount)}"

    def add(self, mark: Mark, text: str = "", value: str = "") -> None:
        self.lines.append(SlipLine(mark, text, value))

    def pair(self, key: str, value: str | None) -> None:
        if value:
            self.add(Mark.PAIR, self.t(key), value)


def _head(w: _Writer, merchant: Merchant, title_key: str, copy: Copy) -> None:
    w.add(Mark.HEADER, merchant.name)
    w.pair("merchant", merchant.merchant_id)
    w.pair("terminal", merchant.terminal_id)
    w.add(Mark.TITLE, w.t(title_key))
    w.add(Mark.CENTER, w.t(f"copy.{copy.value}"))
    w.add(Mark.RULE)


def _entry_fields(w: _Writer, entry: JournalEntry) -> None:
    w.pair("card", entry.masked_pan)
    w.pair("order", entry.order)
    w.pair("batch_trace", f"{entry.batch:06d}/{entry.trace:06d}")
    w.pair("auth_code", entry.auth_code)
    w.pair("rrn", entry.rrn)
    w.pair("time", f"{entry.created:%Y-%m-%d %H:%M:%S}")


def _status(w: _Writer, entry: JournalEntry, reason: str = "") -> None:
    w.pair("status", w.t(f"status.{entry.status.value}"))
    if reason and entry.status.value not in ("approved", "voided"):
        w.add(Mark.SMALL, reason)


def _sale(inp: ReceiptInput, merchant: Merchant, copy: Copy) -> tuple[str, list[SlipLine]]:
    result = inp.result
    entry: JournalEntry | None = result.entry
    w = _Writer(inp.language, merchant.currency)
    title = "title.preauth" if entry is not None and entry.type is TxnType.PREAUTH else "title.sale"
    _head(w, merchant, title, copy)
    if entry is None:
        w.pair("status", w.t("status.declined"))
        w.add(Mark.SMALL, result.reason)
        return "sale", w.lines
    _entry_fields(w, entry)
    w.add(Mark.AMOUNT, w.money(entry.amount))
    _status(w, entry, result.reason)
    if copy is Copy.MERCHANT and entry.status.value == "approved":
        w.add(Mark.SIGN, w.t("sign.cardholder"))
        w.add(Mark.SMALL, w.t("sign.cardholder_agree"))
    return f"{entry.batch:06d}-{entry.trace:06d}", w.lines


def _evidence(w: _Writer, evidence: Evidence | None, supervisor: bool) -> None:
    w.add(Mark.RULE)
    w.add(Mark.TEXT, w.t("evidence"))
    if evidence is not None:
        w.pair("order", evidence.order)
        if evidence.original_time is not None:
            w.pair("original_time", f"{evidence.original_time:%Y-%m-%d %H:%M}")
        w.pair("name", evidence.name)
        w.pair("contact", evidence.contact)
        w.pair("reason", evidence.reason)
    w.pair("supervisor", w.t("supervisor.yes" if supervisor else "supervisor.no"))


def _terms(w: _Writer, operation: ReverseOperation, terms: Terms) -> None:
    w.add(Mark.RULE)
    w.add(Mark.TEXT, w.t("terms"))
    processing = terms.of(operation).processing_time.in_language(w.language)
    for line in terms_lines(operation, terms, w.language):
        if processing not in line:  # the expected processing time gets its own line, below
            w.add(Mark.SMALL, line)
    w.pair("processing_time", processing)


def _notice(w: _Writer, operation: ReverseOperation, terms: Terms, reference: str, copy: Copy) -> None:
    w.add(Mark.RULE)
    w.pair("notice", reference)
    if copy is Copy.CUSTOMER:
        w.add(Mark.TEXT, w.t("next_steps"))
        w.add(Mark.SMALL, terms.of(operation).notice.in_language(w.language))
        w.add(Mark.QR, reference)
        w.add(Mark.SMALL, w.t("qr"))


def _reverse(inp: ReceiptInput, merchant: Merchant, terms: Terms, copy: Copy) -> tuple[str, list[SlipLine]]:
    result = inp.result
    operation = ReverseOperation(result.operation)
    original = inp.original
    w = _Writer(inp.language, merchant.currency)
    cash: CashRefund | None = result.cash_refund
    entry: JournalEntry | None = result.entry
    if cash is not None:
        _head(w, merchant, "title.cash_refund", copy)
        w.pair("card", original.masked_pan if original else None)
        w.pair("order", cash.order)
        w.pair("reference", cash.reference)
        w.pair("original", f"{cash.original_batch:06d}/{cash.original_trace:06d}")
        if original is not None:
            w.pair("original_amount", w.money(original.amount))
        w.pair("time", f"{cash.created:%Y-%m-%d %H:%M:%S}")
        w.pair("method", w.t("method.cash"))
        w.add(Mark.AMOUNT, w.money(cash.amount))
        w.pair("status", w.t("status.paid"))
        _evidence(w, cash.evidence, cash.supervisor)
        _terms(w, operation, terms)
        _notice(w, operation, terms, cash.reference, copy)
        if copy is Copy.MERCHANT:
            w.add(Mark.SIGN, w.t("sign.received"))
            w.add(Mark.SIGN, w.t("sign.supervisor"))
        return cash.reference, w.lines
    assert entry is not None, "a reverse result holds an entry or a cash refund"
    title = "title.completion" if entry.type is TxnType.COMPLETION else f"title.{operation.value}"
    _head(w, merchant, title, copy)
    _entry_fields(w, entry)
    if entry.original_trace is not None:
        w.pair("original", f"{entry.original_batch or 0:06d}/{entry.original_trace:06d}")
    if original is not None and operation is not ReverseOperation.ADJUST:
        w.pair("original_amount", w.money(original.amount))
    if operation is ReverseOperation.REFUND:
        w.pair("method", w.t("method.card"))
    if operation is ReverseOperation.ADJUST and entry.amount_before is not None:
        w.pair("amount_before", w.money(entry.amount_before))
        w.pair("amount_after", w.money(entry.amount))
    w.add(Mark.AMOUNT, w.money(entry.amount))
    _status(w, entry, entry.status_reason)
    _evidence(w, entry.evidence, entry.supervisor)
    _terms(w, operation, terms)
    reference = notice_reference(entry.batch, entry.trace)
    _notice(w, operation, terms, reference, copy)
    if copy is Copy.MERCHANT:
        w.add(Mark.SIGN, w.t("sign.supervisor"))
    return reference, w.lines


def _settlement(inp: ReceiptInput, merchant: Merchant) -> tuple[str, list[SlipLine]]:
    result = inp.result
    totals = result.totals
    w = _Writer(inp.language, merchant.currency)
    _head(w, merchant, "title.settlement", Copy.MERCHANT)
    w.pair("batch", f"{result.batch:06d}")
    w.pair("time", f"{inp.now:%Y-%m-%d %H:%M:%S}")
    w.pair("debits", w.t("count_amount", count=totals.debit_count, amount=w.money(totals.debit_amount)))
    w.pair("credits", w.t("count_amount", count=totals.credit_count, amount=w.money(totals.credit_amount)))
    w.pair("status", w.t("balanced" if result.balanced else "unbalanced"))
    w.pair("uploaded", str(result.uploaded))
    w.pair("new_batch", f"{result.new_batch:06d}")
    return f"batch-{result.batch:06d}", w.lines


def _reversal_failure(inp: ReceiptInput, merchant: Merchant, copy: Copy) -> tuple[str, list[SlipLine]]:
    """`result` is a row of `service.queue()`'s flagged reversals; `original` the request it reverses."""
    row: Mapping[str, Any] = inp.result
    original = inp.original
    w = _Writer(inp.language, merchant.currency)
    _head(w, merchant, "title.reversal_failure", copy)
    trace = int(row["trace"])
    batch = original.batch if original is not None else 0
    reference = f"R{batch:06d}{trace:06d}"
    if original is not None:
        w.pair("card", original.masked_pan)
        w.pair("order", original.order)
        w.pair("original", f"{w.t('type.' + original.type.value)} {original.batch:06d}/{original.trace:06d}")
        w.pair("time", f"{original.created:%Y-%m-%d %H:%M:%S}")
    else:
        w.pair("batch_trace", f"{trace:06d}")
    w.add(Mark.AMOUNT, w.money(int(row.get("amount") or 0)))
    w.pair("reference", reference)
    reason = str(row.get("reason", ""))
    if copy is Copy.MERCHANT:
        w.pair("reversal.reason", w.t(f"reason.{reason}") if f"reason.{reason}" in _L else reason)
        w.pair("reversal.tries", str(row.get("attempts", 0)))
        w.pair("reversal.last_error", str(row.get("last_error") or ""))
        w.add(Mark.SMALL, w.t("reversal.kept"))
    else:
        w.add(Mark.SMALL, w.t("reversal.customer"))
        w.add(Mark.QR, reference)
    w.pair("time", f"{inp.now:%Y-%m-%d %H:%M:%S}")
    return reference, w.lines


def build_slips(inp: ReceiptInput, merchant: Merchant, terms: Terms) -> tuple[Slip, ...]:
    """The slips of one result: the merchant copy, then the customer copy (settlement: merchant only)."""
    if inp.kind not in KINDS:
        raise ValueError(f"no receipt of kind {inp.kind!r} (one of {', '.join(KINDS)})")
    copies: Sequence[Copy] = (Copy.MERCHANT,) if inp.kind == "settlement" else (Copy.MERCHANT, Copy.CUSTOMER)
    slips = []
    for copy in copies:
        if inp.kind == "sale":
            reference, lines = _sale(inp, merchant, copy)
        elif inp.kind == "settlement":
            reference, lines = _settlement(inp, merchant)
        elif inp.kind == "reversal_failure":
            reference, lines = _reversal_failure(inp, merchant, copy)
        else:
            reference, lines = _reverse(inp, merchant, terms, copy)
        slip = Slip(inp.kind, copy, inp.language, reference, tuple(lines))
        check_storable({"slip": slip.text()}, f"{inp.kind} slip")  # no clear card number, ever
        slips.append(slip)
    return tuple(slips)
