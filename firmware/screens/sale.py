"""A sale (消费): the amount in fen from the keypad, then the card, then the work, then the result.

The amount is typed as digits that shift in from the right (1, 2, 3, 4 ->
12.34): an integer of fen from the first key to the service, never a float.
The order number is made here, digits only (so it can be typed again at
the keypad to find the order): `firmware.txn.order_numbers.keypad_order`.
"""

from __future__ import annotations

import secrets

from firmware.screens.base import Context, Line, Receipt, Screen, Style, Transition, View
from firmware.screens.common import EntryScreen, ResultScreen, WorkingScreen, money
from firmware.screens.entry import AmountField
from firmware.screens.jobs import Job
from firmware.screens.keys import Key
from firmware.txn.model import TxnStatus
from firmware.txn.order_numbers import keypad_order
from firmware.txn.service import SaleResult

__all__ = ["InsertCardScreen", "SaleAmountScreen", "sale_result_screen"]


class SaleAmountScreen(EntryScreen):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx, ctx.t("sale.title"), ctx.t("sale.amount"), AmountField(), self._next)

    def _next(self, screen: EntryScreen) -> Transition:
        amount = self.field.value if isinstance(self.field, AmountField) else 0
        if amount <= 0:
            self.error = (Line(self.t("error.amount_zero"), Style.BAD),)
            return Transition.stay()
        insert = InsertCardScreen(self.ctx, amount)
        if self.ctx.card.present():  # the card is in the slot already: the payment starts at once
            return insert.on_card(True)
        return Transition.push(insert)


def new_order_number(ctx: Context, rnd: int | None = None) -> str:
    """The order number of a kiosk sale (`keypad_order`: 14 digits that never read as a card number)."""
    return keypad_order(ctx.clock(), secrets.randbelow(100) if rnd is None else rnd)


class InsertCardScreen(Screen):
    """Waits for the card (an event from the slot, not polling); a card already there starts at once."""

    def __init__(self, ctx: Context, amount: int) -> None:
        super().__init__(ctx)
        self.amount = amount

    def view(self) -> View:
        body = (
            Line(self.t("sale.amount_is"), Style.DIM),
            Line(money(self.ctx, self.amount), Style.BIG),
            Line(self.t("sale.insert"), Style.BODY),
        )
        return View(self.t("sale.title"), body, self.t("hint.insert"))

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.pop()
        if key is Key.ENTER and self.ctx.card.present():
            return self.on_card(True)
        return Transition.stay()

    def on_card(self, present: bool) -> Transition:
        if not present:
            return Transition.stay()
        ctx, amount = self.ctx, self.amount
        order = new_order_number(ctx)

        def call(job: Job) -> SaleResult:
            reader = ctx.card.reader(job.aborted)
            return ctx.service.sale(reader, amount, order=order, pin=ctx.jobs.pin_source(job))

        about = (Line(money(ctx, amount), Style.BIG), Line(self.t("sale.order", order=order), Style.DIM))
        return Transition.replace(
            WorkingScreen(
                ctx,
                self.t("sale.title"),
                call,
                lambda result: Transition.replace(sale_result_screen(ctx, result)),
                about=about,
                label="card",
                abortable=True,
            )
        )


def sale_result_screen(ctx: Context, result: SaleResult) -> ResultScreen:
    entry = result.entry
    approved = entry is not None and entry.status is TxnStatus.APPROVED
    body: list[Line] = []
    if approved:
        body.append(Line(ctx.t("result.approved"), Style.GOOD))
    else:
        body.append(Line(ctx.t("result.declined"), Style.BAD))
        outcome_key = f"outcome.{result.outcome.name}"
        body.append(Line(ctx.t(outcome_key), Style.BODY))
        if result.reason:
            body.append(Line(result.reason, Style.DIM))
    if result.reversal_pending:
        body.append(Line(ctx.t("result.reversal_pending"), Style.WARN))
    if entry is not None:
        body.append(Line(money(ctx, entry.amount), Style.BIG))
        colon = ctx.t("colon")
        pairs = [
            (ctx.t("field.order"), entry.order),
            (ctx.t("field.card"), entry.masked_pan),
            (ctx.t("field.auth_code"), entry.auth_code),
            (ctx.t("field.rrn"), entry.rrn),
            (ctx.t("field.trace"), f"{entry.trace:06d}"),
            (ctx.t("field.status"), ctx.t(f"status.{entry.status.value}")),
        ]
        body.extend(Line(f"{label}{colon}{value}") for label, value in pairs if value)
    if ctx.card.present():
        body.append(Line(ctx.t("sale.remove"), Style.DIM))
    return ResultScreen(ctx, ctx.t("sale.title"), body, Receipt("sale", result, ctx.language))
