"""`pos-emv`: the technician's card tool.

    pos-emv read [--reader pcsc[:NAME] | sim:PROFILE] [--config PATH] [--wait SECONDS] [--aid HEX]
    pos-emv txn --amount 12.34 [--type sale|refund] [--reader SPEC] [--pin-stdin | --pin-fd N]
                [--online sim|none] [--aid HEX] [--kernel-config PATH] [--capk PATH] [--sequence N]
    pos-emv txn ... --reader sim:PROFILE --pin 1234|bypass

`read` prints ONE JSON object: reader, ATR, the selected application, masked
PAN, expiry, AIP, AFL, the records as tag dictionaries (PAN and track data
masked) and the APDU trace with response times (`firmware.emv.report`).

`txn` runs one whole EMV transaction and prints its result as JSON (masked).
The PIN is never taken from the command line of a real card (every local
user sees a command line, in ps or /proc): `--pin-stdin` reads it when the
card asks for it, typed without echo at the keypad (the console) or as one
line of standard input; `--pin-fd N` reads one line from file descriptor N.
`--pin` is for simulated cards (`sim:PROFILE`) only. Without any of them
the terminal has no PIN pad; the PIN `bypass` is a PIN pad where the
cardholder presses Enter without a PIN. An online PIN is
encrypted (ISO 9564 format 0) under a one-time random key that never leaves
the process: this is a diagnostic, the real PIK stays in the key store.
`--online sim` needs the online factory of the composition root (the
simulated issuer); `none` means the terminal cannot go online. When the
card offers several applications the technician confirms for the
cardholder: `--aid`, else the highest priority.

The subcommands are the static list `SUBCOMMANDS`; `main` receives the
reader opener and the online factory from `firmware/__main__.py`.
Failures print one line on stderr and exit non-zero (codes in
`firmware.cli.common`), never a traceback: 2 no reader or card, 3 no
supported application, 4 a card error (`txn`: the transaction was
terminated; its JSON object is printed all the same), 5 configuration,
64 usage (a bad option or an amount with too many decimals). A completed
`txn`, approved or declined, exits 0.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from firmware.cli.common import (
    EXIT_CARD_ERROR,
    EXIT_CONFIG,
    EXIT_NO_APPLICATION,
    EXIT_NO_CARD,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    fail,
    parse_amount,
    parse_command_line,
    write_json,
)
from firmware.clocks import MonotonicClock
from firmware.emv.application_list import ApplicationList, load_application_list
from firmware.emv.capk import load_capk_store
from firmware.emv.cvm import PinKind
from firmware.emv.kernel import KernelServices, process_transaction
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.online import OnlineHandler
from firmware.emv.reader import CardReader
from firmware.emv.report import read_for_technician, read_report, technician_chooser
from firmware.emv.result import Outcome
from firmware.emv.transaction import TransactionInput, TransactionType
from firmware.emv.transport import Transport
from firmware.errors import (
    ConfigError,
    NoCardError,
    NoReaderError,
    PosError,
    ReaderError,
    SelectionError,
    TransactionInputError,
)
from firmware.keys.pinblock import encrypt_pin_block

__all__ = [
    "PROG",
    "SUBCOMMANDS",
    "Environment",
    "OnlineFactory",
    "OpenReader",
    "Subcommand",
    "add_reader_argument",
    "aid_argument",
    "build_parser",
    "main",
    "run_with_card",
]

PROG = "pos-emv"
CARD_POLL_INTERVAL_S = 0.1

OpenReader = Callable[[str], CardReader]
OnlineFactory = Callable[[str], "OnlineHandler | None"]


@dataclass(frozen=True)
class Environment:
    """What a subcommand gets besides its arguments: the outside world, injected.

    `open_reader` maps a --reader SPEC to a reader; `online_factory` maps an
    --online SPEC other than `none` to the kernel's host callback (None: the
    tool was not given one).
    """

    open_reader: OpenReader
    online_factory: OnlineFactory | None
    clock: MonotonicClock
    now: Callable[[], datetime]
    random_bytes: Callable[[int], bytes]
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO = sys.stdin


@dataclass(frozen=True)
class Subcommand:
    """One `pos-emv` subcommand: its options (`configure`) and what it does (`run`, returns the exit code)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Environment], int]


