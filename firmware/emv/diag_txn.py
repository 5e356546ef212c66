"""`pos-emv txn`: run one whole EMV transaction and print its result as JSON (masked).

    pos-emv txn --amount 12.34 [--type sale|refund] [--reader SPEC] [--pin 1234|bypass]
                [--online sim|none] [--aid HEX] [--kernel-config PATH] [--capk PATH] [--sequence N]

Without `--pin` the terminal has no PIN pad; `--pin bypass` is a PIN pad
where the cardholder presses Enter without a PIN. An online PIN is
encrypted (ISO 9564 format 0) under a one-time random key that never leaves
the process: this is a diagnostic, the real PIK stays in the key store.
`--online sim` needs the composition root's online factory (the simulated
issuer); `none` means the terminal cannot go online. When the card offers
several applications the technician confirms for the cardholder: `--aid`,
else the highest priority.

Exit codes: 0 when the transaction completed (approved or declined), 4 when
it was terminated (the JSON object is printed either way); 2 no card or
reader, 5 configuration, 64 usage (an amount with too many decimals).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from firmware.emv.application_list import ApplicationList
from firmware.emv.capk import load_capk_store
from firmware.emv.cvm import PinKind
from firmware.emv.diag import (
    EXIT_CARD_ERROR,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    Environment,
    Subcommand,
    add_reader_argument,
    aid_argument,
    register_subcommand,
    run_with_card,
    technician_chooser,
)
from firmware.emv.kernel import KernelServices, process_transaction
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.online import OnlineHandler
from firmware.emv.result import Outcome
from firmware.emv.transaction import TransactionInput, TransactionType
from firmware.emv.transport import Transport
from firmware.errors import ConfigError, TransactionInputError
from firmware.keys.pinblock import encrypt_pin_block

__all__ = ["OnlineFactory", "parse_amount", "register_txn", "txn_subcommand"]

OnlineFactory = Callable[[str], "OnlineHandler | None"]

_TYPES = {"sale": TransactionType.PURCHASE, "refund": TransactionType.REFUND}


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


def _configure(parser: argparse.ArgumentParser) -> None:
    add_reader_argument(parser)
    parser.add_argument("--amount", required=True, help="amount in major units, e.g. 12.34")
    parser.add_argument("--amount-other", default="0", help="cashback amount (default 0)")
    parser.add_argument("--type", choices=sorted(_TYPES), default="sale")
    parser.add_argument("--pin", default=None, help="the PIN the cardholder enters, or 'bypass'")
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


def _pin_entry(pin: str | None) -> Callable[[PinKind, int | None], str | None] | None:
    if pin is None:
        return None

    def enter(kind: PinKind, tries_left: int | None) -> str | None:
        return None if pin == "bypass" else pin

    return enter


def txn_subcommand(online_factory: OnlineFactory | None = None) -> Subcommand:
    """The `txn` subcommand; `online_factory('sim')` gives the host callback (from the composition root)."""

    def run(args: argparse.Namespace, env: Environment) -> int:
        try:
            config = load_kernel_config(None if args.kernel_config is None else Path(args.kernel_config))
            capks = load_capk_store(args.capk)
        except ConfigError as exc:
            env.stderr.write(f"pos-emv: {exc}\n")
            return EXIT_CONFIG
        try:
            amount = parse_amount(args.amount, config.currency_exponent)
            amount_other = parse_amount(args.amount_other, config.currency_exponent)
        except TransactionInputError as exc:
            env.stderr.write(f"pos-emv: {exc}\n")
            return EXIT_USAGE
        online: OnlineHandler | None = None
        if args.online != "none":
            if online_factory is None:
                env.stderr.write("pos-emv: no online factory: run through the pos-emv entry point\n")
                return EXIT_CONFIG
            online = online_factory(args.online)
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
                pin_entry=_pin_entry(args.pin),
                online_pin_block=online_pin_block,
                online=online,
                choose=technician_chooser(args.aid),
            )
            result = process_transaction(transport, txn, services)
            env.stdout.write(result.to_json() + "\n")
            return EXIT_CARD_ERROR if result.outcome is Outcome.TERMINATED else EXIT_OK

        return run_with_card(args, env, body)

    return Subcommand("txn", "run one EMV transaction and print the result as JSON", _configure, run)


def register_txn(online_factory: OnlineFactory | None = None) -> None:
    """Add `txn` to `pos-emv` (the composition root passes the online factory)."""
    register_subcommand(txn_subcommand(online_factory))
