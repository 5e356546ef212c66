"""The kiosk's screen and keypad settings (`firmware/data/kiosk.json`).

    settings = load_kiosk_settings()          # the shipped file; or load_kiosk_settings(path)

- width, height: the portrait screen in pixels, 240-1080 wide, taller than
  wide (320x480 by default; 480x800 is the other supported panel);
- language: "zh" or "en", the one the kiosk starts in;
- touch_keypad: whether the on-screen keypad is drawn (mouse or touch);
- wakeups_per_second: how often the loop wakes (1-60; 60 by default: a key reaches the screen within a frame);
- printer_device: the receipt printer's device file (e.g. "/dev/usb/lp0"), or
  "" for none (the slips are still drawn and kept as PNG);
- printer_text: "gb18030" (Chinese text in the printer's own font) or
  "raster" (the slip sent as a picture, for a printer with no Chinese font);
- paper_dots: the paper's printable width in dots (384: 58 mm; 576: 80 mm).

A wrong value raises ConfigError naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.config import read_config

__all__ = ["KIOSK_FILE", "KioskSettings", "load_kiosk_settings"]

KIOSK_FILE: Final = "kiosk.json"
LANGUAGES: Final = ("zh", "en")
PRINTER_TEXT: Final = ("gb18030", "raster")


@dataclass(frozen=True)
class KioskSettings:
    width: int = 320
    height: int = 480
    language: str = "zh"
    touch_keypad: bool = True
    wakeups_per_second: int = 60
    printer_device: str | None = None
    printer_text: str = "gb18030"
    paper_dots: int = 384
    receipts_kept: int = 1000


def load_kiosk_settings(path: Path | str | None = None) -> KioskSettings:
    section = read_config(KIOSK_FILE, path)
    section.only(
        "width",
        "height",
        "language",
        "touch_keypad",
        "wakeups_per_second",
        "printer_device",
        "printer_text",
        "paper_dots",
        "receipts_kept",
    )
    width = section.integer("width", minimum=240, maximum=1080)
    height = section.integer("height", minimum=320, maximum=1920)
    if height <= width:
        raise section.error("height", "the screen is portrait: height must be more than width")
    language = section.text("language")
    if language not in LANGUAGES:
        raise section.error("language", f"must be one of {', '.join(LANGUAGES)}")
    device = section.text("printer_device", default="") or None
    printer_text = section.text("printer_text", default="gb18030")
    if printer_text not in PRINTER_TEXT:
        raise section.error("printer_text", f"must be one of {', '.join(PRINTER_TEXT)}")
    return KioskSettings(
        printer_device=device,
        printer_text=printer_text,
        paper_dots=section.integer("paper_dots", default=384, minimum=384, maximum=576),
        receipts_kept=section.integer("receipts_kept", default=1000, minimum=1, maximum=1_000_000),
        width=width,
        height=height,
        language=language,
        touch_keypad=section.flag("touch_keypad"),
        wakeups_per_second=section.integer("wakeups_per_second", minimum=1, maximum=60),
    )
