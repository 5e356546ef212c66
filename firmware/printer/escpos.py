"""Slips as ESC/POS for a thermal receipt printer (58 mm, 384 dots, 32 columns of Font A).

    printer = EscPosPrinter(device="/dev/usb/lp0", text="gb18030")
    data = printer.encode(slip)          # bytes; encode(slip, png) in "raster" mode
    printer(slip, png)                   # encode, write to the device if any (PrinterError if it cannot)

The commands come from python-escpos (`escpos.printer.Dummy` collects them):
ESC @ to begin, ESC a / ESC E / ESC ! for alignment, bold and double size,
GS ( k for the QR code (the printer draws it: model 2, module size 5,
error correction M), GS V to cut. Text goes in one of two ways, chosen by
the configuration (`firmware/data/kiosk.json`: printer_text):

- "gb18030": the text itself in GB18030 after FS & (the Chinese character
  mode of the printers sold in China); ASCII is the same bytes either way;
- "raster": the slip as the kiosk drew it (its PNG, from
  `firmware.screens.slip`) sent as a raster image (GS v 0), for a printer
  with no Chinese font.

A line is wrapped at 32 columns, a CJK character counting two. A PAN
reaches the printer only masked: the slip holds nothing else
(`firmware.txn.receipts`). Writing opens the device write-only for each
slip; an error (no device, no paper, unplugged) is a PrinterError naming
the device, and nothing is retried here (the slip's PNG is kept).
"""

from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path
from typing import Final

from escpos.printer import Dummy

from firmware.errors import PosError
from firmware.txn.receipts import Mark, Slip

__all__ = ["COLUMNS", "FS_CHINESE_ON", "TEXT_MODES", "EscPosPrinter", "PrinterError", "columns_of", "wrap"]

COLUMNS: Final = 32
FS_CHINESE_ON: Final = b"\x1c\x26"  # FS &: Chinese character mode (GB2312/GBK/GB18030 double bytes)
TEXT_MODES: Final = ("gb18030", "raster")
_MAX_SLIP: Final = 4 * 1024 * 1024


class PrinterError(PosError):
    """The slip could not be written to the printer's device (its path and the reason)."""


def columns_of(text: str) -> int:
    """How many Font A columns `text` takes: a wide (CJK) character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def wrap(text: str, width: int = COLUMNS) -> list[str]:
    """`text` in lines of at most `width` columns: at spaces where there are some, else anywhere."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if columns_of(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
            current = ""
        for char in word:
            if columns_of(current + char) > width and current:
                lines.append(current)
                current = ""
            current += char
    lines.append(current)
    return lines


class EscPosPrinter:
    def __init__(
        self, device: str | Path | None = None, *, text: str = "gb18030", paper_dots: int = 384
    ) -> None:
        if text not in TEXT_MODES:
            raise ValueError(f"printer text mode {text!r} is not one of {', '.join(TEXT_MODES)}")
        self.device = Path(device) if device else None
        self.text = text
        self.paper_dots = paper_dots
        self.columns = COLUMNS * paper_dots // 384

    def _new(self) -> Dummy:
        printer = Dummy()
        printer.profile.profile_data["media"]["width"]["pixel"] = self.paper_dots
        printer.hw("INIT")
        return printer

    def _line(self, printer: Dummy, text: str, columns: int) -> None:
        for piece in wrap(text, columns):
            printer._raw(piece.encode("gb18030") + b"\n")

    def encode(self, slip: Slip, png: bytes | None = None) -> bytes:
        """The slip as ESC/POS bytes: text in GB18030, or (raster mode, with `png`) as a picture."""
        printer = self._new()
        if self.text == "raster":
            if png is None:
                raise ValueError("raster mode prints the slip's PNG: none was given")
            from PIL import Image  # python-escpos's own dependency

            printer.image(Image.open(io.BytesIO(png)), impl="bitImageRaster", center=True)
            printer.cut(feed=True)
            return bytes(printer.output)
        if not slip.text().isascii():
            printer._raw(FS_CHINESE_ON)
        colon = slip.colon
        for line in slip.lines:
            mark = line.mark
            if mark is Mark.HEADER:
                printer.set(align="center", bold=True)
                self._line(printer, line.text, self.columns)
            elif mark in (Mark.TITLE, Mark.AMOUNT):  # double size: half as many columns
                printer.set(align="center", bold=True, double_height=True, double_width=True)
                self._line(printer, line.text, self.columns // 2)
            elif mark is Mark.CENTER:
                printer.set(align="center")
                self._line(printer, line.text, self.columns)
            elif mark is Mark.RULE:
                printer.set(align="left")
                printer._raw(b"-" * self.columns + b"\n")
            elif mark is Mark.QR:
                printer.set(align="center")
                printer.qr(line.text, native=True, size=5, ec=0)
            elif mark is Mark.SIGN:
                printer.set(align="left")
                self._line(printer, f"{line.text}{colon}", self.columns)
                printer._raw(b"\n\n" + b"_" * self.columns + b"\n")
            else:  # PAIR, TEXT, SMALL
                printer.set(align="left", font="b" if mark is Mark.SMALL else "a")
                self._line(printer, line.plain(colon), self.columns)
            printer.set_with_default()
        printer.cut(feed=True)
        return bytes(printer.output)

    def write(self, data: bytes) -> None:
        """Write `data` to the device (PrinterError when there is none or it refuses)."""
        if self.device is None:
            raise PrinterError("no printer device is configured (kiosk.json: printer_device)")
        if len(data) > _MAX_SLIP:
            raise PrinterError(f"{self.device}: a slip of {len(data)} bytes is too long to print")
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | os.O_APPEND)
        except OSError as error:
            raise PrinterError(f"{self.device}: {error.strerror or error}") from None
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as error:
            raise PrinterError(f"{self.device}: {error.strerror or error}") from None
        finally:
            os.close(fd)

    def __call__(self, slip: Slip, png: bytes) -> bytes:
        """Encode the slip and, when there is a device, print it; the bytes (to keep beside the PNG)."""
        data = self.encode(slip, png)
        if self.device is not None:
            self.write(data)
        return data
