"""Settlement (结算): the open batch's totals, then the 0500 (and the batch upload if the host wants it)."""

from __future__ import annotations

from typing import Protocol

from firmware.screens.base import Context, Line, Receipt, Screen, Style, Transition, View
from firmware.screens.common import ResultScreen, WorkingScreen, explain, money
from firmware.screens.jobs import Done, Failed, Job, JobDone
from firmware.screens.keys import Key
from firmware.txn.settlement import SettlementResult, batch_totals

__all__ = ["SettlementScreen"]


class SettlementTotals(Protocol):
    """The totals of a batch, as `batch_totals` and a `SettlementResult` give them."""

    @property
    def debit_amount(self) -> int: ...
    @property
    def debit_count(self) -> int: ...
    @property
    def credit_amount(self) -> int: ...
    @property
    def credit_count(self) -> int: ...


class SettlementScreen(Screen):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.totals: tuple[int, SettlementTotals] | None = None
        self.error: tuple[Line, ...] = ()
        self.busy = True
        service = ctx.service

        def load(job: Job) -> tuple[int, SettlementTotals]:
            batch = service.ctx.book.batch
            return batch, batch_totals(service.ctx.book.open_entries(), batch)

        ctx.run(self, load, "local")

    def on_job(self, done: JobDone) -> Transition:
        self.busy = False
        if isinstance(done.outcome, Done):
            self.totals = done.outcome.value
        elif isinstance(done.outcome, Failed):
            self.error = explain(self.ctx, done.outcome.error)
        return Transition.stay()

    def _total_lines(self, totals: SettlementTotals) -> list[Line]:
        return [
            Line(
                self.t("settle.debits", count=totals.debit_count, amount=money(self.ctx, totals.debit_amount))
            ),
            Line(
                self.t(
                    "settle.credits", count=totals.credit_count, amount=money(self.ctx, totals.credit_amount)
                )
            ),
        ]

    def view(self) -> View:
        body: list[Line] = [*self.error]
        if self.totals is None:
            body.append(Line(self.t("working.looking_up"), Style.DIM))
        else:
            batch, totals = self.totals
            body.append(Line(self.t("settle.batch", batch=f"{batch:06d}")))
            body.extend(self._total_lines(totals))
            body.append(Line(self.t("settle.ask"), Style.DIM))
        return View(self.t("menu.settle"), tuple(body), self.t("hint.confirm"))

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.pop()
        if key is not Key.ENTER or self.totals is None:
            return Transition.stay()
        ctx = self.ctx

        def done(result: SettlementResult) -> Transition:
            body = [
                Line(self.t("settle.balanced") if result.balanced else self.t("settle.unbalanced"),
                     Style.GOOD if result.balanced else Style.WARN),
                Line(self.t("settle.batch", batch=f"{result.batch:06d}")),
                *self._total_lines(result.totals),
                Line(self.t("settle.uploaded", count=result.uploaded), Style.DIM),
                Line(self.t("settle.new_batch", batch=f"{result.new_batch:06d}"), Style.DIM),
            ]  # fmt: skip
            return Transition.home_then(
                ResultScreen(ctx, self.t("menu.settle"), body, Receipt("settlement", result, ctx.language))
            )

        return Transition.replace(
            WorkingScreen(ctx, self.t("menu.settle"), lambda job: ctx.service.settle(), done)
        )
