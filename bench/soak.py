"""Soak: the terminal against the simulated acquirer over TCP, under faults, for minutes.

    ./build.sh soak [--minutes N] [--seed S] [--cards pcsc|sim]        (python bench/soak.py ...)

The cards are `pos-sim card` processes in pcscd's vpcd reader, read by the
terminal through PC/SC (`--cards pcsc`, the default: `./build.sh soak` starts
its own pcscd as it does for the tests), or in-process simulated cards
(`--cards sim`, no pcscd needed).
The acquirer is `pos-sim host` in its own process (faults switched with
`faults SPEC` lines on its standard input, its ledger kept in a JSON file).
The terminal runs in a child process (`soak.py worker`) on one data directory:
a few random operations each run (sales, pre-authorisations and their
completions, voids, refunds to the card and in cash, tip adjusts,
settlements, drains), with
- host faults: answers dropped (the terminal times out), late (after the
  terminal's timeout), with a bad MAC, garbage, connections closed, also on the
  reversals;
- cards pulled before the second GENERATE AC (sim profile
  fault-removed-before-second-ac: through vpcd the card leaves the reader in
  the middle of the command);
- SIGKILL of the terminal (and of the card process it started) at a random
  moment, then a restart on the same data;
- as root: the data directory on a small tmpfs, filled up (disk full) or
  remounted read-only for a run; otherwise a line says these are skipped.

At the end the host behaves, the terminal drains, finishes any settlement cut
short and settles; then the acquirer's ledger is held against the terminal's
journal and one line is printed:

    soak: ... lost 0, applied twice 0, unacknowledged 0, mismatched 0, pending 0, crashes 0, ...

lost: money the host moved that the journal does not show (or the other way);
applied twice: a request booked twice by the host; unacknowledged: anything
still waiting or flagged in the queue; mismatched: type, amount or status
differ; pending: a request with no outcome; crashes: a terminal run that ended
with a traceback. The exit status is 1 when any of them is not 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))  # _harness, also when run as `python -m` or imported

TERMINAL_ID = "TERM0001"  # firmware/data/identity.json
MERCHANT_ID = "123456789012345"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
ANSWER_TIMEOUT = 1.5
HOST_FAULTS = [
    "drop,times=1",
    "close,times=1",
    "garbage,times=1",
    "bad_mac,times=1",
    f"delay={ANSWER_TIMEOUT + 1},times=1",
    "close,only=0200+0400,times=2",
    "bad_mac,only=0220,times=1",
    "close,only=0500,times=1",
    "drop,only=0320,times=1",
]
FINAL_EXIT = {0: "ok"}


# ----- the terminal, in its own process -------------------------------------------------------------------


CardSource = Callable[[str], contextlib.AbstractContextManager[Any]]


def _sim_cards(profile: str) -> contextlib.AbstractContextManager[Any]:
    from sim.card import load_profile_card
    from sim.reader import SimReader

    return contextlib.nullcontext(SimReader(load_profile_card(profile)))


@contextlib.contextmanager
def _vpcd_cards(profile: str) -> Iterator[Any]:
    """The card in pcscd's vpcd reader for the operation; the terminal reads it through PC/SC."""
    from _harness import VPCD_READER, VpcdCard

    from firmware.emv.reader import PcscReader

    with VpcdCard(profile):
        yield PcscReader(VPCD_READER)


