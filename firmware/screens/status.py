"""Request status: what waits for the host, what failed, and what the host acknowledged.

A reverse request is saved (written, not yet sent), sent (tried, no answer
yet: the tries and the last error), acknowledged (the host answered), or
failed (undeliverable after the bounded tries: kept and flagged, never
dropped). ENTER or F1 is "retry now": the service drains the queue
(reversals first) and the screen shows what it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.screens.base import Context, Line, Screen, Style, Transition, View
from firmware.screens.common import WorkingScreen, explain, money
from firmware.screens.jobs import Done, Failed, Job, JobDone
from firmware.screens.keys import Key
from firmware.txn.model import JournalEntry, TxnStatus, TxnType
from firmware.txn.uploader import DrainReport

__all__ = ["RequestStatusScreen"]

_REVERSE_TYPES = frozenset({TxnType.VOID, TxnType.REFUND, TxnType.ADJUST, TxnType.COMPLETION})
RECENT = 5


@dataclass(frozen=True)
class StatusData:
    queue: dict[str, Any]
    recent: tuple[JournalEntry, ...]


class RequestStatusScreen(Screen):
    def __init__(self, ctx: Context, report: DrainReport | None = None) -> None:
        super().__init__(ctx)
        self.data: StatusData | None = None
        self.error: tuple[Line, ...] = ()
        self.report = report
        self.scroll = 0
        self.busy = True
        self._load()

    def _load(self) -> None:
        service = self.ctx.service

        def load(job: Job) -> StatusData:
            entries = [e for e in service.ctx.book.open_entries() if e.type in _REVERSE_TYPES]
            return StatusData(service.queue(), tuple(entries[-RECENT:]))

        self.ctx.run(self, load, "local")

    def on_job(self, done: JobDone) -> Transition:
        self.busy = False
        if isinstance(done.outcome, Done):
            self.data = done.outcome.value
        elif isinstance(done.outcome, Failed):
            self.error = explain(self.ctx, done.outcome.error)
        return Transition.stay()

    def _row(self, row: dict[str, Any]) -> Line:
        kind = (
            self.t(f"queue.{row['kind']}") if row["kind"] in ("reversal", "advice", "notice") else row["kind"]
        )
        trace = f" {row['trace']:06d}" if isinstance(row.get("trace"), int) else ""
        amount = f" {money(self.ctx, row['amount'])}" if isinstance(row.get("amount"), int) else ""
        if row["flagged"]:
            state = self.t("state.failed")
        elif row.get("attempts", 0):
            state = self.t("state.sent", attempts=row["attempts"])
        else:
            state = self.t("state.saved")
        error = f" · {row['last_error']}" if row.get("last_error") else ""
        return Line(f"{kind}{trace}{amount} · {state}{error}", Style.BAD if row["flagged"] else Style.BODY)

    def body(self) -> list[Line]:
        lines: list[Line] = []
        if self.report is not None:
            r = self.report
            lines.append(
                Line(
                    self.t("queue.drained", sent=len(r.sent), waiting=r.waiting, flagged=r.flagged),
                    Style.GOOD if not r.waiting else Style.WARN,
                )
            )
            if r.stopped:
                lines.append(Line(self.t("queue.stopped", why=r.stopped), Style.BAD))
        lines.extend(self.error)
        if self.data is None:
            return [*lines, Line(self.t("working.looking_up"), Style.DIM)]
        queue = self.data.queue
        waiting, flagged = queue.get("waiting", []), queue.get("flagged", [])
        lines.append(Line(self.t("queue.waiting_head", count=len(waiting)), Style.DIM))
        lines.extend(self._row(row) for row in waiting)
        lines.append(Line(self.t("queue.failed_head", count=len(flagged)), Style.DIM))
        lines.extend(self._row(row) for row in flagged)
        pending = queue.get("pending_requests", [])
        if pending:
            lines.append(Line(self.t("queue.pending_head", count=len(pending)), Style.DIM))
            waiting_answer = self.t("state.waiting")
            for p in pending:
                kind = self.t("type." + p["type"])
                amount = money(self.ctx, p["amount"])
                lines.append(Line(f"{kind} {p['trace']:06d} {amount} · {waiting_answer}"))
        lines.append(Line(self.t("queue.recent"), Style.DIM))
        for e in reversed(self.data.recent):
            state = {
                TxnStatus.APPROVED: "state.acknowledged",
                TxnStatus.VOIDED: "state.acknowledged",
                TxnStatus.PENDING: "state.waiting",
                TxnStatus.DECLINED: "state.declined",
                TxnStatus.FAILED: "state.failed",
                TxnStatus.REVERSED: "state.reversed",
            }[e.status]
            kind = self.t("type." + e.type.value)
            lines.append(Line(f"{kind} {e.trace:06d} {money(self.ctx, e.amount)} · {self.t(state)}"))
        if not self.data.recent:
            lines.append(Line(self.t("queue.none"), Style.DIM))
        return lines

    def view(self) -> View:
        return View(self.t("menu.status"), tuple(self.body()), self.t("hint.status"), scroll=self.scroll,
                    softkeys=((Key.F1, self.t("soft.retry")),))  # fmt: skip

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.pop()
        if key is Key.UP:
            self.scroll = max(0, self.scroll - 1)
        elif key is Key.DOWN:
            self.scroll = min(len(self.body()) - 1, self.scroll + 1)
        elif key in (Key.ENTER, Key.F1):
            ctx = self.ctx
            return Transition.replace(
                WorkingScreen(
                    ctx,
                    self.t("menu.status"),
                    lambda job: ctx.service.drain(),
                    lambda report: Transition.replace(RequestStatusScreen(ctx, report)),
                    about=(Line(self.t("queue.retrying")),),
                )
            )
        return Transition.stay()
