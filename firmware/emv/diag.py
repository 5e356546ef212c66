"""`pos-emv`: the technician's card tool.

    pos-emv read [--reader pcsc[:NAME] | sim:PROFILE] [--config PATH] [--aid HEX]

prints ONE JSON object: reader, ATR, the selected application, masked PAN,
expiry, AIP, AFL, the records as tag dictionaries (PAN and track data
masked) and the APDU trace with response times. Failures print one line on
stderr and exit non-zero (see EXIT_*), never a traceback.

More subcommands plug in with `register_subcommand(Subcommand(...))` (the
EMV kernel adds `txn`); `add_reader_argument` and `run_with_card` give them
the same reader option and error handling as `read`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, TextIO

from firmware.clocks import MonotonicClock
from firmware.emv.application import ApplicationData, read_application
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.mask import display_tags
from firmware.emv.reader import CardReader
from firmware.emv.selection import Candidate, Chooser
from firmware.emv.terminal_config import TerminalConfig, load_terminal_config
from firmware.emv.transport import Transport
from firmware.errors import (
    ConfigError,
    NoCardError,
    NoReaderError,
    PosError,
    ReaderError,
    SelectionError,
)

__all__ = [
    "EXIT_CARD_ERROR",
    "EXIT_CONFIG",
    "EXIT_NO_APPLICATION",
    "EXIT_NO_CARD",
    "EXIT_OK",
    "EXIT_USAGE",
    "Environment",
    "OpenReader",
    "Subcommand",
    "add_reader_argument",
    "aid_argument",
    "expiry_text",
    "main",
    "read_report",
    "register_subcommand",
    "run_with_card",
    "technician_chooser",
    "transaction_data_for_read",
]

EXIT_OK = 0
EXIT_NO_CARD = 2  # no reader, no card, card removed
EXIT_NO_APPLICATION = 3  # no application both card and terminal support
EXIT_CARD_ERROR = 4  # the card answered something the terminal must refuse
EXIT_CONFIG = 5  # terminal configuration missing or wrong
EXIT_USAGE = 64

CARD_POLL_INTERVAL_S = 0.1

OpenReader = Callable[[str], CardReader]


@dataclass(frozen=True)
class Environment:
    """What a subcommand gets besides its arguments: the outside world, injected."""

    open_reader: OpenReader
    clock: MonotonicClock
    now: Callable[[], datetime]
    random_bytes: Callable[[int], bytes]
    stdout: TextIO
    stderr: TextIO


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Environment], int]


_SUBCOMMANDS: dict[str, Subcommand] = {}


def register_subcommand(subcommand: Subcommand) -> None:
    """Add (or replace) a `pos-emv` subcommand."""
    _SUBCOMMANDS[subcommand.name] = subcommand


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.format_usage()}{self.prog}: {message}")


def _reader_spec(text: str) -> str:
    if text == "pcsc" or (text.startswith("pcsc:") and len(text) > 5):
        return text
    if text.startswith("sim:") and len(text) > 4:
        return text
    raise argparse.ArgumentTypeError(f"'{text}' is not pcsc, pcsc:NAME or sim:PROFILE")


def add_reader_argument(parser: argparse.ArgumentParser) -> None:
    """`--reader` and `--config`, as every card subcommand takes them."""
    parser.add_argument(
        "--reader",
        type=_reader_spec,
        default="pcsc",
        metavar="SPEC",
        help="pcsc (first reader with a card), pcsc:NAME, or sim:PROFILE (default: pcsc)",
    )
    parser.add_argument("--config", default=None, metavar="PATH", help="terminal configuration JSON")
    parser.add_argument(
        "--wait",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long to wait for a card to be presented (default: 2)",
    )


def _open_when_card_present(env: Environment, spec: str, wait: float) -> CardReader:
    """Open the reader, giving a card just being inserted `wait` seconds to show up."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return env.open_reader(spec)
        except NoCardError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(CARD_POLL_INTERVAL_S)


def _fail(env: Environment, code: int, message: str) -> int:
    env.stderr.write(f"pos-emv: {message}\n")
    return code


def run_with_card(
    args: argparse.Namespace,
    env: Environment,
    body: Callable[[Transport, TerminalConfig], int],
) -> int:
    """Load the configuration, open the reader, power the card, run `body`, power off.

    Every firmware error becomes one line on stderr and an EXIT_* code.
    """
    try:
        config = load_terminal_config(args.config)
    except ConfigError as exc:
        return _fail(env, EXIT_CONFIG, str(exc))
    try:
        reader = _open_when_card_present(env, args.reader, args.wait)
    except PosError as exc:
        return _fail(env, EXIT_NO_CARD, str(exc))
    except Exception as exc:  # the injected opener (sim profiles...) is outside the firmware hierarchy
        return _fail(env, EXIT_NO_CARD, f"cannot open reader '{args.reader}': {exc}")
    transport = Transport(reader, clock=env.clock)
    try:
        with transport.session():
            return body(transport, config)
    except (NoReaderError, NoCardError) as exc:
        return _fail(env, EXIT_NO_CARD, str(exc))
    except ReaderError as exc:
        return _fail(env, EXIT_NO_CARD, str(exc))
    except SelectionError as exc:
        return _fail(env, EXIT_NO_APPLICATION, f"no supported application: {exc}")
    except ConfigError as exc:
        return _fail(env, EXIT_CONFIG, str(exc))
    except PosError as exc:
        return _fail(env, EXIT_CARD_ERROR, str(exc))


# --- read --------------------------------------------------------------------


