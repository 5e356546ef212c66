"""The idle screen: who the terminal is, the time, the host's state, and what waits for the host.

Keys: ENTER the main menu; a digit starts a sale with that digit; F1 sale,
F2 orders, F3 request status, F4 中文 / English.
The banner counts come from `service.queue()` as the worker last read it
(after every job, and once at start: a restart shows what was left waiting).
"""

from __future__ import annotations

from typing import Any

from firmware.screens.base import Line, Screen, Style, Transition, View
from firmware.screens.keys import Key

__all__ = ["IdleScreen", "queue_banner"]


def queue_banner(screen: Screen, queue: dict[str, Any]) -> list[Line]:
    """The banner lines for what waits: reversals, unsent requests, answers awaited, failures."""
    waiting = queue.get("waiting", [])
    reversals = sum(1 for row in waiting if row.get("kind") == "reversal")
    unsent = len(waiting) - reversals
    flagged = len(queue.get("flagged", []))
    pending = len(queue.get("pending_requests", []))
    lines = []
    if reversals:
        lines.append(Line(screen.t("idle.reversals", count=reversals), Style.WARN))
    if unsent:
        lines.append(Line(screen.t("idle.unsent", count=unsent), Style.WARN))
    if pending:
        lines.append(Line(screen.t("idle.pending", count=pending), Style.WARN))
    if flagged:
        lines.append(Line(screen.t("idle.flagged", count=flagged), Style.WARN))
    return lines


class IdleScreen(Screen):
    ticks = True

    def view(self) -> View:
        ctx = self.ctx
        now = ctx.clock()
        body = [
            Line(self.t("idle.terminal", tid=ctx.info.terminal_id), Style.DIM),
            Line(self.t("idle.merchant", mid=ctx.info.merchant_id), Style.DIM),
            Line(f"{now:%Y-%m-%d}", Style.BODY),
            Line(f"{now:%H:%M:%S}", Style.BIG),
            Line(self.t("idle.network", state=self.t(f"network.{ctx.network.value}")), Style.BODY),
            *queue_banner(self, ctx.queue_view),
        ]
        softkeys = (
            (Key.F1, self.t("soft.sale")),
            (Key.F2, self.t("soft.orders")),
            (Key.F3, self.t("soft.status")),
            (Key.F4, self.t("soft.language")),
        )
        return View(ctx.info.merchant_name, tuple(body), self.t("hint.idle"), softkeys=softkeys)

    def handle(self, key: Key) -> Transition:
        from firmware.screens.menu import MainMenu
        from firmware.screens.orders import find_menu
        from firmware.screens.sale import SaleAmountScreen
        from firmware.screens.status import RequestStatusScreen

        if key is Key.ENTER:
            return Transition.push(MainMenu(self.ctx))
        if key is Key.F1:
            return Transition.push(SaleAmountScreen(self.ctx))
        if key.digit is not None:
            screen = SaleAmountScreen(self.ctx)
            screen.handle(key)
            return Transition.push(screen)
        if key is Key.F2:
            return Transition.push(find_menu(self.ctx))
        if key is Key.F3:
            return Transition.push(RequestStatusScreen(self.ctx))
        if key is Key.F4:
            self.ctx.toggle_language()
        return Transition.stay()
