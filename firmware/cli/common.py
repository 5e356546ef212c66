"""What the command-line front ends share: exit codes, usage errors, one-line failures, JSON, amounts.

`Parser` is an `argparse.ArgumentParser` whose errors raise `UsageError`
instead of exiting, so each tool prints its usage error as one line of its
own shape and returns its own exit code (see `firmware.cli`). `parse_command_line`
turns `--help` into a return value too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import NoReturn, TextIO

from firmware.errors import ConfigError, TransactionInputError
from firmware.host.channel import HostAddress

__all__ = [
    "EXIT_CARD_ERROR",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_KEYS_USAGE",
    "EXIT_NO_APPLICATION",
    "EXIT_NO_CARD",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "UsageError",
    "add_host_arguments",
    "fail",
    "host_address",
    "parse_amount",
    "parse_command_line",
    "write_json",
]

EXIT_OK = 0
EXIT_FAILED = 1  # pos-keys: the operation was refused (any firmware error)
EXIT_NO_CARD = 2  # pos-emv: no reader, no card, card removed
EXIT_NO_APPLICATION = 3  # pos-emv: no application both card and terminal support
EXIT_CARD_ERROR = 4  # pos-emv: the card answered something the terminal must refuse; txn terminated
EXIT_CONFIG = 5  # pos-emv: terminal configuration missing or wrong
EXIT_USAGE = 64  # pos-emv: bad command line (sysexits EX_USAGE)
EXIT_KEYS_USAGE = 2  # pos-keys: bad command line (argparse's own status, kept)


class UsageError(Exception):
    """A bad command line: argparse's `message`, and the `usage` line of the parser that refused it."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subparsers) that raises UsageError instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.format_usage(), self.prog)


def parse_command_line(parser: Parser, argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when argparse finished the run itself (`--help`).

    Raises UsageError.
    """
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:  # --help has been printed
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def fail(stderr: TextIO, prog: str, code: int, message: str) -> int:
    """Write the one line `PROG: message` on stderr and return `code`."""
    stderr.write(f"{prog}: {message}\n")
    return code


def write_json(stdout: TextIO, document: object) -> None:
    """One JSON object, indented, non-ASCII kept (labels, names), and a newline."""
    stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def parse_amount(text: str, exponent: int) -> int:
    """'12.34' in major units to minor units; more decimals than the currency has is an error.

    Raises TransactionInputError.
    """
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise TransactionInputError(f"'{text}' is not an amount") from exc
    minor = value.scaleb(exponent)
    if not value.is_finite() or value < 0 or minor != minor.to_integral_value():
        raise TransactionInputError(f"'{text}' is not an amount with at most {exponent} decimals")
    if minor >= 10**12:
        raise TransactionInputError(f"'{text}' does not fit the 12 digits of an EMV amount")
    return int(minor)


def add_host_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """`--host`, `--plain` and `--tls-ca`: the acquirer is reached over TLS unless --plain says otherwise."""
    parser.add_argument("--host", default=default, metavar="HOST:PORT", help="the acquirer host")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="plain TCP instead of TLS: only to a host on this machine (a simulated one on 127.0.0.1)",
    )
    parser.add_argument(
        "--tls-ca", default=None, metavar="PEM", help="the CA that signs the host's certificate"
    )


def host_address(args: argparse.Namespace, prog: str) -> HostAddress:
    """The HostAddress of `--host`, `--plain`, `--tls-ca`; UsageError if they do not make one."""
    host, sep, port = args.host.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--host {args.host!r} is not HOST:PORT", "", prog)
    try:
        return HostAddress(host.strip("[]"), int(port), plain=args.plain, tls_ca=args.tls_ca)
    except ConfigError as exc:
        raise UsageError(str(exc), "", prog) from None
