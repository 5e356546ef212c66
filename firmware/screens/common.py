"""Screens every flow uses: a field to fill, a list to choose from, work in progress, a result,
the terms, a password or PIN, and what an error means to the person at the keypad."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from firmware.errors import (
    AmountError,
    CardRemovedError,
    EvidenceError,
    HostConnectionLostError,
    HostTimeoutError,
    HostUnreachableError,
    NoCardError,
    PosError,
    RuleViolation,
)
from firmware.screens.base import Context, Line, Receipt, Screen, Style, Transition, View
from firmware.screens.entry import (
    AmountField,
    DateTimeField,
    DigitField,
    MultiTapField,
    SecretField,
)
from firmware.screens.jobs import Done, Failed, Job, JobDone, PinRequest
from firmware.screens.keys import Key
from firmware.screens.text import has_text
from firmware.txn.money import format_amount
from firmware.txn.reverse import OrderNotFoundError, SupervisorRefusedError
from firmware.txn.service import PendingReversalError

__all__ = [
    "ChoiceScreen",
    "EntryScreen",
    "Field",
    "MessageScreen",
    "PinScreen",
    "ResultScreen",
    "WorkingScreen",
    "explain",
    "money",
]

Field = AmountField | DigitField | DateTimeField | MultiTapField | SecretField


def money(ctx: Context, amount: int) -> str:
    """An amount as the screen shows it: "12.34 元" in 中文 (for CNY), "CNY 12.34" otherwise."""
    key = "money.yuan" if ctx.info.currency == "CNY" else "money"
    return ctx.t(key, amount=format_amount(amount), currency=ctx.info.currency)


def explain(ctx: Context, error: BaseException) -> tuple[Line, ...]:
    """What an error means, in the screen's language (and the firmware's own words, dimmed)."""
    if isinstance(error, RuleViolation):
        key = f"rule.{error.rule}"
        head = ctx.t(key) if has_text(key) else ctx.t("error.rule")
        return (Line(head, Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, EvidenceError):
        field_key = f"evidence.{error.field}"
        field = ctx.t(field_key) if has_text(field_key) else error.field
        return (Line(ctx.t("error.evidence", field=field), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, SupervisorRefusedError):
        return (Line(ctx.t("error.supervisor"), Style.BAD),)
    if isinstance(error, OrderNotFoundError):
        return (Line(ctx.t("error.not_found"), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, PendingReversalError):
        return (Line(ctx.t("error.pending_reversal"), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, HostUnreachableError | HostTimeoutError | HostConnectionLostError):
        return (Line(ctx.t("error.host_down"), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, NoCardError | CardRemovedError):
        return (Line(ctx.t("error.card"), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, AmountError):
        return (Line(ctx.t("error.amount"), Style.BAD), Line(str(error), Style.DIM))
    if isinstance(error, PosError):
        return (Line(ctx.t("error.refused"), Style.BAD), Line(str(error), Style.DIM))
    return (Line(ctx.t("error.internal"), Style.BAD), Line(f"{type(error).__name__}: {error}", Style.DIM))


class EntryScreen(Screen):
    """One field to fill. ENTER hands the screen to `on_enter` (which may set `error` and stay)."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        prompt: str,
        field: Field,
        on_enter: Callable[[EntryScreen], Transition],
        *,
        above: Sequence[Line] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(ctx)
        self.title, self.prompt, self.field, self.on_enter = title, prompt, field, on_enter
        self.above = tuple(above)
        self.hint = hint
        self.error: tuple[Line, ...] = ()
        self.busy = False

    def value_line(self) -> Line:
        return Line(self.field.shown, Style.BIG if isinstance(self.field, AmountField) else Style.BODY)

    def view(self) -> View:
        body = [*self.above, Line(self.prompt, Style.DIM), self.value_line()]
        if isinstance(self.field, MultiTapField):
            body.append(Line(self.t("entry.mode", mode=self.field.mode), Style.DIM))
        if self.busy:
            body.append(Line(self.t("working.looking_up"), Style.DIM))
        body.extend(self.error)
        softkeys = ((Key.F1, self.field.mode),) if isinstance(self.field, MultiTapField) else ()
        return View(self.title, tuple(body), self.hint or self.t("hint.entry"), softkeys=softkeys)

    def handle(self, key: Key) -> Transition:
        if self.busy:
            return Transition.stay()
        if key is Key.CANCEL:
            return Transition.pop()
        if key is Key.ENTER:
            if isinstance(self.field, MultiTapField):
                self.field.finish()
            self.error = ()
            return self.on_enter(self)
        if isinstance(self.field, MultiTapField):
            self.field.press(key, time.monotonic())
        else:
            self.field.press(key)
        self.error = ()
        return Transition.stay()

    def lookup(self, call: Callable[[Job], Any], then: Callable[[Any], Transition]) -> Transition:
        """Run a quick call on the worker (the books), then `then(value)`; a failure is shown here."""
        self.busy = True
        self._then = then
        self.ctx.run(self, call, "local")
        return Transition.stay()

    def on_job(self, done: JobDone) -> Transition:
        self.busy = False
        if isinstance(done.outcome, Failed):
            self.error = explain(self.ctx, done.outcome.error)
            return Transition.stay()
        return self._then(done.outcome.value)