# --- what every card subcommand shares ---------------------------------------


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
    parser.add_argument("--config", default=None, metavar="PATH", help="application list JSON")
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
    return fail(env.stderr, PROG, code, message)


def run_with_card(
    args: argparse.Namespace,
    env: Environment,
    body: Callable[[Transport, ApplicationList], int],
) -> int:
    """Load the configuration, open the reader, power the card, run `body`, power off.

    Every firmware error becomes one line on stderr and an EXIT_* code.
    """
    try:
        config = load_application_list(args.config)
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


def aid_argument(text: str) -> bytes:
    """An AID on the command line: hex, 5 to 16 bytes (RID + PIX, ISO/IEC 7816-4)."""
    try:
        aid = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not hex") from None
    if not 5 <= len(aid) <= 16:
        raise argparse.ArgumentTypeError(f"an AID is 5 to 16 bytes, '{text}' is {len(aid)}")
    return aid


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
    def body(transport: Transport, config: ApplicationList) -> int:
        data = read_for_technician(
            transport,
            config,
            load_kernel_config().terminal_data(),
            now=env.now(),
            random_bytes=env.random_bytes,
            aid=args.aid,
        )
        write_json(env.stdout, read_report(transport, data))
        return EXIT_OK

    return run_with_card(args, env, body)


# --- txn ---------------------------------------------------------------------

_TYPES = {"sale": TransactionType.PURCHASE, "refund": TransactionType.REFUND}


def _configure_txn(parser: argparse.ArgumentParser) -> None:
    add_reader_argument(parser)
    parser.add_argument("--amount", required=True, help="amount in major units, e.g. 12.34")
    parser.add_argument("--amount-other", default="0", help="cashback amount (default 0)")
    parser.add_argument("--type", choices=sorted(_TYPES), default="sale")
    pin = parser.add_mutually_exclusive_group()
    pin.add_argument(
        "--pin", default=None, help="simulated cards only: the PIN the cardholder enters, or 'bypass'"
    )
    pin.add_argument(
        "--pin-stdin",
        action="store_true",
        help="read the PIN (or 'bypass') when the card asks: keypad without echo, else standard input",
    )
    pin.add_argument(
        "--pin-fd", type=int, default=None, metavar="N", help="read the PIN from file descriptor N"
    )
    parser.add_argument("--online", choices=("sim", "none"), default="none")
    parser.add_argument("--kernel-config", default=None, metavar="PATH")
    parser.add_argument("--capk", default=None, metavar="PATH")
    parser.add_argument("--sequence", type=int, default=1, help="transaction sequence counter 9F41")
    parser.add_argument(
        "--aid",
        type=aid_argument,
        default=None,
        metavar="HEX",
        help="the application to use when the card offers several (default: highest priority)",
    )


MAX_PIN_LINE = 64


def _read_pin_line(args: argparse.Namespace, env: Environment) -> str:
    """One line holding the PIN, from the keypad (a terminal: no echo), standard input or a descriptor."""
    if args.pin_fd is not None:
        raw = b""
        while len(raw) <= MAX_PIN_LINE and not raw.endswith(b"\n"):
            try:
                chunk = os.read(args.pin_fd, 1)
            except OSError as exc:
                raise TransactionInputError(
                    f"cannot read the PIN from descriptor {args.pin_fd}: {exc.strerror}"
                ) from None
            if not chunk:
                break
            raw += chunk
        line = raw.decode("ascii", errors="replace")
    elif env.stdin.isatty():
        line = getpass.getpass("PIN: ")
    else:
        line = env.stdin.readline(MAX_PIN_LINE + 1)
    if len(line) > MAX_PIN_LINE:
        raise TransactionInputError(f"the PIN line is longer than {MAX_PIN_LINE} characters")
    return line.strip()


def _pin_entry(
    args: argparse.Namespace, env: Environment
) -> Callable[[PinKind, int | None], str | None] | None:
    """The cardholder's PIN pad: `--pin` (simulated cards), `--pin-stdin`, `--pin-fd`, or none."""
    if args.pin is None and not args.pin_stdin and args.pin_fd is None:
        return None

    def enter(kind: PinKind, tries_left: int | None) -> str | None:
        # read each time the card asks, as a keypad would (a wrong PIN is not sent again by itself)
        pin = args.pin if args.pin is not None else _read_pin_line(args, env)
        return None if pin in ("bypass", "") else pin

    return enter


