"""Slips as pictures: a `Slip` (firmware.txn.receipts) drawn on thermal paper, and the receipt desk.

    painter = SlipPainter(find_font(), width=384)     # 58 mm paper at 203 dpi: 384 dots
    surface = painter.render(slip)                     # white paper, black ink; painter.missing: no glyph
    painter.save_png(slip, path)

The fonts are the kiosk's cached ones (`firmware.screens.render.Fonts`) at
the paper's scale; a character the font lacks is noted in `missing` (the
tests refuse any). A QR code (`Mark.QR`) is drawn from the `qrcode`
package's module matrix, 5 dots a module, with its quiet zone.

`ReceiptDesk` is the kiosk's `receipts` hook: for each result it builds the
slips (merchant copy, then customer copy), draws each to PNG in its folder
(when it has one) and hands the slip and its PNG to the printer (when there
is one: `firmware.printer.escpos`; the bytes it sends are kept beside the
PNG as `.escpos`). Files and the printer are written on a
thread of their own, so a slow or absent printer never holds the loop; a
failure is logged and kept in `failures`, never raised into the loop.
"""

from __future__ import annotations

import io
import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import pygame
import qrcode

from firmware.screens.base import Receipt, TerminalInfo
from firmware.screens.render import Fonts, wrap
from firmware.txn.receipts import Mark, Merchant, ReceiptInput, Slip, build_slips
from firmware.txn.terms import Terms

__all__ = [
    "DEFAULT_SLIPS_KEPT",
    "PAPER_DOTS",
    "ReceiptDesk",
    "SlipPainter",
    "kept_slips",
    "merchant_of",
    "slips_of",
]

PAPER_DOTS: Final = 384
PAPER: Final = (255, 255, 255)
INK: Final = (0, 0, 0)
GREY: Final = (90, 90, 90)
QR_MODULE: Final = 5
_ROLE: Final = {
    Mark.HEADER: "title",
    Mark.TITLE: "title",
    Mark.CENTER: "body",
    Mark.PAIR: "body",
    Mark.TEXT: "body",
    Mark.SMALL: "hint",
    Mark.AMOUNT: "big",
    Mark.SIGN: "body",
}
log = logging.getLogger(__name__)


def merchant_of(info: TerminalInfo) -> Merchant:
    return Merchant(info.merchant_name, info.merchant_id, info.terminal_id, info.currency)


def slips_of(receipt: Receipt, info: TerminalInfo, terms: Terms, now: datetime) -> tuple[Slip, ...]:
    """The slips of a result screen's receipt."""
    inp = ReceiptInput(receipt.kind, receipt.result, receipt.language, now, original=receipt.original)
    return build_slips(inp, merchant_of(info), terms)