class ChoiceScreen(Screen):
    """A list: digits choose directly, UP/DOWN move, ENTER takes the highlighted one."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        choices: Sequence[tuple[str, Callable[[], Transition]]],
        *,
        above: Sequence[Line] = (),
        numbered: bool = True,
        hint: str | None = None,
    ) -> None:
        super().__init__(ctx)
        self.title = title
        self.choices = list(choices)
        self.above = tuple(above)
        self.numbered = numbered
        self.index = 0
        self.hint = hint

    def view(self) -> View:
        rows = []
        for i, (label, _) in enumerate(self.choices):
            text = f"{i + 1}  {label}" if self.numbered and i < 9 else label
            rows.append(Line(text, Style.SELECTED if i == self.index else Style.BODY))
        scroll = max(0, self.index - 6)
        body = (*self.above, *rows) if scroll == 0 else tuple(rows)
        return View(self.title, body, self.hint or self.t("hint.choose"), scroll=scroll if scroll else 0)

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.pop()
        if not self.choices:
            return Transition.stay()
        if key is Key.UP:
            self.index = (self.index - 1) % len(self.choices)
        elif key is Key.DOWN:
            self.index = (self.index + 1) % len(self.choices)
        elif key is Key.ENTER:
            return self.choices[self.index][1]()
        elif self.numbered and key.digit is not None and 1 <= int(key.digit) <= min(9, len(self.choices)):
            self.index = int(key.digit) - 1
            return self.choices[self.index][1]()
        return Transition.stay()


class MessageScreen(Screen):
    """Lines to read (scrolled with UP/DOWN); ENTER runs `on_enter`, CANCEL goes back."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        body: Sequence[Line],
        on_enter: Callable[[], Transition] | None = None,
        *,
        hint: str | None = None,
        softkeys: Sequence[tuple[Key, str, Callable[[], Transition]]] = (),
    ) -> None:
        super().__init__(ctx)
        self.title, self.body, self.on_enter = title, tuple(body), on_enter
        self.hint = hint
        self.softkeys = tuple(softkeys)
        self.scroll = 0

    def view(self) -> View:
        return View(
            self.title,
            self.body,
            self.hint or self.t("hint.confirm"),
            scroll=self.scroll,
            softkeys=tuple((key, label) for key, label, _ in self.softkeys),
        )

    def handle(self, key: Key) -> Transition:
        if key is Key.UP:
            self.scroll = max(0, self.scroll - 1)
        elif key is Key.DOWN:
            self.scroll = min(max(0, len(self.body) - 1), self.scroll + 1)
        elif key is Key.CANCEL:
            return Transition.pop()
        elif key is Key.ENTER:
            return self.on_enter() if self.on_enter is not None else Transition.pop()
        for soft, _, action in self.softkeys:
            if key is soft:
                return action()
        return Transition.stay()


