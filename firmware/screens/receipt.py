"""The receipt preview: the slips of a result as they print (merchant copy, customer copy).

After a result, ENTER shows its receipt: the slip as the printer's paper,
drawn by `firmware.screens.slip.SlipPainter` with the kiosk's fonts and
fitted to the screen's width. UP / DOWN scroll, F1 switches between the
merchant and the customer copy, F2 prints both again (the receipts hook),
ENTER or CANCEL go back to the idle screen. The screen's text (what EXPECT
reads) is the slip's text, line by line.
"""

from __future__ import annotations

from firmware.screens.base import Context, Line, Receipt, Screen, Style, Transition, View
from firmware.screens.keys import Key
from firmware.screens.slip import slips_of
from firmware.txn.receipts import Copy, Slip

__all__ = ["ReceiptPreviewScreen"]

SCROLL_LINES = 4


class ReceiptPreviewScreen(Screen):
    def __init__(self, ctx: Context, receipt: Receipt) -> None:
        super().__init__(ctx)
        self.receipt = receipt
        self.slips: tuple[Slip, ...] = slips_of(receipt, ctx.info, ctx.service.ctx.terms, ctx.clock())
        self.index = 0
        self.scroll = 0
        self.printed = False
        self._images: dict[int, object] = {}

    @property
    def slip(self) -> Slip:
        return self.slips[self.index]

    def image(self) -> object | None:
        if self.ctx.render_slip is None:
            return None
        if self.index not in self._images:
            self._images[self.index] = self.ctx.render_slip(self.slip)
        return self._images[self.index]

    def view(self) -> View:
        copy = self.t("receipt.merchant" if self.slip.copy is Copy.MERCHANT else "receipt.customer")
        body = [Line(copy, Style.DIM), *(Line(text) for text in self.slip.text().splitlines())]
        if self.printed:
            body.insert(1, Line(self.t("receipt.printing"), Style.GOOD))
        softkeys: list[tuple[Key, str]] = []
        if len(self.slips) > 1:
            other = "soft.customer_copy" if self.slip.copy is Copy.MERCHANT else "soft.merchant_copy"
            softkeys.append((Key.F1, self.t(other)))
        softkeys.append((Key.F2, self.t("soft.print")))
        return View(
            self.t("receipt.title"),
            tuple(body),
            self.t("hint.preview"),
            scroll=self.scroll,
            softkeys=tuple(softkeys),
            image=self.image(),
        )

    def handle(self, key: Key) -> Transition:
        if key in (Key.ENTER, Key.CANCEL):
            return Transition.home()
        if key is Key.UP:
            self.scroll = max(0, self.scroll - SCROLL_LINES)
        elif key is Key.DOWN:
            self.scroll = min(max(0, len(self.slip.lines) - SCROLL_LINES), self.scroll + SCROLL_LINES)
        elif key is Key.F1 and len(self.slips) > 1:
            self.index = (self.index + 1) % len(self.slips)
            self.scroll = 0
        elif key is Key.F2:
            self.ctx.receipts(self.receipt)
            self.printed = True
        return Transition.stay()
