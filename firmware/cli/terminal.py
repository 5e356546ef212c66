"""`pos-terminal`: the kiosk, on the terminal's screen or a desktop window, or headless from a script.

    pos-terminal [--data-dir D] [--host HOST:PORT] [--plain | --tls-ca PEM] [--size WxH] [--lang zh|en]
                 [--no-touch-keypad] [--card SPEC] [--receipts DIR] [--printer DEVICE]
                 [--headless --script FILE [--shots DIR]]

Screen size, language, touch keypad and wake-ups default to
`firmware/data/kiosk.json` (`--config FILE` reads another). `--card SPEC`
puts a card in the slot at start (`sim:PROFILE`; `pcsc` for a reader).
With `--script FILE` the kiosk plays the scripted keypad (see
`firmware.app`: one token a line, key names, WAIT ms, CARD INSERT profile,
CARD REMOVE, SHOT name, EXPECT text) and exits; `--shots DIR` is where
SHOT writes its PNGs; `--headless` uses SDL's dummy video driver.
Every result's slips (merchant and customer copy) are kept as PNG in
`--receipts DIR` (default DATA_DIR/receipts) and, with a printer
(`--printer DEVICE` or kiosk.json's printer_device), printed as ESC/POS.

Exit codes: 0 done (a script met every EXPECT), 1 a script's EXPECT failed
or its line is not a token, 5 configuration or a terminal not provisioned,
64 bad command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from firmware.cli.common import (
    EXIT_USAGE,
    Parser,
    UsageError,
    add_host_arguments,
    fail,
    host_address,
    parse_command_line,
)
from firmware.errors import ConfigError, KeyStoreError, PosError
from firmware.host.channel import HostAddress
from firmware.kiosk_config import KioskSettings, load_kiosk_settings

__all__ = ["EXIT_SCRIPT", "EXIT_SETUP", "PROG", "TerminalOptions", "build_parser", "main"]

PROG = "pos-terminal"
EXIT_SCRIPT = 1
EXIT_SETUP = 5
DEFAULT_DATA_DIR = "var/data"
DEFAULT_HOST = "127.0.0.1:5000"


@dataclass(frozen=True)
class TerminalOptions:
    data_dir: Path
    address: HostAddress  # TLS unless --plain (this machine only)
    settings: KioskSettings
    headless: bool
    script: Path | None
    shots: Path | None
    card: str | None
    receipts: Path  # where the slips are kept as PNG


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="The POS terminal's kiosk (keypad and screen)")
    parser.add_argument("--data-dir", type=Path, default=None, help="the terminal's data directory")
    add_host_arguments(parser, DEFAULT_HOST)
    parser.add_argument(
        "--config", type=Path, default=None, help="kiosk settings (default: shipped kiosk.json)"
    )
    parser.add_argument("--size", default=None, metavar="WxH", help="screen size, e.g. 320x480 or 480x800")
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="the language to start in")
    parser.add_argument("--no-touch-keypad", action="store_true", help="no on-screen keypad")
    parser.add_argument(
        "--card", default=None, metavar="SPEC", help="a card in the slot at start: sim:PROFILE"
    )
    parser.add_argument("--headless", action="store_true", help="no window (SDL dummy video driver)")
    parser.add_argument("--script", type=Path, default=None, help="play this keypad script, then exit")
    parser.add_argument("--shots", type=Path, default=None, help="where SHOT writes its PNG files")
    parser.add_argument(
        "--receipts",
        type=Path,
        default=None,
        help="where the slips are kept as PNG (default: DATA_DIR/receipts)",
    )
    parser.add_argument(
        "--printer", default=None, metavar="DEVICE", help="the receipt printer's device, e.g. /dev/usb/lp0"
    )
    return parser


def _size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise UsageError(f"--size {text!r} is not WIDTHxHEIGHT", "", PROG)
    w, h = int(width), int(height)
    if not (240 <= w <= 1080 and w < h <= 1920):
        raise UsageError(f"--size {text!r}: a portrait screen 240-1080 pixels wide", "", PROG)
    return w, h


def options_from(argv: Sequence[str]) -> TerminalOptions | int:
    """The options of a command line (an int: the exit code of --help). Raises UsageError, ConfigError."""
    parsed = parse_command_line(build_parser(), argv)
    if isinstance(parsed, int):
        return parsed
    address = host_address(parsed, PROG)
    settings = load_kiosk_settings(parsed.config)
    if parsed.size:
        width, height = _size(parsed.size)
        settings = replace(settings, width=width, height=height)
    if parsed.lang:
        settings = replace(settings, language=parsed.lang)
    if parsed.no_touch_keypad:
        settings = replace(settings, touch_keypad=False)
    if parsed.printer is not None:
        settings = replace(settings, printer_device=parsed.printer or None)
    if parsed.shots and not parsed.script:
        raise UsageError("--shots goes with --script", "", PROG)
    data_dir = parsed.data_dir or Path(os.environ.get("POS_DATA_DIR") or DEFAULT_DATA_DIR)
    receipts = parsed.receipts or data_dir / "receipts"
    return TerminalOptions(
        data_dir, address, settings, parsed.headless, parsed.script, parsed.shots, parsed.card, receipts
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Callable[[TerminalOptions], None],
    stderr: TextIO | None = None,
) -> int:
    """Parse, then `run(options)` (the composition root's kiosk); failures as one line on stderr."""
    err = stderr or sys.stderr
    try:
        options = options_from(sys.argv[1:] if argv is None else list(argv))
    except UsageError as exc:
        return fail(err, PROG, EXIT_USAGE, str(exc))
    except ConfigError as exc:
        return fail(err, PROG, EXIT_SETUP, str(exc))
    if isinstance(options, int):
        return options
    if options.script is not None and not options.script.is_file():
        return fail(err, PROG, EXIT_USAGE, f"--script {options.script}: no such file")
    try:
        run(options)
    except (ConfigError, KeyStoreError) as exc:
        return fail(err, PROG, EXIT_SETUP, str(exc))
    except PosError as exc:
        from firmware.app import ScriptError  # the kiosk is loaded by now: run() imported it

        if isinstance(exc, ScriptError):
            return fail(err, PROG, EXIT_SCRIPT, f"{options.script}: {exc}")
        return fail(err, PROG, EXIT_SETUP, f"the terminal does not start: {exc}")
    return 0
