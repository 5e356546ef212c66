"""`pos-txn`: the terminal's business operations from the command line, over the same service as the kiosk.

    pos-txn [--data-dir D] [--host HOST:PORT] [--plain | --tls-ca PEM] COMMAND ...

    sign-on
    sale     --amount A [--order NO] --reader SPEC [--pin PIN]
    preauth  --amount A [--order NO] --reader SPEC [--pin PIN]
    void     ORIGINAL EVIDENCE                                  cancel an order (撤销)
    refund   ORIGINAL --amount A --to card|cash EVIDENCE        refund (退货)
    adjust   ORIGINAL --original A --new B EVIDENCE             adjust the amount (调整金额)
    complete ORIGINAL --amount A EVIDENCE                       complete a pre-authorisation
    settle | drain | queue | journal [--cash-refunds]
    orders   [--order NO] [--trace N] [--rrn R] [--date YYYY-MM-DD] [--amount A] [--last4 NNNN]

ORIGINAL is `--order NO`, `--trace N` or `--rrn R`; EVIDENCE is `--name`,
`--contact`, `--reason`, `--original-time "YYYY-MM-DD HH:MM"` (which ones are
required is in the terms). Where the terms want the supervisor, the
supervisor's password is read from standard input with `--supervisor-stdin`.

The host is reached over TLS (its certificate checked against the system's
CAs or --tls-ca); --plain asks for plain TCP, to a host on this machine only
(the simulated one on 127.0.0.1).

Each command prints one JSON document and exits 0 when it did what was asked
(a sale approved, a request approved by the host, `drain` with nothing left
waiting); otherwise one line on stderr and a non-zero code:
1 refused or declined, 2 the host could not be reached or did not answer
(whatever may have moved is reversed or retried), 5 configuration or
terminal not provisioned, 64 bad command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from firmware.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    add_host_arguments,
    fail,
    host_address,
    parse_command_line,
    write_json,
)
from firmware.emv.cvm import PinKind
from firmware.emv.reader import CardReader
from firmware.emv.result import Outcome
from firmware.errors import (
    AmountError,
    ConfigError,
    EvidenceError,
    HostError,
    KeyStoreError,
    PosError,
    RuleViolation,
)
from firmware.host.channel import HostAddress, HostLink
from firmware.keys.layout import KeyLayout, open_password_store
from firmware.txn.model import Evidence, RefundMethod, ReverseOperation, TxnStatus, TxnType
from firmware.txn.money import parse_amount
from firmware.txn.reverse import OriginalRef, ReverseResult
from firmware.txn.service import TerminalService, cash_refund_view, entry_view, open_terminal

__all__ = ["EXIT_DECLINED", "EXIT_HOST", "EXIT_SETUP", "PROG", "build_parser", "main"]

PROG = "pos-txn"
EXIT_DECLINED = 1
EXIT_HOST = 2
EXIT_SETUP = 5
DEFAULT_DATA_DIR = "var/data"
DEFAULT_HOST = "127.0.0.1:5000"
MAX_PASSWORD_LINE = 257

OpenReader = Callable[[str], CardReader]
OpenLink = Callable[[HostAddress], HostLink]


@dataclass(frozen=True)
class Environment:
    open_reader: OpenReader
    open_link: OpenLink
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    monotonic: Callable[[], float]


def _original_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order", default=None, help="the original's order number")
    parser.add_argument("--trace", type=int, default=None, help="the original's trace number (field 11)")
    parser.add_argument("--rrn", default=None, help="the original's retrieval reference number")
    parser.add_argument("--name", default="", help="the applicant's name")
    parser.add_argument("--contact", default="", help="the applicant's phone or e-mail")
    parser.add_argument("--reason", default="", help="why the customer asks")
    parser.add_argument(
        "--original-time",
        default=None,
        metavar="'YYYY-MM-DD HH:MM'",
        help="the original's date and time, as the customer gives it",
    )
    parser.add_argument(
        "--supervisor-stdin", action="store_true", help="read the supervisor's password from standard input"
    )


def _card_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--amount", required=True, help="the amount, e.g. 12.34")
    parser.add_argument("--order", default=None, help="the merchant's order number (generated if absent)")
    parser.add_argument("--reader", required=True, metavar="SPEC", help="pcsc, pcsc:NAME or sim:PROFILE")
    parser.add_argument("--pin", default=None, help="the PIN (simulated cards only), or 'bypass'")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Sales, voids, refunds, adjusts, settlement and the upload queue")
    parser.add_argument(
        "--data-dir", default=None, type=Path, help="the terminal's data directory ($POS_DATA_DIR, var/data)"
    )
    add_host_arguments(parser, DEFAULT_HOST)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("sign-on", help="get fresh working keys (签到)")
    for name, what in (("sale", "a sale with the card (消费)"), ("preauth", "a pre-authorisation (预授权)")):
        _card_arguments(commands.add_parser(name, help=what))
    _original_arguments(commands.add_parser("void", help="cancel an order of the open batch (撤销)"))
    refund = commands.add_parser("refund", help="refund to the card or in cash (退货)")
    _original_arguments(refund)
    refund.add_argument("--amount", required=True)
    refund.add_argument("--to", required=True, choices=[m.value for m in RefundMethod])
    adjust = commands.add_parser("adjust", help="adjust the amount: tip, or complete a pre-authorisation")
    _original_arguments(adjust)
    adjust.add_argument("--original", required=True, help="the original amount, entered again")
    adjust.add_argument("--new", required=True, help="the new amount")
    complete = commands.add_parser("complete", help="complete a pre-authorisation (预授权完成)")
    _original_arguments(complete)
    complete.add_argument("--amount", required=True)
    commands.add_parser("settle", help="settle the open batch (结算)")
    commands.add_parser("drain", help="send everything that waits for the host")
    commands.add_parser("queue", help="what waits for the host, what failed")
    journal = commands.add_parser("journal", help="every financial request the terminal made")
    journal.add_argument("--cash-refunds", action="store_true", help="the cash refunds instead (never sent)")
    orders = commands.add_parser("orders", help="find orders")
    orders.add_argument("--order", default=None)
    orders.add_argument("--trace", type=int, default=None)
    orders.add_argument("--rrn", default=None)
    orders.add_argument("--date", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    orders.add_argument("--amount", default=None)
    orders.add_argument("--last4", default=None)
    return parser


def _evidence(args: argparse.Namespace) -> Evidence:
    original_time = None
    if args.original_time:
        try:
            original_time = datetime.fromisoformat(args.original_time).astimezone()
        except ValueError:
            raise EvidenceError(
                f"--original-time {args.original_time!r} is not a date and time", "original_time"
            ) from None
    return Evidence(
        order=args.order or "",
        original_time=original_time,
        name=args.name,
        contact=args.contact,
        reason=args.reason,
    )


def _reference(args: argparse.Namespace) -> OriginalRef:
    return OriginalRef(order=args.order, trace=args.trace, rrn=args.rrn)


def _supervisor(args: argparse.Namespace, env: Environment) -> Callable[[ReverseOperation], bool] | None:
    if not args.supervisor_stdin:
        return None
    line = env.stdin.readline(MAX_PASSWORD_LINE + 1)
    if len(line) > MAX_PASSWORD_LINE:
        raise UsageError(
            f"the supervisor's password is longer than {MAX_PASSWORD_LINE - 1} characters", "", PROG
        )
    password = line.rstrip("\r\n")
    device_key = os.environ.get("POS_DEVICE_KEY")
    layout = KeyLayout.under(args.data_dir, Path(device_key) if device_key else None)
    store = open_password_store(layout, env.monotonic)

    def approve(operation: ReverseOperation) -> bool:
        return store.verify("supervisor", password).authenticated

    return approve


def _pin(pin: str | None) -> Callable[[PinKind, int | None], str | None] | None:
    if pin is None:
        return None
    return lambda kind, tries_left: None if pin == "bypass" else pin


def _reverse_result(result: ReverseResult, env: Environment) -> int:
    write_json(env.stdout, result.to_dict())
    if result.waiting_for_host:
        return fail(env.stderr, PROG, EXIT_HOST, result.message)
    if result.entry is not None and result.entry.status is not TxnStatus.APPROVED:
        return fail(env.stderr, PROG, EXIT_DECLINED, result.message)
    return EXIT_OK


def _run(args: argparse.Namespace, service: TerminalService, env: Environment) -> int:
    out = env.stdout
    command = args.command
    if command == "sign-on":
        signed = service.sign_on()
        write_json(
            out,
            {
                "response_code": signed.response_code,
                "approved": signed.approved,
                "batch": signed.batch_number,
                "kcvs": dict(signed.kcvs),
            },
        )
        return (
            EXIT_OK
            if signed.approved
            else fail(env.stderr, PROG, EXIT_DECLINED, f"sign-on refused ({signed.response_code})")
        )
    if command in ("sale", "preauth"):
        if args.pin is not None and not args.reader.startswith("sim:"):
            # a command line is visible to every local user (ps, /proc): a real card's PIN is typed on the pad
            raise UsageError("--pin is for simulated cards (sim:PROFILE) only", "", PROG)
        reader = env.open_reader(args.reader)
        kind = TxnType.SALE if command == "sale" else TxnType.PREAUTH
        sale = service.sale(
            reader, parse_amount(args.amount), order=args.order, pin=_pin(args.pin), kind=kind
        )
        write_json(out, sale.to_dict())
        if sale.entry is not None and sale.entry.status is TxnStatus.APPROVED:
            return EXIT_OK
        host = sale.reversal_pending or (sale.entry is not None and sale.entry.response_code is None)
        code = EXIT_HOST if host or sale.outcome is Outcome.TERMINATED else EXIT_DECLINED
        return fail(env.stderr, PROG, code, sale.reason or "not approved")
    if command == "void":
        return _reverse_result(
            service.void(_reference(args), _evidence(args), supervisor=_supervisor(args, env)), env
        )
    if command == "refund":
        result = service.refund(
            _reference(args),
            parse_amount(args.amount),
            RefundMethod(args.to),
            _evidence(args),
            supervisor=_supervisor(args, env),
        )
        return _reverse_result(result, env)
    if command in ("adjust", "complete"):
        if command == "adjust":
            before, after = parse_amount(args.original, "original"), parse_amount(args.new, "new")
        else:
            preauth = service.find(order=args.order, trace=args.trace, rrn=args.rrn)
            preauths = [entry for entry in preauth if entry.type is TxnType.PREAUTH]
            before = preauths[0].amount if preauths else 0
            after = parse_amount(args.amount)
        result = service.adjust(
            _reference(args), before, after, _evidence(args), supervisor=_supervisor(args, env)
        )
        return _reverse_result(result, env)
    if command == "settle":
        write_json(out, service.settle().to_dict())
        return EXIT_OK
    if command == "drain":
        report = service.drain()
        write_json(out, report.to_dict())
        if report.waiting or report.flagged:
            why = report.stopped or f"{report.waiting} waiting, {report.flagged} failed after their tries"
            return fail(env.stderr, PROG, EXIT_HOST, f"not everything went up: {why}")
        return EXIT_OK
    if command == "queue":
        write_json(out, service.queue())
        return EXIT_OK
    if command == "journal":
        if args.cash_refunds:
            write_json(out, [cash_refund_view(refund) for refund in service.cash_refunds()])
        else:
            write_json(out, [entry_view(entry) for entry in service.journal()])
        return EXIT_OK
    assert command == "orders"
    amount = parse_amount(args.amount) if args.amount else None
    found = service.find(
        order=args.order, trace=args.trace, rrn=args.rrn, on=args.date, amount=amount, last4=args.last4
    )
    write_json(out, [entry_view(entry) for entry in found])
    return EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    *,
    open_reader: OpenReader,
    open_link: OpenLink,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    monotonic: Callable[[], float] | None = None,
) -> int:
    import time

    # warnings go to the terminal's log, not to the one line a command answers with
    logging.getLogger("firmware").addHandler(logging.NullHandler())
    logging.getLogger("firmware").propagate = False
    env = Environment(
        open_reader,
        open_link,
        stdin or sys.stdin,
        stdout or sys.stdout,
        stderr or sys.stderr,
        monotonic or time.monotonic,
    )
    try:
        parsed = parse_command_line(build_parser(), sys.argv[1:] if argv is None else argv)
        if isinstance(parsed, int):
            return parsed
        address = host_address(parsed, PROG)
    except UsageError as exc:
        return fail(env.stderr, PROG, EXIT_USAGE, str(exc))
    try:
        if parsed.data_dir is None:
            parsed.data_dir = Path(os.environ.get("POS_DATA_DIR") or DEFAULT_DATA_DIR)
        device_key = os.environ.get("POS_DEVICE_KEY")
        service = open_terminal(
            parsed.data_dir, env.open_link(address), device_key=Path(device_key) if device_key else None
        )
    except (ConfigError, KeyStoreError) as exc:
        return fail(env.stderr, PROG, EXIT_SETUP, str(exc))
    except PosError as exc:
        return fail(env.stderr, PROG, EXIT_SETUP, f"the terminal's books do not open: {exc}")
    try:
        return _run(parsed, service, env)
    except UsageError as exc:
        return fail(env.stderr, PROG, EXIT_USAGE, str(exc))
    except ConfigError as exc:
        return fail(env.stderr, PROG, EXIT_SETUP, str(exc))
    except (RuleViolation, EvidenceError, AmountError) as exc:
        return fail(env.stderr, PROG, EXIT_DECLINED, str(exc))
    except HostError as exc:
        return fail(env.stderr, PROG, EXIT_HOST, str(exc))
    except PosError as exc:
        return fail(env.stderr, PROG, EXIT_DECLINED, str(exc))
    except OSError as exc:
        return fail(env.stderr, PROG, EXIT_DECLINED, f"{type(exc).__name__}: {exc.strerror or exc}")
    finally:
        service.close()