def _run_txn(args: argparse.Namespace, env: Environment) -> int:
    if args.pin is not None and not args.reader.startswith("sim:"):
        # a command line is visible to every local user (ps, /proc): a real card's PIN is read, not given
        return _fail(
            env, EXIT_USAGE, "--pin is for simulated cards (sim:PROFILE) only: use --pin-stdin or --pin-fd"
        )
    try:
        config = load_kernel_config(None if args.kernel_config is None else Path(args.kernel_config))
        capks = load_capk_store(args.capk)
    except ConfigError as exc:
        return _fail(env, EXIT_CONFIG, str(exc))
    try:
        amount = parse_amount(args.amount, config.currency_exponent)
        amount_other = parse_amount(args.amount_other, config.currency_exponent)
    except TransactionInputError as exc:
        return _fail(env, EXIT_USAGE, str(exc))
    online: OnlineHandler | None = None
    if args.online != "none":
        if env.online_factory is None:
            return _fail(env, EXIT_CONFIG, "no online factory: run through the pos-emv entry point")
        online = env.online_factory(args.online)
    one_time_pik = env.random_bytes(16)

    def online_pin_block(pin: str, pan: str) -> bytes:
        return encrypt_pin_block(one_time_pik, pin, pan, 0, env.random_bytes)

    selection_draw = env.random_bytes(3)
    txn = TransactionInput(
        amount=amount,
        amount_other=amount_other,
        now=env.now(),
        unpredictable_number=env.random_bytes(4),
        random_selection_number=int.from_bytes(selection_draw, "big") % 99 + 1,
        sequence_counter=args.sequence,
        transaction_type=_TYPES[args.type],
    )

    def body(transport: Transport, terminal: ApplicationList) -> int:
        services = KernelServices(
            terminal=terminal,
            config=config,
            capks=capks,
            random_bytes=env.random_bytes,
            pin_entry=_pin_entry(args, env),
            online_pin_block=online_pin_block,
            online=online,
            choose=technician_chooser(args.aid),
        )
        result = process_transaction(transport, txn, services)
        env.stdout.write(result.to_json() + "\n")
        return EXIT_CARD_ERROR if result.outcome is Outcome.TERMINATED else EXIT_OK

    return run_with_card(args, env, body)


# --- entry point -------------------------------------------------------------

SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("read", "read the card's application data and print it as JSON", _configure_read, _run_read),
    Subcommand("txn", "run one EMV transaction and print the result as JSON", _configure_txn, _run_txn),
)


def build_parser() -> Parser:
    """The `pos-emv` command line: one parser per entry of `SUBCOMMANDS`."""
    parser = Parser(prog=PROG, description="EMV card diagnostics for technicians")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for subcommand in SUBCOMMANDS:
        sub = subparsers.add_parser(subcommand.name, help=subcommand.help, description=subcommand.help)
        subcommand.configure(sub)
        sub.set_defaults(_run=subcommand.run)
    return parser


def main(
    argv: Sequence[str] | None = None,
    open_reader: OpenReader | None = None,
    *,
    online_factory: OnlineFactory | None = None,
    clock: MonotonicClock = time.perf_counter,
    now: Callable[[], datetime] = datetime.now,
    random_bytes: Callable[[int], bytes] = os.urandom,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run `pos-emv`; returns the exit code.

    `open_reader` maps a --reader SPEC to a reader and `online_factory` an
    --online SPEC to the host callback; both come from the composition root.
    """
    err = stderr if stderr is not None else sys.stderr
    out = stdout if stdout is not None else sys.stdout
    if open_reader is None:
        return fail(err, PROG, EXIT_USAGE, "no reader opener given")
    try:
        args = parse_command_line(build_parser(), sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        err.write(f"{exc.usage}{exc.prog}: {exc.message}\n")
        return EXIT_USAGE
    if isinstance(args, int):
        return args
    env = Environment(open_reader, online_factory, clock, now, random_bytes, out, err, stdin or sys.stdin)
    run: Callable[[argparse.Namespace, Environment], int] = args._run
    return run(args, env)
