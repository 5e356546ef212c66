"""`pos-sim kit DIR`: the key-injection kit of one TEST terminal, for the terminal and for the host.

Writes three files into DIR (created, mode 0700, when missing):

- ``tmk.tr31``: a fresh random TMK (double-length TDES, odd parity, halves
  that differ) in a TR-31 key block made with psec: version B (TDES KBPK,
  key derivation binding) or D (AES-256 KBPK), key usage K0, algorithm T,
  mode of use B, not versioned (``00``), not exportable (``N``): what the
  terminal's ``pos-keys load-tmk`` takes.
- ``kbpk.hex``: the TEST key block protection key, hex, mode 0600.
- ``terminals.json``: the terminal as the host registers it, the format
  ``pos-sim host --terminals`` reads (`sim.acquirer.load_terminals`):
  ``[{"terminal_id", "merchant_id", "tmk" (hex), "key_label": "TEST",
  "tmk_kcv", "mac_profile", "device_public_key" (hex, with --public-key)}]``.

The keys are TEST keys for the simulator, labelled so in the files; they are
never printed (the TMK shows by its check value). A DIR that holds any of the
three files already is refused (one line on stderr, exit status 1) unless
``--force``. Arguments that cannot make a terminal (ids of the wrong length,
an unknown MAC profile, a public key that is not 32 bytes of hex): exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import stat
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import psec.tr31
from cryptography.utils import CryptographyDeprecationWarning

from sim.acquirer import RegisteredTerminal
from sim.errors import HostConfigError, KitExists
from sim.hostkeys import MacProfile, check_value, make_des_key
from sim.randomness import Rng

__all__ = [
    "BLOCK_FILE",
    "KBPK_FILE",
    "TERMINALS_FILE",
    "KitExists",
    "add_kit_command",
    "make_kit",
    "tmk_key_block",
]

BLOCK_FILE: Final = "tmk.tr31"
KBPK_FILE: Final = "kbpk.hex"
TERMINALS_FILE: Final = "terminals.json"
_KIT_FILES: Final = (BLOCK_FILE, KBPK_FILE, TERMINALS_FILE)
# Version, length (psec fills it in), usage K0, algorithm T, mode B, key version 00, exportability N,
# no optional blocks, reserved.
_HEADER: Final = "{version}0000K0TB00N0000"
_KBPK_LENGTH: Final = {"B": 16, "D": 32}


def tmk_key_block(kbpk: bytes, tmk: bytes, version: str = "B") -> str:
    """The TR-31 key block (version B or D) carrying `tmk` as a terminal master key under `kbpk`."""
    if version not in _KBPK_LENGTH:
        raise HostConfigError(f"key block version {version!r}: B or D")
    with warnings.catch_warnings():
        # psec builds TDES from its old place in cryptography: its warning, not ours.
        warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module="psec")
        block: str = psec.tr31.wrap(kbpk, _HEADER.format(version=version), tmk)
    return block


def _write(path: Path, text: str, mode: int) -> None:
    """Write `text` to a new file of `mode` (a file there already is replaced: --force checked before).

    The temp file has a random name and is created exclusively, never through a link: a name planted
    in the directory beforehand cannot make the kit write its keys somewhere else.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, path)


def _check_private(directory: Path) -> None:
    """The kit's directory must be a real directory of this user that nobody else may write to."""
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise HostConfigError(f"{directory} is not a directory (a link?): no kit written")
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise HostConfigError(
            f"{directory} belongs to another user or others may write to it: no keys written there"
        )


def make_kit(
    directory: Path,
    *,
    terminal_id: str = "TERM0001",
    merchant_id: str = "123456789012345",
    mac_profile: str = MacProfile.X919,
    public_key: bytes | None = None,
    block_version: str = "B",
    force: bool = False,
    token_bytes: Rng = secrets.token_bytes,
) -> RegisteredTerminal:
    """Write the kit into `directory`; the terminal as registered. HostConfigError / KitExists / OSError."""
    if block_version not in _KBPK_LENGTH:
        raise HostConfigError(f"key block version {block_version!r}: B or D")
    try:
        profile = MacProfile(mac_profile)
    except ValueError:
        raise HostConfigError(f"unknown MAC profile {mac_profile!r}") from None
    tmk = make_des_key(16, token_bytes)
    terminal = RegisteredTerminal(terminal_id, merchant_id, tmk, profile, public_key)
    existing = [name for name in _KIT_FILES if (directory / name).exists()]
    if existing and not force:
        raise KitExists(f"{directory} holds a kit already ({', '.join(existing)}); --force replaces it")
    kbpk = make_des_key(16, token_bytes) if block_version == "B" else token_bytes(_KBPK_LENGTH["D"])
    block = tmk_key_block(kbpk, tmk, block_version)
    entry: dict[str, Any] = {
        "terminal_id": terminal.terminal_id,
        "merchant_id": terminal.merchant_id,
        "tmk": tmk.hex().upper(),
        "key_label": "TEST",
        "tmk_kcv": check_value(tmk, 3).hex().upper(),
        "mac_profile": terminal.mac_profile.value,
    }
    if public_key is not None:
        entry["device_public_key"] = public_key.hex()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory)
    _write(directory / KBPK_FILE, kbpk.hex().upper() + "\n", 0o600)
    _write(directory / BLOCK_FILE, block + "\n", 0o644)
    _write(directory / TERMINALS_FILE, json.dumps([entry], indent=1) + "\n", 0o600)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return terminal


def _public_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not hex") from None
    if len(key) != 32:
        raise argparse.ArgumentTypeError(f"an Ed25519 public key is 32 bytes, got {len(key)}")
    return key


def _run(args: argparse.Namespace) -> int:
    try:
        terminal = make_kit(
            args.directory, terminal_id=args.terminal_id, merchant_id=args.merchant_id,
            mac_profile=args.mac_profile, public_key=args.public_key, block_version=args.block_version,
            force=args.force,
        )
    except KitExists as error:
        print(f"pos-sim kit: {error}", file=sys.stderr)
        return 1
    except (HostConfigError, OSError) as error:
        print(f"pos-sim kit: {error}", file=sys.stderr)
        return 2
    kcv = check_value(terminal.tmk, 3).hex().upper()
    print(f"kit for terminal {terminal.terminal_id} in {args.directory}: {BLOCK_FILE} (TMK KCV {kcv}, "
          f"version {args.block_version}), {KBPK_FILE} (TEST KBPK), {TERMINALS_FILE}")  # fmt: skip
    return 0


def add_kit_command(subparsers: Any) -> None:
    """Add ``kit`` to a ``pos-sim`` argparse subparsers object."""
    parser = subparsers.add_parser("kit", help="write a TEST terminal's TMK key block, KBPK and host entry")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--terminal-id", default="TERM0001", help="8 characters (default %(default)s)")
    parser.add_argument("--merchant-id", default="123456789012345", help="15 characters")
    parser.add_argument(
        "--mac-profile", default=MacProfile.X919.value, choices=[p.value for p in MacProfile]
    )
    parser.add_argument("--public-key", type=_public_key, help="the terminal's Ed25519 record key, hex")
    parser.add_argument("--block-version", default="B", choices=("B", "D"), help="TR-31 version")
    parser.add_argument("--force", action="store_true", help="replace the kit DIR holds")
    parser.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.kit DIR ...`` (the same as ``pos-sim kit``)."""
    parser = argparse.ArgumentParser(prog="pos-sim")
    add_kit_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["kit", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
