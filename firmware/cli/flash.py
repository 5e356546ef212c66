"""`pos-flash`: build, verify and install signed firmware images; A/B slot status, boot, mark-good, rollback.

    pos-flash build --version V [--arch A] [--python 3.N] [--key FILE] [--wheels DIR | --no-deps]
                    [--source DIR] [--out DIR]           (build machine: one signed image under dist/)
    pos-flash [--root DIR] [--data-dir DIR] verify IMAGE
    pos-flash [...] install IMAGE [--max-boots N]        (into the inactive slot, then on trial)
    pos-flash [...] status | boot | mark-good | rollback | migrate
    pos-flash [...] trust PUBLIC_KEY_HEX [--development] [--name NAME] | production

The root comes from --root, else $POS_ROOT, else /opt/pos-terminal; the data
directory from --data-dir, else $POS_DATA_DIR, else ROOT/data. The signing key
from --key, else $POS_IMAGE_KEY (PEM or 64 hex digits), else the build
machine's development key (SOURCE/var/image-dev-key.pem, made on demand and
labelled as such in the manifest). The build time is SOURCE_DATE_EPOCH.

Every refusal is one line on stderr, `pos-flash: refused: REASON: ...`, and
exit status 1; a bad command line exits 2. The work is done by
`firmware.update` (the technician menu calls the same functions).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
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
from firmware.errors import ImageRefusedError, PosError
from firmware.update.build import (
    BuildRequest,
    NoWheels,
    PipDownload,
    WheelDirectory,
    WheelSource,
    build_image,
)
from firmware.update.manifest import ARCHES, Version
from firmware.update.migrations import applied_migrations, pending_migrations, run_migrations
from firmware.update.slots import DEFAULT_MAX_BOOTS, SlotStatus, boot, install, mark_good, rollback, status
from firmware.update.trust import (
    SigningKey,
    development_key,
    development_key_path,
    load_trusted_keys,
    set_production,
    signing_key_from_text,
    trust_key,
)
from firmware.update.verify import Target, verify_image

__all__ = ["DEFAULT_ROOT", "PROG", "build_parser", "main"]

PROG = "pos-flash"
DEFAULT_ROOT = "/opt/pos-terminal"
EXIT_USAGE = EXIT_KEYS_USAGE


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Signed firmware images and the terminal's A/B slots.")
    parser.add_argument("--root", help=f"slots root (default: $POS_ROOT or {DEFAULT_ROOT})")
    parser.add_argument("--data-dir", help="data directory (default: $POS_DATA_DIR or ROOT/data)")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build and sign an image (build machine)")
    build.add_argument("--version", required=True, help="MAJOR.MINOR.PATCH")
    build.add_argument("--arch", default=os.uname().machine, choices=ARCHES)
    build.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    build.add_argument("--key", help="Ed25519 private key file (PEM or hex); default $POS_IMAGE_KEY")
    deps = build.add_mutually_exclusive_group()
    deps.add_argument("--wheels", help="take the dependency wheels from this directory, not from pip")
    deps.add_argument("--no-deps", action="store_true", help="ship no dependency wheels")
    build.add_argument("--source", default=".", help="source tree (holds firmware/ and setup.cfg)")
    build.add_argument("--out", default="dist", help="output directory")
    verify = commands.add_parser("verify", help="check an image through and through; install nothing")
    verify.add_argument("image")
    inst = commands.add_parser(
        "install", help="install an image into the inactive slot and start it on trial"
    )
    inst.add_argument("image")
    inst.add_argument("--max-boots", type=int, default=DEFAULT_MAX_BOOTS, help="starts before rollback")
    commands.add_parser("status", help="slots, versions, trial, anti-rollback counter, migrations")
    commands.add_parser("boot", help="at each start, before the kiosk: count a trial, roll back after N")
    commands.add_parser("mark-good", help="the kiosk is healthy: end the current slot's trial")
    commands.add_parser("rollback", help="give up the slot on trial now and go back to the previous one")
    commands.add_parser("migrate", help="run the data migrations not yet done")
    trust = commands.add_parser("trust", help="trust an image signing public key (64 hex digits)")
    trust.add_argument("public_key")
    trust.add_argument("--development", action="store_true", help="a development key (turns dev mode on)")
    trust.add_argument("--name", default="")
    commands.add_parser("production", help="accept production keys only; forget development keys")
    return parser


def _signing_key(args_key: str | None, env: Mapping[str, str], source: Path) -> SigningKey:
    if args_key:
        try:
            text = Path(args_key).read_bytes()
        except OSError as exc:
            raise PosError(f"cannot read signing key {args_key}: {exc.strerror}") from None
        return SigningKey(signing_key_from_text(text, args_key), development=False)
    if env.get("POS_IMAGE_KEY"):
        return SigningKey(signing_key_from_text(env["POS_IMAGE_KEY"].encode(), "$POS_IMAGE_KEY"), False)
    return SigningKey(development_key(development_key_path(source)), development=True)


def _build(args: argparse.Namespace, env: Mapping[str, str], out: TextIO) -> None:
    source = Path(args.source)
    epoch = env.get("SOURCE_DATE_EPOCH")
    if epoch is None or not epoch.isdigit():
        raise PosError(
            "SOURCE_DATE_EPOCH must be set to the build time in seconds (./build.sh image sets it)"
        )
    try:
        version = Version.parse(args.version)
    except ValueError as exc:
        raise PosError(str(exc)) from None
    wheels: WheelSource
    if args.no_deps:
        wheels = NoWheels()
    elif args.wheels:
        wheels = WheelDirectory(Path(args.wheels))
    else:
        wheels = PipDownload()
    key = _signing_key(args.key, env, source)
    request = BuildRequest(source, Path(args.out), version, args.arch, args.python, int(epoch), key, wheels)
    path = build_image(request)
    label = "DEVELOPMENT key" if key.development else "production key"
    out.write(
        f"{path}: {version} for {request.arch} / Python {request.python}, signed with {label} {key.id}\n"
    )
    out.write(f"public key: {key.public_hex}\n")


def _verify(image: str, root: Path, data_dir: Path, target: Target, out: TextIO) -> None:
    now = status(root, data_dir)
    installed = now.slot(now.current).version if now.current else None
    verified = verify_image(Path(image), load_trusted_keys(data_dir), target, installed, now.highest)
    manifest = verified.manifest
    kind = "development" if manifest.development or verified.key.development else "production"
    out.write(
        f"ok: {image}: {manifest.version} for {manifest.arch} / Python {manifest.python}, "
        f"{len(manifest.files)} files, signed with {kind} key {verified.key.id}\n"
    )


def _install(image: str, max_boots: int, root: Path, data_dir: Path, target: Target, out: TextIO) -> None:
    result = install(Path(image), root, data_dir, load_trusted_keys(data_dir), target, max_boots=max_boots)
    if result.trial is None:
        out.write(f"installed {result.version} into slot {result.slot}; it is the current slot\n")
        return
    out.write(
        f"installed {result.version} into slot {result.slot}; it starts on trial: "
        f"{result.trial.max_boots} starts to reach mark-good, else slot {result.previous} comes back\n"
    )


def _slot_line(now: SlotStatus, name: str) -> str:
    info = now.slot(name)
    version = str(info.version) if info.version else "empty"
    if name != now.current:
        return f"slot {name}: {version}"
    state = "good"
    if now.trial is not None:
        state = f"on trial, start {now.trial.boots} of {now.trial.max_boots}, waiting for mark-good"
    return f"slot {name}: {version}  <- current, {state}"


def _status(root: Path, data_dir: Path, out: TextIO) -> None:
    now = status(root, data_dir)
    if now.current is None:
        out.write(f"no slot installed under {root}\n")
    for info in now.slots:
        out.write(_slot_line(now, info.name) + "\n")
    out.write(f"anti-rollback: highest version installed {now.highest or 'none'}\n")
    if now.last_rollback:
        last = now.last_rollback
        out.write(f"last rollback: slot {last.get('slot')} {last.get('version')} ({last.get('why')})\n")
    done = sorted(applied_migrations(data_dir))
    pending = [m.number for m in pending_migrations(data_dir)]
    out.write(f"data migrations: done {done or 'none'}, pending {pending or 'none'}\n")


def _boot(root: Path, data_dir: Path, out: TextIO, err: TextIO) -> None:
    decision = boot(root, data_dir)
    if decision.rolled_back is not None:
        gone = decision.rolled_back
        err.write(
            f"{PROG}: slot {gone.slot} ({gone.version}) never reached mark-good in {gone.boots} starts: "
            f"rolled back to slot {decision.slot} ({decision.version})\n"
        )
    trial = f", trial start {decision.trial.boots} of {decision.trial.max_boots}" if decision.trial else ""
    out.write(f"start slot {decision.slot} ({decision.version}{trial}): {decision.directory}\n")


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    target: Target | None = None,
) -> int:
    env = os.environ if env is None else env
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = parse_command_line(build_parser(), sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        return fail(stderr, PROG, EXIT_USAGE, f"usage error: {exc.message}")
    if isinstance(args, int):
        return args
    root = Path(args.root or env.get("POS_ROOT") or DEFAULT_ROOT)
    data_dir = Path(args.data_dir or env.get("POS_DATA_DIR") or root / "data")
    target = target or Target.this_machine()
    try:
        if args.command == "build":
            _build(args, env, stdout)
        elif args.command == "verify":
            _verify(args.image, root, data_dir, target, stdout)
        elif args.command == "install":
            _install(args.image, args.max_boots, root, data_dir, target, stdout)
        elif args.command == "status":
            _status(root, data_dir, stdout)
        elif args.command == "boot":
            _boot(root, data_dir, stdout, stderr)
        elif args.command == "mark-good":
            slot, trial = mark_good(root)
            ended = f"trial ended after {trial.boots} starts" if trial else "it was already good"
            stdout.write(f"slot {slot} is good ({ended})\n")
        elif args.command == "rollback":
            gone = rollback(root)
            stdout.write(f"gave up slot {gone.slot} ({gone.version}): slot {gone.fallback} is current\n")
        elif args.command == "migrate":
            ran = run_migrations(data_dir)
            stdout.write(
                "".join(f"migration {m.number} ({m.name}) done\n" for m in ran) or "nothing to migrate\n"
            )
        elif args.command == "trust":
            try:
                public = bytes.fromhex(args.public_key)
            except ValueError:
                raise PosError("the public key must be 64 hex digits") from None
            trusted = trust_key(data_dir, public, development=args.development, name=args.name)
            mode = "development keys accepted" if trusted.accept_development else "production keys only"
            stdout.write(f"trusted {len(trusted.keys)} image keys ({mode})\n")
        else:
            trusted = set_production(data_dir)
            stdout.write(f"production keys only: {len(trusted.keys)} trusted image keys\n")
    except ImageRefusedError as exc:
        return fail(stderr, PROG, EXIT_FAILED, f"refused: {exc}")
    except PosError as exc:
        return fail(stderr, PROG, EXIT_FAILED, f"error: {exc}")
    return EXIT_OK