def transaction_data_for_read(now: datetime, random_bytes: Callable[[int], bytes]) -> dict[int, bytes]:
    """PDOL data for a read without a sale: zero amounts, goods and services, today."""
    return {
        0x9F02: bytes(6),
        0x9F03: bytes(6),
        0x9C: b"\x00",
        0x9A: bytes.fromhex(now.strftime("%y%m%d")),
        0x9F21: bytes.fromhex(now.strftime("%H%M%S")),
        0x9F37: random_bytes(4),
    }


def expiry_text(value: bytes | None) -> str | None:
    """'5F24' (YYMMDD) as YYYY-MM; years 50-99 are 19xx (Book 4 Annex A)."""
    if value is None or len(value) != 3 or not value.hex().isdigit():
        return None
    digits = value.hex()
    year = int(digits[:2])
    return f"{1900 + year if year >= 50 else 2000 + year}-{digits[2:4]}"


def read_report(transport: Transport, data: ApplicationData) -> dict[str, object]:
    """The `read` JSON object; every card value in it is masked where sensitive."""
    fci = data.selected.fci
    records: list[dict[str, object]] = [
        {
            "sfi": record.sfi,
            "record": record.number,
            "oda": record.for_oda,
            "tags": display_tags(record.tags) if record.tags else {},
            **({} if record.tags else {"length": len(record.data)}),
        }
        for record in data.records.records
    ]
    application: Mapping[str, object] = {
        "aid": data.selected.aid.hex().upper(),
        "label": data.selected.label,
        "preferred_name": fci.preferred_name,
        "priority": f"{fci.priority:02X}" if fci.priority is not None else None,
        "language": fci.language_preference,
        "pdol": fci.pdol.hex().upper() if fci.pdol is not None else None,
    }
    return {
        "reader": transport.reader_name,
        "atr": (transport.atr or b"").hex().upper(),
        "selection": {
            "method": data.selection_method,
            "candidates": [
                {"aid": candidate.aid.hex().upper(), "label": candidate.display_name}
                for candidate in data.candidates
            ],
            "notes": list(data.selection_notes),
        },
        "application": dict(application),
        "pan": data.masked_pan,
        "expiry": expiry_text(data.records.tags.get(0x5F24)),
        "aip": data.options.aip.hex().upper(),
        "afl": data.options.afl.hex().upper(),
        "gpo_format": f"{data.options.response_format:02X}",
        "missing_mandatory": [f"{tag:X}" for tag in data.records.missing_mandatory],
        "oda_record_invalid": data.records.oda_record_invalid,
        "records": records,
        "trace": transport.display_trace(),
    }


def aid_argument(text: str) -> bytes:
    """An AID on the command line: hex, 5 to 16 bytes (RID + PIX, ISO/IEC 7816-4)."""
    try:
        aid = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not hex") from None
    if not 5 <= len(aid) <= 16:
        raise argparse.ArgumentTypeError(f"an AID is 5 to 16 bytes, '{text}' is {len(aid)}")
    return aid


def technician_chooser(aid: bytes | None) -> Chooser:
    """The technician stands in for the cardholder: the application `aid` names
    (an AID or its beginning), or without one the first offered (highest priority)."""

    def choose(candidates: Sequence[Candidate]) -> Candidate | None:
        if aid is None:
            return candidates[0]
        return next((candidate for candidate in candidates if candidate.aid.startswith(aid)), None)

    return choose


def _configure_read(parser: argparse.ArgumentParser) -> None:
    add_reader_argument(parser)
    parser.add_argument(
        "--aid",
        type=aid_argument,
        default=None,
        metavar="HEX",
        help="the application to read when the card offers several (default: highest priority)",
    )


def _run_read(args: argparse.Namespace, env: Environment) -> int:
    def body(transport: Transport, config: TerminalConfig) -> int:
        data = read_application(
            transport,
            config,
            transaction_data={
                **load_kernel_config().terminal_data(),
                **transaction_data_for_read(env.now(), env.random_bytes),
            },
            choose=technician_chooser(args.aid),
        )
        if args.aid is not None and not data.selected.aid.startswith(args.aid):
            # A single candidate is selected without asking (Book 1 12.4): check it is the one named.
            raise SelectionError(f"the card offers no application {args.aid.hex().upper()}")
        env.stdout.write(json.dumps(read_report(transport, data), ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK

    return run_with_card(args, env, body)


register_subcommand(
    Subcommand("read", "read the card's application data and print it as JSON", _configure_read, _run_read)
)


# --- entry point -------------------------------------------------------------


def _build_parser() -> _Parser:
    parser = _Parser(prog="pos-emv", description="EMV card diagnostics for technicians")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for subcommand in _SUBCOMMANDS.values():
        sub = subparsers.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help)
        subcommand.configure(sub)
        sub.set_defaults(_run=subcommand.run)
    return parser


def main(
    argv: Sequence[str] | None = None,
    open_reader: OpenReader | None = None,
    *,
    clock: MonotonicClock = time.perf_counter,
    now: Callable[[], datetime] = datetime.now,
    random_bytes: Callable[[int], bytes] = os.urandom,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `pos-emv`; returns the exit code. `open_reader` maps a --reader SPEC to a reader."""
    err = stderr if stderr is not None else sys.stderr
    out = stdout if stdout is not None else sys.stdout
    if open_reader is None:
        err.write("pos-emv: no reader opener given\n")
        return EXIT_USAGE
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    env = Environment(open_reader, clock, now, random_bytes, out, err)
    run: Callable[[argparse.Namespace, Environment], int] = args._run
    return run(args, env)