def _worker(data_dir: Path, port: int, seed: int, operations: int, final: bool, cards: str) -> int:
    """One run of the terminal: `operations` random operations, or (final) drain and settle."""
    from firmware.errors import PosError
    from firmware.host.channel import TcpHostLink
    from firmware.host.profile import load_host_profile
    from firmware.txn.service import NotSignedOnError, entry_view, open_terminal

    rng = random.Random(seed)
    link = TcpHostLink("127.0.0.1", port, connect_timeout=2.0, read_timeout=ANSWER_TIMEOUT)
    profile = replace(load_host_profile(), answer_timeout=ANSWER_TIMEOUT)
    try:
        service = open_terminal(data_dir, link, sleep=lambda s: time.sleep(min(s, 0.05)), profile=profile)
    except PosError as exc:
        print(json.dumps({"refused": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 3
    try:
        if final:
            return _settle_up(service, entry_view)
        for number in range(operations):
            try:
                what = _operation(service, rng, seed, number, _vpcd_cards if cards == "pcsc" else _sim_cards)
                print(json.dumps({"op": what}), flush=True)
            except NotSignedOnError:
                with contextlib.suppress(PosError):
                    service.sign_on()
                print(json.dumps({"op": "sign-on"}), flush=True)
            except PosError as exc:
                print(json.dumps({"failed": f"{type(exc).__name__}: {str(exc)[:120]}"}), flush=True)
        return 0
    finally:
        service.close()


def _operation(service: Any, rng: random.Random, seed: int, number: int, card_in: CardSource) -> str:
    from firmware.txn.model import Evidence, RefundMethod, TxnStatus, TxnType
    from firmware.txn.reverse import OriginalRef

    entries = service.ctx.book.open_entries()
    approved = {
        kind: [e for e in entries if e.type is kind and e.status is TxnStatus.APPROVED]
        for kind in (TxnType.SALE, TxnType.PREAUTH)
    }
    kind = rng.choice(
        ["sale"] * 4 + ["preauth", "complete", "void", "refund", "cash", "adjust", "settle", "drain"]
    )
    if kind == "complete" and not approved[TxnType.PREAUTH]:
        kind = "preauth"
    if kind in ("void", "refund", "cash", "adjust") and not approved[TxnType.SALE]:
        kind = "sale"
    if kind in ("sale", "preauth"):
        profile = rng.choice(["visa-credit"] * 5 + ["fault-removed-before-second-ac"])
        amount = rng.choice([1_234, 5_000, 8_800, 12_051, 100, 45_600])
        with card_in(profile) as reader:
            result = service.sale(
                reader,
                amount,
                order=f"S{seed}-{number}",
                pin=lambda kind, tries: "1234",
                kind=TxnType.SALE if kind == "sale" else TxnType.PREAUTH,
            )
        pulled = " (card pulled)" if profile.startswith("fault-") else ""
        return f"{kind} {result.entry.status.value if result.entry else result.outcome.name}{pulled}"
    if kind == "settle":
        return f"settle balanced={service.settle().balanced}"
    if kind == "drain":
        return f"drain waiting={service.drain().waiting}"
    original = rng.choice(approved[TxnType.PREAUTH if kind == "complete" else TxnType.SALE])
    ref = OriginalRef(trace=original.trace)
    evidence = Evidence(
        order=original.order,
        original_time=original.created,
        name="Soak Test",
        contact="13800138000",
        reason="soak",
    )
    if kind == "complete":
        more = rng.choice(
            [0, original.amount // 10]
        )  # a completion, at most 15 % above the pre-authorisation
        result = service.adjust(
            ref, original.amount, original.amount + more, evidence, supervisor=lambda op: True
        )
    elif kind == "void":
        result = service.void(ref, evidence, supervisor=lambda op: True)
    elif kind in ("refund", "cash"):
        method = RefundMethod.CARD if kind == "refund" else RefundMethod.CASH
        result = service.refund(ref, rng.choice([100, 500]), method, evidence, supervisor=lambda op: True)
    else:
        result = service.adjust(
            ref, original.amount, original.amount + 100, evidence, supervisor=lambda op: True
        )
    return f"{kind} {result.entry.status.value if result.entry else 'cash'}"


def _settle_up(service: Any, entry_view: Any) -> int:
    """The host behaves again: send what waits, finish a settlement cut short, settle, and report."""
    from firmware.errors import PosError

    problems = []
    for _ in range(6):
        try:
            service.drain()
            if service.ctx.book.settling is not None:
                service.settle()
        except PosError as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        queue = service.queue()
        if not queue["waiting"] and not queue["flagged"] and service.ctx.book.settling is None:
            break
    try:
        service.settle()
    except PosError as exc:
        problems.append(f"settle: {type(exc).__name__}: {exc}")
    service.drain()
    report = {
        "journal": [entry_view(e) for e in service.journal()],
        "queue": service.queue(),
        "problems": problems,
    }
    print(json.dumps({"final": report}), flush=True)
    return 0


# ----- the soak -------------------------------------------------------------------------------------------


def _provision(data_dir: Path) -> bytes:
    import psec

    from firmware.keys.layout import KeyLayout, open_key_store
    from firmware.keys.provision import provision
    from firmware.keys.tmk import install_tmk

    layout = KeyLayout.under(data_dir)
    provisioned = provision(layout, os.urandom)
    with warnings.catch_warnings():  # psec (the TEST kit's TR-31 wrapper) builds TDES the old way
        warnings.simplefilter("ignore")
        block = str(psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK))
    install_tmk(open_key_store(layout), KBPK, block)
    return provisioned.signing_public_key


class Host:
    """`pos-sim host` in its own process, faults switched on its standard input."""

    def __init__(self, work: Path, public_key: bytes) -> None:
        terminals = work / "terminals.json"
        terminals.write_text(
            json.dumps(
                [
                    {
                        "terminal_id": TERMINAL_ID,
                        "merchant_id": MERCHANT_ID,
                        "tmk": TMK.hex(),
                        "device_public_key": public_key.hex(),
                    }
                ]
            )
        )
        self.ledger = work / "host-ledger.json"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sim",
                "host",
                "--port",
                "0",
                "--terminals",
                str(terminals),
                "--ledger",
                str(self.ledger),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on"):
            raise SystemExit(f"soak: the simulated host did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def faults(self, spec: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        stdout: IO[str] | None = self.process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"faults {spec or 'none'}\n")
        stdin.flush()
        stdout.readline()  # "faults: ..."

    def rows(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [row for row in json.loads(self.ledger.read_text()) if row["terminal"] == TERMINAL_ID]

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Disk:
    """The data directory on a small tmpfs (as root): full and read-only on demand."""

    def __init__(self, directory: Path, size: str) -> None:
        self.directory = directory
        self.mounted = False
        if os.geteuid() != 0:
            print("soak: not root: no tmpfs, so the full-disk and read-only faults are skipped", flush=True)
            return
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"soak: cannot mount a tmpfs ({done.stderr.strip()}): disk faults skipped", flush=True)
            return
        self.mounted = True

    @contextlib.contextmanager
    def full(self) -> Any:
        ballast = self.directory / "ballast"
        try:
            fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with contextlib.suppress(OSError):  # until the disk is full
                    while True:
                        os.write(fd, bytes(1 << 16))
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, bytes(512))
            finally:
                os.close(fd)
            yield
        finally:
            ballast.unlink(missing_ok=True)

    @contextlib.contextmanager
    def read_only(self) -> Any:
        subprocess.run(["mount", "-o", "remount,ro", str(self.directory)], check=True)
        try:
            yield
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(self.directory)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.directory)], check=False)
            self.mounted = False