class ResultScreen(MessageScreen):
    """How an operation ended. It hands its result to the receipts hook once (the slips are printed);
    ENTER shows the receipt preview where there is a receipt, else goes home; CANCEL goes home."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        body: Sequence[Line],
        receipt: Receipt | None = None,
        *,
        softkeys: Sequence[tuple[Key, str, Callable[[], Transition]]] = (),
    ) -> None:
        hint = ctx.t("hint.receipt") if receipt is not None else ctx.t("hint.done")
        super().__init__(ctx, title, body, self._done, hint=hint, softkeys=softkeys)
        self.receipt = receipt
        if receipt is not None:
            ctx.receipts(receipt)

    def _done(self) -> Transition:
        if self.receipt is None:
            return Transition.home()
        from firmware.screens.receipt import ReceiptPreviewScreen

        return Transition.home_then(ReceiptPreviewScreen(self.ctx, self.receipt))

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.home()
        return super().handle(key)


class WorkingScreen(Screen):
    """Card or host work under way: what it is, the seconds since it began, and Cancel.

    Cancel ends an abortable job's card session (the kernel sees the card
    leave; a host approval it already got is reversed by the service). A host
    request already sent cannot be called back: the first Cancel says so, a
    second one leaves the screen, and the outcome is kept by the books
    (Request status shows it).
    """

    ticks = True

    def __init__(
        self,
        ctx: Context,
        title: str,
        call: Callable[[Job], Any],
        done: Callable[[Any], Transition],
        *,
        about: Sequence[Line] = (),
        label: str = "host",
        abortable: bool = False,
        failed: Callable[[BaseException], Transition] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.title, self.about, self.done, self.failed = title, tuple(about), done, failed
        self.cancel_pressed = False
        self.job = ctx.run(self, call, label, abortable=abortable)

    def view(self) -> View:
        seconds = int(self.job.elapsed())
        body = [*self.about, Line(self.t("working.progress"), Style.BODY)]
        body.append(Line(self.t("working.elapsed", seconds=seconds), Style.DIM))
        if self.cancel_pressed:
            key = "working.cancelling" if self.job.abortable else "working.cannot_cancel"
            body.append(Line(self.t(key), Style.WARN))
        return View(self.title, tuple(body), self.t("hint.working"))

    def handle(self, key: Key) -> Transition:
        if key is not Key.CANCEL:
            return Transition.stay()
        if self.job.abortable:
            self.job.abort()
            self.cancel_pressed = True
            return Transition.stay()
        if self.cancel_pressed:
            return Transition.home()
        self.cancel_pressed = True
        return Transition.stay()

    def on_pin(self, request: PinRequest) -> Transition:
        return Transition.push(PinScreen(self.ctx, request))

    def on_job(self, done: JobDone) -> Transition:
        outcome = done.outcome
        if isinstance(outcome, Done):
            return self.done(outcome.value)
        if self.failed is not None:
            return self.failed(outcome.error)
        return Transition.replace(ResultScreen(self.ctx, self.title, explain(self.ctx, outcome.error)))


class PinScreen(Screen):
    """The cardholder types the PIN (shown as *); ENTER gives it to the card, CANCEL bypasses."""

    def __init__(self, ctx: Context, request: PinRequest) -> None:
        super().__init__(ctx)
        self.request = request
        self.field = SecretField(12)

    def view(self) -> View:
        body = [Line(self.t("pin.prompt"), Style.DIM), Line(self.field.shown or " ", Style.BIG)]
        if self.request.tries_left is not None:
            body.append(Line(self.t("pin.tries", tries=self.request.tries_left), Style.DIM))
        return View(self.t("pin.title"), tuple(body), self.t("hint.pin"))

    def handle(self, key: Key) -> Transition:
        if key is Key.ENTER and len(self.field.digits) >= 4:
            self.request.answer(self.field.digits)
            return Transition.pop()
        if key is Key.CANCEL:
            self.request.answer(None)
            return Transition.pop()
        self.field.press(key)
        return Transition.stay()
