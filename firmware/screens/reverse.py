"""Cancel an order (撤销), refund (退货, to the card or in cash) and adjust the amount (调整金额).

Each is a flow of small screens, pushed one on another (CANCEL goes back a
step, the values typed so far kept):

    order number -> [refund: amount -> card or cash] [adjust: original amount -> new amount]
    -> evidence: original date and time, applicant's name (multi-tap letters), contact phone,
       reason (a list, where the terms require one)
    -> the terms (`firmware.txn.rules.terms_lines`) -> confirm -> supervisor password
       (masked, where the terms want it) -> the service, on the worker -> the result

Each evidence field is checked as it is typed, by the business layer's own
checks (`validate_evidence`, `match_original`), so a mistake is shown on the
field and not after the request. Everything goes through the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from firmware.errors import EvidenceError, PosError
from firmware.screens.base import Context, Line, Receipt, Style, Transition
from firmware.screens.common import (
    ChoiceScreen,
    EntryScreen,
    MessageScreen,
    ResultScreen,
    WorkingScreen,
    explain,
    money,
)
from firmware.screens.entry import (
    AmountField,
    DateTimeField,
    DigitField,
    MultiTapField,
    SecretField,
    TapMode,
)
from firmware.screens.jobs import Job
from firmware.screens.orders import order_summary
from firmware.txn.evidence import match_original, validate_evidence
from firmware.txn.model import (
    Evidence,
    EvidenceField,
    JournalEntry,
    RefundMethod,
    ReverseOperation,
    TxnStatus,
    TxnType,
)
from firmware.txn.reverse import OriginalRef, ReverseResult
from firmware.txn.rules import required_evidence, supervisor_required, terms_lines
from firmware.txn.terms import Language

__all__ = ["Draft", "ReverseKind", "reverse_result_screen", "start_reverse"]

MIN_PASSWORD = 6
REASONS = ("reason.returned", "reason.wrong_amount", "reason.duplicate", "reason.cancelled")


class ReverseKind(Enum):
    VOID = "void"
    REFUND = "refund"
    ADJUST = "adjust"


@dataclass
class Draft:
    kind: ReverseKind
    original: JournalEntry | None = None
    amount: int = 0  # refund amount, or the adjusted (new) amount
    original_amount: int = 0  # adjust: the original amount as typed again
    method: RefundMethod = RefundMethod.CARD
    when: datetime | None = None
    name: str = ""
    contact: str = ""
    reason: str = ""

    @property
    def operation(self) -> ReverseOperation:
        if self.kind is ReverseKind.VOID:
            return ReverseOperation.VOID
        if self.kind is ReverseKind.ADJUST:
            return ReverseOperation.ADJUST
        return ReverseOperation.CASH_REFUND if self.method is RefundMethod.CASH else ReverseOperation.REFUND

    def evidence(self) -> Evidence:
        order = self.original.order if self.original else ""
        return Evidence(order, self.when, self.name, self.contact, self.reason)

    def ref(self) -> OriginalRef:
        assert self.original is not None
        return OriginalRef(order=self.original.order, trace=self.original.trace)


def _title(ctx: Context, draft: Draft) -> str:
    return ctx.t(f"menu.{draft.kind.value}")


def _original_lines(ctx: Context, draft: Draft) -> tuple[Line, ...]:
    if draft.original is None:
        return ()
    return (Line(f"{ctx.t('field.order')}{ctx.t('colon')}{draft.original.order}", Style.DIM),
            Line(order_summary(ctx, draft.original), Style.DIM))  # fmt: skip


def start_reverse(ctx: Context, kind: ReverseKind, original: JournalEntry | None = None) -> Transition:
    draft = Draft(kind, original)
    if original is None:
        return Transition.push(_order_step(ctx, draft))
    return _after_order(ctx, draft)


def _order_step(ctx: Context, draft: Draft) -> EntryScreen:
    def enter(screen: EntryScreen) -> Transition:
        field = screen.field
        order = field.finish() if isinstance(field, MultiTapField) else ""
        if not order:
            screen.error = (Line(ctx.t("error.required"), Style.BAD),)
            return Transition.stay()

        def found(entries: list[JournalEntry]) -> Transition:
            if not entries:
                screen.error = (Line(ctx.t("orders.none"), Style.BAD),)
                return Transition.stay()
            approved = [e for e in entries if e.status is TxnStatus.APPROVED]
            draft.original = (approved or entries)[0]
            return _after_order(ctx, draft)

        return screen.lookup(lambda job: ctx.service.find(order=order), found)

    return EntryScreen(
        ctx, _title(ctx, draft), ctx.t("orders.enter_order"), MultiTapField(32, TapMode.DIGITS), enter
    )


def _after_order(ctx: Context, draft: Draft) -> Transition:
    if draft.kind is ReverseKind.REFUND:
        return Transition.push(_amount_step(ctx, draft, "refund.amount", _refund_method))
    if draft.kind is ReverseKind.ADJUST:
        return Transition.push(_amount_step(ctx, draft, "adjust.original", _adjust_new, original=True))
    return _evidence(ctx, draft, 0)


def _amount_step(
    ctx: Context,
    draft: Draft,
    prompt: str,
    then: Callable[[Context, Draft], Transition],
    *,
    original: bool = False,
) -> EntryScreen:
    def enter(screen: EntryScreen) -> Transition:
        value = screen.field.value if isinstance(screen.field, AmountField) else 0
        if value <= 0:
            screen.error = (Line(ctx.t("error.amount_zero"), Style.BAD),)
            return Transition.stay()
        if original:
            draft.original_amount = value
        else:
            draft.amount = value
        return then(ctx, draft)

    return EntryScreen(
        ctx, _title(ctx, draft), ctx.t(prompt), AmountField(), enter, above=_original_lines(ctx, draft)
    )


def _refund_method(ctx: Context, draft: Draft) -> Transition:
    def choose(method: RefundMethod) -> Callable[[], Transition]:
        def go() -> Transition:
            draft.method = method
            return _evidence(ctx, draft, 0)

        return go

    above = (Line(ctx.t("refund.amount_is", amount=money(ctx, draft.amount)), Style.BODY),)
    choices = [
        (ctx.t("refund.to_card"), choose(RefundMethod.CARD)),
        (ctx.t("refund.in_cash"), choose(RefundMethod.CASH)),
    ]
    return Transition.push(ChoiceScreen(ctx, _title(ctx, draft), choices, above=above))


def _adjust_new(ctx: Context, draft: Draft) -> Transition:
    return Transition.push(_amount_step(ctx, draft, "adjust.new", lambda c, d: _evidence(c, d, 0)))


def _check(ctx: Context, draft: Draft, evidence: Evidence, field: EvidenceField) -> tuple[Line, ...]:
    """The business layer's check of one evidence field (and the original's date)."""
    required = {field} & required_evidence(draft.operation, ctx.service.ctx.terms)
    try:
        checked = validate_evidence(evidence, required, ctx.clock())
        if draft.original is not None and field is EvidenceField.ORIGINAL_TIME:
            match_original(checked, draft.original)
    except EvidenceError as error:
        return explain(ctx, error)
    return ()


_STEPS = (EvidenceField.ORIGINAL_TIME, EvidenceField.NAME, EvidenceField.CONTACT, EvidenceField.REASON)


def _evidence(ctx: Context, draft: Draft, index: int) -> Transition:
    """The evidence steps from `index`: date, name, contact; reason where the terms require it."""
    required = required_evidence(draft.operation, ctx.service.ctx.terms)
    while index < len(_STEPS) and _STEPS[index] is EvidenceField.REASON and _STEPS[index] not in required:
        index += 1
    if index >= len(_STEPS):
        return _terms(ctx, draft)
    step = _STEPS[index]
    title = _title(ctx, draft)
    optional = "" if step in required else ctx.t("entry.optional")
    prompt = f"{ctx.t(f'evidence.{step.value}')}{optional}"
    above = _original_lines(ctx, draft)

    def next_step() -> Transition:
        return _evidence(ctx, draft, index + 1)

    if step is EvidenceField.REASON:

        def reason(key: str) -> Callable[[], Transition]:
            def go() -> Transition:
                draft.reason = ctx.t(key)
                return next_step()

            return go

        return Transition.push(
            ChoiceScreen(
                ctx, title, [(ctx.t(k), reason(k)) for k in REASONS], above=(*above, Line(prompt, Style.DIM))
            )
        )

    def enter(screen: EntryScreen) -> Transition:
        f = screen.field
        if isinstance(f, DateTimeField):
            when = f.value(ctx.clock().tzinfo)
            if f.digits and when is None:
                screen.error = (Line(ctx.t("error.date"), Style.BAD),)
                return Transition.stay()
            draft.when = when
            evidence = Evidence("", when, "", "", "")
        elif isinstance(f, MultiTapField):
            draft.name = f.finish().strip()
            evidence = Evidence("", None, draft.name, "", "")
        elif isinstance(f, DigitField):
            draft.contact = f.digits
            evidence = Evidence("", None, "", draft.contact, "")
        else:  # pragma: no cover - the fields are the three above
            raise PosError("unexpected field")
        screen.error = _check(ctx, draft, evidence, step)
        return Transition.stay() if screen.error else next_step()

    field: DateTimeField | MultiTapField | DigitField
    if step is EvidenceField.ORIGINAL_TIME:
        field = DateTimeField()
    elif step is EvidenceField.NAME:
        field = MultiTapField(40)
    else:
        field = DigitField(20)
    hint = ctx.t("hint.letters") if isinstance(field, MultiTapField) else None
    return Transition.push(EntryScreen(ctx, title, prompt, field, enter, above=above, hint=hint))


def _terms(ctx: Context, draft: Draft) -> Transition:
    terms = ctx.service.ctx.terms
    lines = [Line(text) for text in terms_lines(draft.operation, terms, ctx.language)]
    lines.append(Line(ctx.t("terms.reference", reference=terms.reference), Style.DIM))
    return Transition.push(
        MessageScreen(
            ctx, ctx.t("terms.title"), lines, lambda: _confirm(ctx, draft), hint=ctx.t("hint.terms")
        )
    )


def _confirm(ctx: Context, draft: Draft) -> Transition:
    colon = ctx.t("colon")
    assert draft.original is not None
    pairs: list[tuple[str, str]] = [
        (ctx.t("field.operation"), ctx.t(f"operation.{draft.operation.value}")),
        (ctx.t("field.order"), draft.original.order),
        (ctx.t("field.original_amount"), money(ctx, draft.original.amount)),
    ]
    if draft.kind is ReverseKind.REFUND:
        pairs.append((ctx.t("field.refund_amount"), money(ctx, draft.amount)))
        method = "refund.to_card" if draft.method is RefundMethod.CARD else "refund.in_cash"
        pairs.append((ctx.t("field.method"), ctx.t(method)))
    elif draft.kind is ReverseKind.ADJUST:
        pairs.append((ctx.t("field.entered_original"), money(ctx, draft.original_amount)))
        pairs.append((ctx.t("field.new_amount"), money(ctx, draft.amount)))
    else:
        pairs.append((ctx.t("field.void_amount"), money(ctx, draft.original.amount)))
    if draft.when is not None:
        pairs.append((ctx.t("evidence.original_time"), f"{draft.when:%Y-%m-%d %H:%M}"))
    pairs += [(ctx.t("evidence.name"), draft.name), (ctx.t("evidence.contact"), draft.contact)]
    pairs.append((ctx.t("evidence.reason"), draft.reason))
    lines = [Line(f"{label}{colon}{value}") for label, value in pairs if value]
    return Transition.push(
        MessageScreen(
            ctx, ctx.t("confirm.title"), lines, lambda: _supervisor(ctx, draft), hint=ctx.t("hint.confirm")
        )
    )


def _supervisor(ctx: Context, draft: Draft) -> Transition:
    if not supervisor_required(draft.operation, ctx.service.ctx.terms):
        return Transition.push(_working(ctx, draft, ""))

    def enter(screen: EntryScreen) -> Transition:
        password = screen.field.digits if isinstance(screen.field, SecretField) else ""
        if len(password) < MIN_PASSWORD:
            screen.error = (Line(ctx.t("error.password_short", length=MIN_PASSWORD), Style.BAD),)
            return Transition.stay()
        return Transition.push(_working(ctx, draft, password))

    return Transition.push(
        EntryScreen(ctx, ctx.t("supervisor.title"), ctx.t("supervisor.prompt"), SecretField(12), enter)
    )


def _working(ctx: Context, draft: Draft, password: str) -> WorkingScreen:
    service = ctx.service
    evidence = draft.evidence()
    ref = draft.ref()

    def supervisor(operation: ReverseOperation) -> bool:
        return ctx.verify_supervisor(password)

    def call(job: Job) -> ReverseResult:
        if draft.kind is ReverseKind.VOID:
            return service.void(ref, evidence, supervisor=supervisor)
        if draft.kind is ReverseKind.REFUND:
            return service.refund(ref, draft.amount, draft.method, evidence, supervisor=supervisor)
        return service.adjust(ref, draft.original_amount, draft.amount, evidence, supervisor=supervisor)

    label = "local" if draft.operation is ReverseOperation.CASH_REFUND else "host"
    return WorkingScreen(
        ctx,
        _title(ctx, draft),
        call,
        lambda result: Transition.home_then(reverse_result_screen(ctx, draft, result)),
        about=_original_lines(ctx, draft),
        label=label,
        failed=lambda error: Transition.home_then(ResultScreen(ctx, _title(ctx, draft), explain(ctx, error))),
    )


def reverse_result_screen(ctx: Context, draft: Draft, result: ReverseResult) -> ResultScreen:
    body: list[Line] = []
    colon = ctx.t("colon")
    entry, cash = result.entry, result.cash_refund
    if cash is not None:
        body.append(Line(ctx.t("result.cash_paid"), Style.GOOD))
        body.append(Line(money(ctx, cash.amount), Style.BIG))
        body.append(Line(f"{ctx.t('field.reference')}{colon}{cash.reference}"))
        body.append(Line(f"{ctx.t('field.order')}{colon}{cash.order}"))
    elif entry is not None:
        if entry.status is TxnStatus.APPROVED:
            body.append(Line(ctx.t("result.approved"), Style.GOOD))
        elif entry.status is TxnStatus.PENDING or result.waiting_for_host:
            body.append(Line(ctx.t("result.waiting"), Style.WARN))
        else:
            body.append(Line(ctx.t("result.declined"), Style.BAD))
        body.append(Line(money(ctx, entry.amount), Style.BIG))
        pairs = [
            (ctx.t("field.order"), entry.order),
            (ctx.t("field.trace"), f"{entry.trace:06d}"),
            (ctx.t("field.rrn"), entry.rrn),
            (ctx.t("field.response"), None if entry.status is TxnStatus.APPROVED else entry.response_code),
            (ctx.t("field.status"), ctx.t(f"status.{entry.status.value}")),
        ]
        body.extend(Line(f"{label}{colon}{value}") for label, value in pairs if value)
        if entry.type is TxnType.COMPLETION:
            body.append(Line(ctx.t("adjust.completion"), Style.DIM))
    if result.notice_queued:
        body.append(Line(ctx.t("result.notice"), Style.DIM))
    if result.message and ctx.language is Language.EN:  # the service's own words are English
        body.append(Line(result.message, Style.DIM))
    receipt = Receipt(draft.operation.value, result, ctx.language, draft.original)
    return ResultScreen(ctx, _title(ctx, draft), body, receipt)
