"""`pos-keys`: provision the terminal, load the TMK and the DUKPT initial key, list keys (KCVs only).

    pos-keys [--data-dir DIR] [--device-key PATH] [--host-profile PATH] provision  (completes a run cut short)
    pos-keys [...] load-tmk --block FILE|- --kbpk-file FILE
    pos-keys [...] load-dukpt --block FILE|- --kbpk-file FILE [--ksn HEX]
    pos-keys [...] list
    pos-keys [...] public-key
    pos-keys [...] adopt                     (technician: the files as they are now become current)

The data directory comes from --data-dir, else $POS_DATA_DIR, else var/data;
the device key from --device-key, else $POS_DEVICE_KEY, else DATA_DIR/device.key.
`load-tmk` refuses a block holding a key component and, once a versioned TMK
is installed, any block whose TR-31 key version number is not newer; a TMK
or KBPK that is single DES (8 bytes, equal halves) unless the host profile
(--host-profile, default the shipped host.json) names the legacy single-DES
mode, which `list` then shows, with each single-DES key marked.
`load-dukpt` takes a B1 block (TDES or AES initial key); the initial KSN or key
ID comes from its KS / IK optional block, else from --ksn. Only the registers
the key fills are stored, never the key; an initial KSN / key ID loaded before
is refused. `list` shows the DUKPT device by its next KSN, counter and the
initial key's KCV.
`adopt` takes the key store, the DUKPT state and the open batch, as they are
now, as their current state in the anti-rollback record (after a firmware
update that brings the record, or a record lost): a technician's knowing
decision, since it also accepts a file put back.
Every error is one line on stderr and a non-zero exit status. Key bytes are
never printed: keys are shown by name, kind, version and KCV.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from firmware.cli.common import (
    EXIT_FAILED,
    EXIT_KEYS_USAGE,
    EXIT_OK,
    Parser,
    UsageError,
    fail,
    parse_command_line,
)
from firmware.errors import KeyBlockError, KeyStoreError, MalformedFileError, PosError
from firmware.host.profile import HostProfile, load_host_profile
from firmware.keys.blockcipher import single_des_problem
from firmware.keys.device import load_device_key
from firmware.keys.dukpt_load import load_dukpt_initial_key
from firmware.keys.dukpt_state import DUKPT_FILE_NAME, DUKPT_RECORD_NAME, DukptInfo
from firmware.keys.kcv import KIND_TDES
from firmware.keys.layout import (
    KeyLayout,
    open_dukpt_terminal,
    open_key_store,
    open_monotonic_record,
    open_password_store,
    open_record_signer,
)
from firmware.keys.passwords import ChangeOutcome, password_problem
from firmware.keys.provision import provision
from firmware.keys.store import STORE_FILE_NAME, STORE_RECORD_NAME
from firmware.keys.tmk import install_tmk
from firmware.store.atomic_file import locked
from firmware.store.json_guard import read_bounded
from firmware.txn.book import OPEN_FILE, OPEN_RECORD_NAME

__all__ = ["DEFAULT_DATA_DIR", "PROG", "build_parser", "main"]

DEFAULT_DATA_DIR = "var/data"
PROG = "pos-keys"
# A TR-31 block is at most 9999 characters; a KBPK file a line of hex. Every read stops here.
MAX_INPUT_BYTES = 16 * 1024
MAX_PASSWORD_INPUT = 4096


def build_parser() -> Parser:
    """The `pos-keys` command line: global options, then one of a fixed set of subcommands."""
    parser = Parser(prog=PROG, description="Terminal key management (keys are shown only by KCV).")
    parser.add_argument("--data-dir", help="data directory (default: $POS_DATA_DIR or var/data)")
    parser.add_argument(
        "--device-key", help="device key file (default: $POS_DEVICE_KEY or DATA_DIR/device.key)"
    )
    parser.add_argument("--host-profile", help="host profile JSON (default: the shipped host.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "provision",
        help="create the device key and the record signing key (first start; completes an interrupted run)",
    )
    load = commands.add_parser(
        "load-tmk",
        help="load the terminal master key from a TR-31 key block (B or D) newer than the installed one",
    )
    load.add_argument("--block", required=True, help="file holding the key block, or - for stdin")
    load.add_argument("--kbpk-file", required=True, help="file holding the key block protection key as hex")
    dukpt = commands.add_parser(
        "load-dukpt",
        help="load a DUKPT initial key (TR-31 usage B1, TDES or AES); only its registers are kept",
    )
    dukpt.add_argument("--block", required=True, help="file holding the key block, or - for stdin")
    dukpt.add_argument("--kbpk-file", required=True, help="file holding the key block protection key as hex")
    dukpt.add_argument(
        "--ksn",
        help="initial KSN (TDES, 20 hex digits) or initial key ID (AES, 16 hex digits) "
        "when the block has no KS / IK optional block",
    )
    commands.add_parser("list", help="list keys: names, kinds, versions and KCVs; the DUKPT device's KSN")
    commands.add_parser(
        "public-key", help="print the device's record signing public key (hex) for registration"
    )
    password = commands.add_parser(
        "set-password",
        help="set a role's password from standard input: the new one when it has none, else old then new",
    )
    password.add_argument("role", choices=("supervisor", "technician"))
    commands.add_parser(
        "adopt",
        help="technician: take the key store, DUKPT state and open batch as they are now as current "
        "in the anti-rollback record (after an update, or a lost record)",
    )
    return parser


# The files under the anti-rollback record: its name for each, and where it is under the data directory.
_GUARDED = (
    (STORE_RECORD_NAME, Path("keys") / STORE_FILE_NAME),
    (DUKPT_RECORD_NAME, Path("keys") / DUKPT_FILE_NAME),
    (OPEN_RECORD_NAME, Path("txn") / OPEN_FILE),
)


def _adopt(layout: KeyLayout, out: TextIO) -> None:
    record = open_monotonic_record(layout, load_device_key(layout.device_key_path))
    for name, relative in _GUARDED:
        path = layout.data_dir / relative
        with locked(path):
            data = path.read_bytes() if path.exists() else None
            record.adopt(name, data)
        out.write(f"adopted {path}{'' if data is not None else ' (absent)'}\n")


def _set_password(layout: KeyLayout, role: str, stdin: TextIO, out: TextIO) -> None:
    text = stdin.read(MAX_PASSWORD_INPUT + 1)
    if len(text) > MAX_PASSWORD_INPUT:
        raise KeyStoreError(f"more than {MAX_PASSWORD_INPUT} characters on standard input")
    lines = [line.rstrip("\r\n") for line in text.splitlines()]
    store = open_password_store(layout, time.monotonic)
    if role not in store.roles():
        if len(lines) != 1:
            raise KeyStoreError(f"{role} has no password yet: give the new one alone on standard input")
        if not store.set_first_password(role, lines[0]):
            raise KeyStoreError(f"{role} has a password already: give the old one, then the new one")
        out.write(f"{role}: password set\n")
        return
    if len(lines) != 2:
        raise KeyStoreError(f"{role} has a password: give the old one, then the new one, on standard input")
    outcome = store.change_password(role, lines[0], lines[1])
    if outcome is ChangeOutcome.TOO_SHORT:
        raise KeyStoreError(f"{role}: password not changed ({password_problem(role, lines[1])})")
    if outcome is not ChangeOutcome.CHANGED:
        raise KeyStoreError(f"{role}: password not changed ({outcome.value})")
    out.write(f"{role}: password changed\n")


def _read_text(path: str, stdin: TextIO, what: str) -> str:
    """The file's text (or standard input's, for "-"), at most MAX_INPUT_BYTES of it."""
    if path == "-":
        text = stdin.read(MAX_INPUT_BYTES + 1)
        if len(text) > MAX_INPUT_BYTES:
            raise KeyStoreError(f"{what} on standard input is longer than {MAX_INPUT_BYTES} characters")
        return text
    try:
        return read_bounded(path, MAX_INPUT_BYTES).decode("ascii")
    except (OSError, UnicodeDecodeError, MalformedFileError) as exc:
        reason = (
            exc.strerror
            if isinstance(exc, OSError)
            else f"larger than {MAX_INPUT_BYTES} bytes"
            if isinstance(exc, MalformedFileError)
            else "not ASCII text"
        )
        raise KeyStoreError(f"cannot read {what} {path}: {reason}") from exc


def _read_kbpk(path: str, stdin: TextIO) -> bytes:
    text = "".join(_read_text(path, stdin, "KBPK file").split())
    try:
        kbpk = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyStoreError(f"KBPK file {path} must hold the key as hex digits") from exc
    if len(kbpk) not in (16, 24, 32):
        raise KeyStoreError(f"KBPK file {path} holds {len(kbpk)} bytes; expected 16, 24 or 32")
    return kbpk


def _provision(layout: KeyLayout, rng: Callable[[int], bytes], out: TextIO) -> None:
    done = provision(layout, rng)
    how = " (already there: provisioning completed)" if done.resumed else ""
    out.write(f"provisioned: device key {done.device_key_id} at {done.device_key_path}{how}\n")
    out.write(f"record signing public key: {done.signing_public_key.hex()}\n")


def _load_tmk(
    layout: KeyLayout, block_path: str, kbpk_path: str, profile: HostProfile, stdin: TextIO, out: TextIO
) -> None:
    store = open_key_store(layout)
    kbpk = _read_kbpk(kbpk_path, stdin)
    block = _read_text(block_path, stdin, "key block file").strip()
    header, info = install_tmk(store, kbpk, block, allow_single_des=profile.legacy_single_des)
    out.write(
        f"TMK loaded from key block version {header.version_id}, key version {info.block_version}: "
        f"v{info.version} KCV {info.kcv}\n"
    )


def _parse_ksn(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError as exc:
        raise KeyBlockError(f"--ksn {text!r} is not hex", "ksn") from exc


def _dukpt_line(info: DukptInfo) -> str:
    if info.next_ksn is None:
        where = f"KSN {info.initial_key_id.hex().upper()} counter exhausted"
    else:
        where = f"KSN {info.next_ksn.hex().upper()} counter {info.counter}"
    return f"{'DUKPT':<10} {info.algorithm:<8} {where} KCV {info.kcv}"


def _load_dukpt(
    layout: KeyLayout, block_path: str, kbpk_path: str, ksn: str | None, stdin: TextIO, out: TextIO
) -> None:
    terminal = open_dukpt_terminal(layout)
    initial_ksn = _parse_ksn(ksn)
    kbpk = _read_kbpk(kbpk_path, stdin)
    block = _read_text(block_path, stdin, "key block file").strip()
    header, info = load_dukpt_initial_key(terminal, kbpk, block, initial_ksn)
    next_ksn = info.next_ksn.hex().upper() if info.next_ksn else "none"
    out.write(
        f"DUKPT {info.algorithm} initial key loaded from key block version {header.version_id}, key version "
        f"{info.key_version}: next KSN {next_ksn}, {len(info.live_registers)} registers, KCV {info.kcv} "
        "(the initial key itself is not kept)\n"
    )


def _list(layout: KeyLayout, profile: HostProfile, out: TextIO) -> None:
    store = open_key_store(layout)
    infos = store.list()
    terminal = open_dukpt_terminal(layout)
    dukpt = terminal.info() if terminal.is_loaded() else None
    if profile.legacy_single_des:
        out.write("LEGACY MODE: the host profile allows single-DES keys (legacy_single_des)\n")
    if not infos and dukpt is None:
        out.write("no keys\n")
    for info in infos:
        weak = ""
        if info.kind == KIND_TDES and single_des_problem(store.get(info.name)) is not None:
            weak = "  SINGLE DES (legacy)" if profile.legacy_single_des else "  SINGLE DES (not allowed)"
        out.write(f"{info.name:<10} {info.kind:<8} v{info.version:<4} KCV {info.kcv}{weak}\n")
    if dukpt is not None:
        out.write(_dukpt_line(dukpt) + "\n")


def _public_key(layout: KeyLayout, out: TextIO) -> None:
    out.write(open_record_signer(open_key_store(layout)).public_key_bytes().hex() + "\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    rng: Callable[[int], bytes] = os.urandom,
) -> int:
    env = os.environ if env is None else env
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        args = parse_command_line(build_parser(), sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        return fail(stderr, PROG, EXIT_KEYS_USAGE, f"usage error: {exc.message}")
    if isinstance(args, int):
        return args
    data_dir = Path(args.data_dir or env.get("POS_DATA_DIR") or DEFAULT_DATA_DIR)
    device_key = args.device_key or env.get("POS_DEVICE_KEY")
    layout = KeyLayout.under(data_dir, Path(device_key) if device_key else None)
    try:
        if args.command == "provision":
            _provision(layout, rng, stdout)
        elif args.command == "load-tmk":
            _load_tmk(layout, args.block, args.kbpk_file, load_host_profile(args.host_profile), stdin, stdout)
        elif args.command == "load-dukpt":
            _load_dukpt(layout, args.block, args.kbpk_file, args.ksn, stdin, stdout)
        elif args.command == "list":
            _list(layout, load_host_profile(args.host_profile), stdout)
        elif args.command == "set-password":
            _set_password(layout, args.role, stdin, stdout)
        elif args.command == "adopt":
            _adopt(layout, stdout)
        else:
            _public_key(layout, stdout)
    except PosError as exc:
        return fail(stderr, PROG, EXIT_FAILED, f"error: {exc}")
    return EXIT_OK
