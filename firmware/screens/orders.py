"""Order management: find an order by its number, date, amount or the card's last four digits,
see it with its history, and start a cancel, refund or adjust from it (F1, F2, F3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from firmware.screens.base import Context, Line, Screen, Style, Transition, View
from firmware.screens.common import ChoiceScreen, EntryScreen, Field, money
from firmware.screens.entry import AmountField, DateTimeField, DigitField, MultiTapField, TapMode
from firmware.screens.jobs import Done, JobDone
from firmware.screens.keys import Key
from firmware.txn.model import CashRefund, JournalEntry

__all__ = ["OrderDetailScreen", "OrderListScreen", "find_menu", "order_summary"]


@dataclass(frozen=True)
class OrderFile:
    """An order as the detail screen shows it: the original and everything that acted on it."""

    original: JournalEntry
    entries: tuple[JournalEntry, ...]
    cash_refunds: tuple[CashRefund, ...]


def order_summary(ctx: Context, entry: JournalEntry) -> str:
    """One line: "sale 12.34 元 · 01-31 14:05 · approved"."""
    return (
        f"{ctx.t(f'type.{entry.type.value}')} {money(ctx, entry.amount)} · "
        f"{entry.created:%m-%d %H:%M} · {ctx.t(f'status.{entry.status.value}')}"
    )


def find_menu(ctx: Context) -> ChoiceScreen:
    def by(
        title_key: str, field: Callable[[], Field], query: Callable[[Field], dict[str, Any] | None]
    ) -> Callable[[], Transition]:
        def open_entry() -> Transition:
            def search(screen: EntryScreen) -> Transition:
                criteria = query(screen.field)
                if criteria is None:
                    screen.error = (Line(ctx.t("error.incomplete"), Style.BAD),)
                    return Transition.stay()

                def found(entries: list[JournalEntry]) -> Transition:
                    if not entries:
                        screen.error = (Line(ctx.t("orders.none"), Style.BAD),)
                        return Transition.stay()
                    return Transition.push(OrderListScreen(ctx, entries))

                return screen.lookup(lambda job: ctx.service.find(**criteria), found)

            return Transition.push(EntryScreen(ctx, ctx.t("orders.title"), ctx.t(title_key), field(), search))

        return open_entry

    def order_query(f: Field) -> dict[str, Any] | None:
        text = f.finish() if isinstance(f, MultiTapField) else ""
        return {"order": text} if text else None

    def date_query(f: Field) -> dict[str, Any] | None:
        if not isinstance(f, DateTimeField) or len(f.digits) != 8:
            return None
        when = f.value(None)
        return {"on": date(when.year, when.month, when.day)} if when else None

    def amount_query(f: Field) -> dict[str, Any] | None:
        return {"amount": f.value} if isinstance(f, AmountField) and f.value > 0 else None

    def last4_query(f: Field) -> dict[str, Any] | None:
        return {"last4": f.digits} if isinstance(f, DigitField) and len(f.digits) == 4 else None

    choices = [
        (
            ctx.t("orders.by_order"),
            by("orders.enter_order", lambda: MultiTapField(32, TapMode.DIGITS), order_query),
        ),
        (ctx.t("orders.by_date"), by("orders.enter_date", DateTimeField, date_query)),
        (ctx.t("orders.by_amount"), by("orders.enter_amount", AmountField, amount_query)),
        (ctx.t("orders.by_last4"), by("orders.enter_last4", lambda: DigitField(4), last4_query)),
    ]
    return ChoiceScreen(ctx, ctx.t("orders.title"), choices)


class OrderListScreen(ChoiceScreen):
    def __init__(self, ctx: Context, entries: list[JournalEntry]) -> None:
        self.entries = entries

        def open_detail(entry: JournalEntry) -> Callable[[], Transition]:
            return lambda: Transition.push(OrderDetailScreen(ctx, entry))

        choices = [(f"{e.order}  {order_summary(ctx, e)}", open_detail(e)) for e in entries]
        above = (Line(ctx.t("orders.found", count=len(entries)), Style.DIM),)
        super().__init__(ctx, ctx.t("orders.title"), choices, above=above, numbered=False)


class OrderDetailScreen(Screen):
    """The order, its history (every request on it, with its status) and its cash refunds."""

    def __init__(self, ctx: Context, entry: JournalEntry) -> None:
        super().__init__(ctx)
        self.entry = entry
        self.file: OrderFile | None = None
        self.scroll = 0
        self.busy = True
        history = ctx.service.ctx.book

        def load(job: object) -> OrderFile:
            found = history.history(entry.order)
            original = next((e for e in found.originals if e.trace == entry.trace), entry)
            return OrderFile(original, found.entries, found.cash_refunds)

        ctx.run(self, load, "local")

    def on_job(self, done: JobDone) -> Transition:
        self.busy = False
        if isinstance(done.outcome, Done):
            self.file = done.outcome.value
            self.entry = self.file.original if self.file else self.entry
        return Transition.stay()

    def body(self) -> list[Line]:
        ctx, e = self.ctx, self.entry
        colon = ctx.t("colon")
        kind, status = ctx.t(f"type.{e.type.value}"), ctx.t(f"status.{e.status.value}")
        lines = [
            Line(f"{ctx.t('field.order')}{colon}{e.order}"),
            Line(f"{kind} {money(ctx, e.amount)} · {status}"),
            Line(f"{e.created:%Y-%m-%d %H:%M}" + (f" · {e.masked_pan}" if e.masked_pan else "")),
            Line(f"{ctx.t('field.trace')}{colon}{e.batch:06d}/{e.trace:06d}"),
        ]
        if e.rrn:
            lines.append(Line(f"{ctx.t('field.rrn')}{colon}{e.rrn}"))
        lines.append(Line(ctx.t("orders.history"), Style.DIM))
        if self.file is None:
            lines.append(Line(ctx.t("working.looking_up"), Style.DIM))
            return lines
        lines.extend(Line(f"· {note}", Style.DIM) for note in self.file.original.history)
        for related in self.file.entries:
            lines.append(Line(f"{related.trace:06d} {order_summary(ctx, related)}"))
        for cash in self.file.cash_refunds:
            lines.append(
                Line(f"{ctx.t('type.cash_refund')} {money(ctx, cash.amount)} · {cash.created:%m-%d %H:%M}")
            )
        if not self.file.entries and not self.file.cash_refunds:
            lines.append(Line(ctx.t("orders.no_history"), Style.DIM))
        return lines

    def view(self) -> View:
        softkeys = (
            (Key.F1, self.t("soft.void")),
            (Key.F2, self.t("soft.refund")),
            (Key.F3, self.t("soft.adjust")),
        )
        return View(
            self.t("orders.detail"),
            tuple(self.body()),
            self.t("hint.detail"),
            scroll=self.scroll,
            softkeys=softkeys,
        )

    def handle(self, key: Key) -> Transition:
        from firmware.screens.reverse import ReverseKind, start_reverse

        if key is Key.CANCEL or key is Key.ENTER:
            return Transition.pop()
        if key is Key.UP:
            self.scroll = max(0, self.scroll - 1)
        elif key is Key.DOWN:
            self.scroll = min(len(self.body()) - 1, self.scroll + 1)
        elif key in (Key.F1, Key.F2, Key.F3):
            kind = {Key.F1: ReverseKind.VOID, Key.F2: ReverseKind.REFUND, Key.F3: ReverseKind.ADJUST}[key]
            return start_reverse(self.ctx, kind, original=self.entry)
        return Transition.stay()
