"""`pos-sim`: the simulated outside world from the command line.

    pos-sim profiles                                  the card profiles, one per line
    pos-sim card --profile NAME --vpcd HOST:PORT      a card in pcscd's virtual reader
    pos-sim host [--port N] [--faults SPEC] [--terminals FILE] [--ledger FILE] [--notices FILE]
                                                      the simulated acquirer host
    pos-sim kit DIR [--terminal-id ID] [--merchant-id ID] [--mac-profile P] [--public-key HEX]
                    [--block-version B|D] [--force]   a TEST terminal's TMK key block, KBPK, host entry

`pos-sim card` reads ``remove`` / ``insert`` / ``quit`` lines on stdin when
stdin is a pipe, a socket or the terminal it runs in the foreground of, and
prints ``ready`` / ``removed``; it stops on ``quit``, end of that input or
SIGTERM. Started with ``&`` (stdin /dev/null or a terminal it does not own),
it serves the card until SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from sim.card import load_profile_card
from sim.errors import SimError
from sim.host import add_host_command
from sim.kit import add_kit_command
from sim.profile import list_profiles
from sim.vpcd import DEFAULT_ADDRESS, parse_address, run

__all__ = ["main"]


class _Terminated(Exception):
    """SIGTERM arrived: leave the serving loop through its `finally`."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _Terminated


def _profiles(args: argparse.Namespace) -> int:
    del args
    entries = list_profiles()
    width = max(len(name) for name, _ in entries)
    for name, description in entries:
        print(f"{name:<{width}}  {description}")
    return 0


def _command_stream(stream: TextIO) -> TextIO | None:
    """The stream to read commands from, or None when it is not one to wait on."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            return stream
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return stream
    except (OSError, ValueError):
        pass  # closed or detached stdin: no commands
    return None


def _card(args: argparse.Namespace) -> int:
    address = parse_address(args.vpcd)
    card = load_profile_card(args.profile)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        commands = _command_stream(sys.stdin)
        return run(card, address, quickack=not args.no_quickack, commands=commands, out=sys.stdout)
    except (_Terminated, KeyboardInterrupt):
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-sim", description="simulated cards, reader and acquirer host")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("profiles", help="list the simulated card profiles").set_defaults(func=_profiles)
    card = commands.add_parser("card", help="put a simulated card in pcscd's virtual reader (vpcd)")
    card.add_argument("--profile", required=True, help="card profile name (see `pos-sim profiles`)")
    card.add_argument(
        "--vpcd",
        default="{}:{}".format(*DEFAULT_ADDRESS),
        help="vpcd address HOST:PORT (default %(default)s = reader 'Virtual PCD 00 00')",
    )
    card.add_argument(
        "--no-quickack", action="store_true", help="do not re-arm TCP_QUICKACK (slow: for benchmarks)"
    )
    card.set_defaults(func=_card)
    add_host_command(commands)
    add_kit_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SimError as error:
        print(f"pos-sim: {error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