class SlipPainter:
    """Draws slips `width` dots wide with the kiosk's font (one `Fonts` cache for every slip)."""

    def __init__(self, font_path: str | None, width: int = PAPER_DOTS) -> None:
        if not pygame.font.get_init():
            pygame.font.init()
        self.width = width
        self.fonts = Fonts(font_path, width / 320 * 1.05)
        self.margin = round(width / 48)
        self.missing: list[str] = []

    def _pieces(self, slip: Slip, role: str, text: str) -> list[str]:
        font = self.fonts.get(role)
        self.missing += [c for c, m in zip(text, font.metrics(text), strict=True) if m is None]
        return wrap(font, text, self.width - 2 * self.margin) if text else [""]

    def _qr(self, data: str) -> pygame.Surface:
        code = qrcode.QRCode(border=2, box_size=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
        code.add_data(data)
        code.make(fit=True)
        matrix = code.get_matrix()
        size = len(matrix) * QR_MODULE
        surface = pygame.Surface((size, size))
        surface.fill(PAPER)
        for y, row in enumerate(matrix):
            for x, dark in enumerate(row):
                if dark:
                    surface.fill(INK, (x * QR_MODULE, y * QR_MODULE, QR_MODULE, QR_MODULE))
        return surface

    def render(self, slip: Slip) -> pygame.Surface:
        """The slip on paper `width` dots wide, as tall as it needs."""
        blits: list[tuple[pygame.Surface, int, bool]] = []  # (image, gap before, centred)
        colon = slip.colon
        for line in slip.lines:
            if line.mark is Mark.RULE:
                rule = pygame.Surface((self.width - 2 * self.margin, 2))
                rule.fill(INK)
                blits.append((rule, 6, True))
                continue
            if line.mark is Mark.QR:
                blits.append((self._qr(line.text), 6, True))
                continue
            role = _ROLE[line.mark]
            text = line.plain(colon) if line.mark is not Mark.SIGN else f"{line.text}{colon}"
            colour = GREY if line.mark is Mark.SMALL else INK
            centred = line.mark in (Mark.HEADER, Mark.TITLE, Mark.CENTER, Mark.AMOUNT)
            font = self.fonts.get(role)
            font.set_bold(line.mark in (Mark.HEADER, Mark.TITLE))
            for i, piece in enumerate(self._pieces(slip, role, text)):
                blits.append((font.render(piece, True, colour, PAPER), 2 if i else 4, centred))
            font.set_bold(False)
            if line.mark is Mark.SIGN:
                space = pygame.Surface((self.width - 2 * self.margin, font.get_linesize() * 2))
                space.fill(PAPER)
                bottom = space.get_height() - 2
                pygame.draw.line(space, INK, (0, bottom), (space.get_width(), bottom), 1)
                blits.append((space, 0, False))
        height = self.margin * 2 + sum(image.get_height() + gap for image, gap, _ in blits) + 24
        paper = pygame.Surface((self.width, height))
        paper.fill(PAPER)
        y = self.margin
        for image, gap, centred in blits:
            y += gap
            x = (self.width - image.get_width()) // 2 if centred else self.margin
            paper.blit(image, (x, y))
            y += image.get_height()
        return paper

    def png(self, slip: Slip) -> bytes:
        buffer = io.BytesIO()
        pygame.image.save(self.render(slip), buffer, "slip.png")
        return buffer.getvalue()

    def save_png(self, slip: Slip, path: Path) -> bytes:
        data = self.png(slip)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


# A printer: the slip and its PNG (for a printer that takes pictures) -> the bytes it sent (kept beside
# the PNG as .escpos), or None; raises OSError or PosError.
Printer = Callable[[Slip, bytes], bytes | None]


@dataclass(frozen=True)
class Printed:
    slip: Slip
    png: Path | None


DEFAULT_SLIPS_KEPT: Final = 1000  # about two weeks of a busy counter; the books keep every transaction anyway
_SLIP_FILE: Final = re.compile(r"([0-9]{3,9})-[a-z_]+-.*\.(?:png|escpos)")


def kept_slips(folder: Path) -> dict[int, list[Path]]:
    """The slip files in `folder` by slip number (its PNG and ESC/POS bytes); other files are not slips."""
    slips: dict[int, list[Path]] = {}
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return slips
    for path in entries:
        found = _SLIP_FILE.fullmatch(path.name)
        if found:
            slips.setdefault(int(found[1]), []).append(path)
    return slips


class ReceiptDesk:
    """The `receipts` hook: slips built and drawn on the loop; files and printer on a thread of their own."""

    def __init__(
        self,
        info: TerminalInfo,
        terms: Terms,
        painter: SlipPainter,
        *,
        folder: Path | None = None,
        printer: Printer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
        kept: int = DEFAULT_SLIPS_KEPT,
    ) -> None:
        if kept < 1:
            raise ValueError("at least the last slip is kept")
        self.info, self.terms, self.painter = info, terms, painter
        self.folder = folder
        self.printer = printer
        self.clock = clock
        self.kept = kept
        self.count = max(kept_slips(folder), default=0) if folder is not None else 0
        self.made: list[Printed] = []
        self.failures: list[str] = []
        self._work: queue.Queue[tuple[Slip, bytes, Path | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="receipts", daemon=True)
        self._thread.start()

    def __call__(self, receipt: Receipt) -> None:
        try:
            slips = slips_of(receipt, self.info, self.terms, self.clock())
        except Exception as error:  # a slip that cannot be made must not take the kiosk down
            log.exception("receipt %s not made", receipt.kind)
            self.failures.append(f"{receipt.kind}: {error}")
            return
        self.print_slips(slips)

    def print_slips(self, slips: Sequence[Slip]) -> None:
        for slip in slips:
            self.count += 1
            png = self.painter.png(slip)
            path = None
            if self.folder is not None:
                path = self.folder / f"{self.count:03d}-{slip.kind}-{slip.reference}-{slip.copy.value}.png"
            self.made.append(Printed(slip, path))
            self._work.put((slip, png, path))

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            slip, png, path = item
            try:
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(png)
                    self._prune(path.parent)
                if self.printer is not None:
                    sent = self.printer(slip, png)
                    if sent is not None and path is not None:
                        path.with_suffix(".escpos").write_bytes(sent)
            except Exception as error:  # paper out, no device: logged and kept, the kiosk goes on
                log.warning("slip %s %s not printed: %s", slip.kind, slip.reference, error)
                self.failures.append(f"{slip.kind} {slip.reference}: {error}")
            finally:
                self._work.task_done()

    def _prune(self, folder: Path) -> None:
        """The oldest slips go (their PNG and ESC/POS bytes) once more than `kept` are in `folder`."""
        slips = kept_slips(folder)
        for number in sorted(slips)[: max(0, len(slips) - self.kept)]:
            for path in slips[number]:
                path.unlink(missing_ok=True)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every slip so far is written and printed (scripts, tests, shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._work.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._work.put(None)
        self._thread.join(timeout)