def _run_worker(
    data_dir: Path,
    port: int,
    seed: int,
    operations: int,
    *,
    cards: str,
    final: bool = False,
    kill_after: float | None = None,
) -> tuple[int | None, list[dict[str, Any]], str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "worker",
        "--data",
        str(data_dir),
        "--port",
        str(port),
        "--seed",
        str(seed),
        "--operations",
        str(operations),
        "--cards",
        cards,
    ]
    if final:
        command.append("--final")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"},
        start_new_session=True,  # a SIGKILL takes the card process the terminal started with it
    )
    killed = False
    try:
        out, err = process.communicate(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        killed = True
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return (None if killed else process.returncode), lines, err


def _books(rows: list[dict[str, Any]], final: dict[str, Any], crashes: int) -> dict[str, int]:
    journal = final["journal"]
    by_trace = {entry["trace"]: entry for entry in journal}
    ledger_traces = Counter(row["trace"] for row in rows)
    ledger = {row["trace"]: row for row in rows}
    counts = Counter(lost=0, applied_twice=0, unacknowledged=0, mismatched=0, pending=0)
    counts["applied_twice"] = sum(n - 1 for n in ledger_traces.values() if n > 1)
    rrns = Counter(entry["rrn"] for entry in journal if entry["rrn"])
    counts["applied_twice"] += sum(n - 1 for n in rrns.values() if n > 1)
    for trace, entry in by_trace.items():
        row = ledger.get(trace)
        status = entry["status"]
        if status in ("approved", "voided"):
            if row is None:
                counts["lost"] += 1
            elif (row["type"], row["amount"], row["status"], row["rrn"]) != (
                entry["type"],
                entry["amount"],
                status,
                entry["rrn"],
            ):
                counts["mismatched"] += 1
        elif status == "reversed":
            if row is not None and row["status"] != "reversed":
                counts["mismatched"] += 1
        elif status in ("declined", "failed"):
            if row is not None and row["status"] != "reversed":
                counts["lost"] += 1  # the host moved money the terminal says did not move
        else:
            counts["pending"] += 1
    counts["lost"] += sum(1 for trace in ledger if trace not in by_trace)
    queue = final["queue"]
    counts["unacknowledged"] = len(queue["waiting"]) + len(queue["flagged"]) + len(queue["set_aside"])
    counts["crashes"] = crashes
    failures = [e for e in journal if e["status"] in ("declined", "failed", "reversed")]
    counts["failures"] = len(failures)
    counts["failures_without_reason"] = sum(
        1 for e in failures if not (e["status_reason"] or e["response_code"])
    )
    return dict(counts)


def soak(seconds: float, seed: int, work: Path, disk_faults: bool, cards: str) -> int:
    if cards == "pcsc":
        from _harness import VPCD_READER, vpcd_slot

        print(f"soak: cards in pcscd's reader {VPCD_READER!r} (vpcd), read through PC/SC", flush=True)
        with vpcd_slot():
            return _soak(seconds, seed, work, disk_faults, cards)
    print("soak: cards in the in-process simulated reader (--cards sim: pcscd not used)", flush=True)
    return _soak(seconds, seed, work, disk_faults, cards)


def _soak(seconds: float, seed: int, work: Path, disk_faults: bool, cards: str) -> int:
    rng = random.Random(seed)
    data_dir = work / "terminal"
    data_dir.mkdir(parents=True)
    disk = Disk(data_dir, "16m") if disk_faults else None
    host: Host | None = None
    try:
        host = Host(work, _provision(data_dir))
        tally: Counter[str] = Counter()
        crashes: list[str] = []
        end = time.monotonic() + seconds
        run = 0
        while time.monotonic() < end:
            run += 1
            fault = rng.choice(["", "", *HOST_FAULTS])
            host.faults(fault)
            tally["host faults"] += bool(fault)
            kill_after = rng.uniform(0.2, 4.0) if rng.random() < 0.3 else None
            disk_fault = rng.choice([None] * 8 + ["full", "read-only"]) if disk and disk.mounted else None
            context = (
                (disk.full() if disk_fault == "full" else disk.read_only())
                if disk and disk_fault
                else contextlib.nullcontext()
            )
            with context:
                code, lines, err = _run_worker(
                    data_dir,
                    host.port,
                    rng.randrange(10**6),
                    rng.randint(2, 8),
                    cards=cards,
                    kill_after=kill_after,
                )
            tally[f"disk {disk_fault}"] += bool(disk_fault)
            tally["runs"] += 1
            tally["killed"] += code is None
            tally["operations"] += sum(1 for line in lines if "op" in line)
            tally["cards pulled"] += sum(1 for line in lines if "card pulled" in line.get("op", ""))
            tally["refused"] += sum(1 for line in lines if "failed" in line or "refused" in line)
            if code not in (None, 0, 3) or "Traceback" in err:
                crashes.append(err.strip().splitlines()[-1] if err.strip() else f"exit {code}")
                print(f"soak: run {run} crashed:\n{err}", flush=True)
        host.faults("")
        code, lines, err = _run_worker(data_dir, host.port, 0, 0, cards=cards, final=True)
        finals = [line["final"] for line in lines if "final" in line]
        if code != 0 or not finals:
            print(f"soak: the final run failed ({code}):\n{err}", flush=True)
            return 1
        counts = _books(host.rows(), finals[0], len(crashes))
        print(
            f"soak: {seconds / 60:.1f} min, {tally['operations']} operations in {tally['runs']} runs "
            f"({tally['killed']} killed, {tally['host faults']} with host faults, "
            f"{tally['cards pulled']} cards pulled, "
            f"{tally['disk full']} disk full, {tally['disk read-only']} read-only), "
            f"{len(host.rows())} requests booked by the host; "
            f"lost {counts['lost']}, applied twice {counts['applied_twice']}, "
            f"unacknowledged {counts['unacknowledged']}, mismatched {counts['mismatched']}, "
            f"pending {counts['pending']}, crashes {counts['crashes']}, "
            f"failures {counts['failures']} ({counts['failures_without_reason']} without a reason)",
            flush=True,
        )
        for problem in finals[0]["problems"]:
            print(f"soak: while settling up: {problem}", flush=True)
        bad = (
            "lost",
            "applied_twice",
            "unacknowledged",
            "mismatched",
            "pending",
            "crashes",
            "failures_without_reason",
        )
        return 1 if any(counts[key] for key in bad) else 0
    finally:
        if host is not None:
            host.stop()
        if disk is not None:
            disk.unmount()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh soak")
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker")
    worker.add_argument("--data", type=Path, required=True)
    worker.add_argument("--port", type=int, required=True)
    worker.add_argument("--seed", type=int, default=0)
    worker.add_argument("--operations", type=int, default=5)
    worker.add_argument("--final", action="store_true")
    worker.add_argument("--cards", choices=("pcsc", "sim"), default="pcsc")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, help="instead of --minutes")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--no-disk-faults", action="store_true", help="no tmpfs, no full disk, no read-only")
    parser.add_argument(
        "--cards",
        choices=("pcsc", "sim"),
        default="pcsc",
        help="pcsc: pos-sim cards in pcscd's vpcd reader (default); sim: in-process simulated cards",
    )
    args = parser.parse_args(argv)
    if args.command == "worker":
        return _worker(args.data, args.port, args.seed, args.operations, args.final, args.cards)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    print(f"soak: seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pos-soak-") as scratch:
        return soak(seconds, args.seed, Path(scratch), not args.no_disk_faults, args.cards)


if __name__ == "__main__":
    sys.exit(main())
