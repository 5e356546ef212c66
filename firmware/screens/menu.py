"""The main menu: every operation of the terminal, by number or with UP/DOWN and ENTER."""

from __future__ import annotations

from collections.abc import Callable

from firmware.screens.base import Context, Line, Style, Transition
from firmware.screens.common import ChoiceScreen, ResultScreen, WorkingScreen
from firmware.screens.orders import find_menu
from firmware.screens.reverse import ReverseKind, start_reverse
from firmware.screens.sale import SaleAmountScreen
from firmware.screens.settle import SettlementScreen
from firmware.screens.status import RequestStatusScreen
from firmware.screens.technician import technician_entry
from firmware.txn.service import TerminalService

__all__ = ["MainMenu", "sign_on_screen"]


def sign_on_screen(ctx: Context) -> WorkingScreen:
    def call(job: object) -> bool:
        service: TerminalService = ctx.service
        return service.sign_on().approved

    def done(approved: bool) -> Transition:
        line = Line(ctx.t("signon.ok"), Style.GOOD) if approved else Line(ctx.t("signon.refused"), Style.BAD)
        return Transition.replace(ResultScreen(ctx, ctx.t("menu.signon"), (line,)))

    return WorkingScreen(ctx, ctx.t("menu.signon"), call, done)


class MainMenu(ChoiceScreen):
    def __init__(self, ctx: Context) -> None:
        entries: list[tuple[str, Callable[[], Transition]]] = [
            (ctx.t("menu.sale"), lambda: Transition.push(SaleAmountScreen(ctx))),
            (ctx.t("menu.void"), lambda: start_reverse(ctx, ReverseKind.VOID)),
            (ctx.t("menu.refund"), lambda: start_reverse(ctx, ReverseKind.REFUND)),
            (ctx.t("menu.adjust"), lambda: start_reverse(ctx, ReverseKind.ADJUST)),
            (ctx.t("menu.orders"), lambda: Transition.push(find_menu(ctx))),
            (ctx.t("menu.status"), lambda: Transition.push(RequestStatusScreen(ctx))),
            (ctx.t("menu.settle"), lambda: Transition.push(SettlementScreen(ctx))),
            (ctx.t("menu.signon"), lambda: Transition.push(sign_on_screen(ctx))),
            (ctx.t("menu.technician"), lambda: technician_entry(ctx)),
        ]
        super().__init__(ctx, ctx.t("menu.title"), entries)
