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
  moment after it said it is open (its `{"ready": true}` line), then a restart
  on the same data; a run that has not ended after 120 s is killed and is hung;
- as root: the data directory on a small tmpfs, filled up (disk full) or
  remounted read-only for a run; otherwise a line says these are skipped.

At the end the host behaves, the terminal drains, finishes any settlement cut
short and settles; then the acquirer's ledger and the customer notices it
received (`pos-sim host --notices`) are held against the terminal's journal
and cash refunds, and one line is printed:

    soak: ... lost 0, applied twice 0, unacknowledged 0, mismatched 0, pending 0, crashes 0, hung 0, ...

lost: money the host moved that the journal does not show (or the other way);
applied twice: a request booked twice by the host (or an RRN on two entries);
doubled traces: a trace on two journal entries of a batch; unacknowledged:
anything still waiting or flagged in the queue; mismatched: type, amount,
status, RRN or batch differ; pending: a request with no outcome; crashes: a
terminal run that ended with a traceback; hung: one that did not end; idle:
the host booked nothing or no sale was approved; unsettled: the final
settlement not balanced, or a problem settling up; over-refunded: a sale
refunded (to the card and in cash) above its (adjusted) amount; cash missing:
a cash refund done that is not stored; notices: a notice owed not uploaded,
uploaded twice or not owed; pulled approved: a card pulled before the second
GENERATE AC whose request ended other than reversed, declined or failed; store
errors / refused at start: a store error (StoreError and its family) or a
refusal to start in a run with no disk fault; kinds never done: in soaks of 2
minutes or more, a kind of operation (sale, preauth, complete, void, refund,
cash, adjust, settle) that never succeeded. The exit status is 1 when any of
them is not 0. Also printed: how many of each kind succeeded, the error types
met, sign-ons (apart from operations), cards read through PC/SC, settlements
answered unbalanced mid-run (legitimate under faults: the terminal then
uploads the batch).
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
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from soak_books import BAD, KINDS, WorkerRun, reconcile, succeeded, tally_run

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))  # _harness, also when run as `python -m` or imported

TERMINAL_ID = "TERM0001"  # firmware/data/identity.json
MERCHANT_ID = "123456789012345"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
KBPK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")  # TEST key
ANSWER_TIMEOUT = 1.5
FINAL_ANSWER_TIMEOUT = 5.0  # settling up: a loaded machine's slow answer is not a host fault
HANG_LIMIT = 120.0  # a terminal run not ended by then is killed, and counted as hung
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


def _worker(
    data_dir: Path, port: int, seed: int, operations: int, final: bool, cards: str, answer_timeout: float
) -> int:
    """One run of the terminal: `operations` random operations, or (final) drain and settle."""
    from firmware.errors import PosError
    from firmware.host.channel import TcpHostLink
    from firmware.host.profile import load_host_profile
    from firmware.txn.service import NotSignedOnError, cash_refund_view, entry_view, open_terminal

    rng = random.Random(seed)
    link = TcpHostLink("127.0.0.1", port, connect_timeout=2.0, read_timeout=answer_timeout)
    profile = replace(load_host_profile(), answer_timeout=answer_timeout)
    try:
        service = open_terminal(data_dir, link, sleep=lambda s: time.sleep(min(s, 0.05)), profile=profile)
    except PosError as exc:
        print(json.dumps({"refused": f"{type(exc).__name__}: {exc}", **_error_fields(exc)}), flush=True)
        return 3
    print(json.dumps({"ready": True}), flush=True)
    try:
        if final:
            return _settle_up(service, entry_view, cash_refund_view)
        for number in range(operations):
            try:
                what = _operation(service, rng, seed, number, cards)
                print(json.dumps(what), flush=True)
            except NotSignedOnError:
                signed_on = False
                try:
                    signed_on = service.sign_on().approved
                except PosError as exc:
                    print(json.dumps({"failed": f"sign-on: {type(exc).__name__}: {str(exc)[:120]}",
                                      **_error_fields(exc)}), flush=True)  # fmt: skip
                print(json.dumps({"sign-on": signed_on}), flush=True)
            except PosError as exc:
                print(json.dumps({"failed": f"{type(exc).__name__}: {str(exc)[:120]}", **_error_fields(exc)}),
                      flush=True)  # fmt: skip
        return 0
    finally:
        service.close()


def _error_fields(exc: BaseException) -> dict[str, Any]:
    """The error's type, and whether it is one of the durable store's (StoreError and its family)."""
    from firmware.errors import StoreError

    return {"error": type(exc).__name__, "store": isinstance(exc, StoreError)}


def _operation(service: Any, rng: random.Random, seed: int, number: int, cards: str) -> dict[str, Any]:
    """One random operation; its line: `op` (the kind), `ok` (it succeeded) and what the books are held to."""
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
        card_in: CardSource = _vpcd_cards if cards == "pcsc" else _sim_cards
        with card_in(profile) as reader:
            result = service.sale(
                reader,
                amount,
                order=f"S{seed}-{number}",
                pin=lambda kind, tries: "1234",
                kind=TxnType.SALE if kind == "sale" else TxnType.PREAUTH,
            )
        entry = result.entry
        status = entry.status.value if entry else result.outcome.name
        pulled = profile.startswith("fault-")
        return {
            "op": kind,
            "ok": status == "approved" and not pulled,
            "status": status,
            "trace": entry.trace if entry else None,
            "pulled": pulled,  # the card left before the second GENERATE AC: never approved
            "reader": cards,  # the card was read to the end, through PC/SC or the simulated reader
        }
    if kind == "settle":
        settled = service.settle()
        return {"op": kind, "ok": True, "balanced": settled.balanced, "batch": settled.batch}
    if kind == "drain":
        return {"op": kind, "ok": True, "waiting": service.drain().waiting}
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
    if result.entry is None:
        cash = result.cash_refund
        return {"op": kind, "ok": cash is not None, "reference": cash.reference if cash else None}
    status = result.entry.status.value
    return {"op": kind, "ok": status == "approved", "status": status, "trace": result.entry.trace}


def _settle_up(service: Any, entry_view: Any, cash_refund_view: Any) -> int:
    """The host behaves again: send what waits, finish a settlement cut short, settle, and report."""
    from firmware.errors import PosError
    from firmware.txn.service import NotSignedOnError

    problems = []
    for _ in range(6):
        try:
            service.drain()
            if service.ctx.book.settling is not None:
                service.settle()
        except NotSignedOnError:  # working keys first (the settlement then finds its MAK)
            with contextlib.suppress(PosError):
                service.sign_on()
        except PosError as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        queue = service.queue()
        if not queue["waiting"] and not queue["flagged"] and service.ctx.book.settling is None:
            break
    settlement = None
    try:
        settled = service.settle()
        settlement = {"batch": settled.batch, "balanced": settled.balanced, "new_batch": settled.new_batch}
    except PosError as exc:
        problems.append(f"settle: {type(exc).__name__}: {exc}")
    try:
        service.drain()
    except PosError as exc:
        problems.append(f"drain: {type(exc).__name__}: {exc}")
    report = {
        "journal": [entry_view(e) for e in service.journal()],
        "cash_refunds": [cash_refund_view(c) for c in service.cash_refunds()],
        "queue": service.queue(),
        "settlement": settlement,
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
    """`pos-sim host` in its own process, faults switched on its standard input.

    `terminal_id` is the terminal registered there (the soak's own, unless a run proves that a terminal
    the host refuses fails the soak).
    """

    def __init__(self, work: Path, public_key: bytes, terminal_id: str = TERMINAL_ID) -> None:
        self.terminal_id = terminal_id
        terminals = work / "terminals.json"
        terminals.write_text(
            json.dumps(
                [
                    {
                        "terminal_id": terminal_id,
                        "merchant_id": MERCHANT_ID,
                        "tmk": TMK.hex(),
                        "device_public_key": public_key.hex(),
                    }
                ]
            )
        )
        self.ledger = work / "host-ledger.json"
        self.notices_file = work / "host-notices.json"
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
                "--notices",
                str(self.notices_file),
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
        """The host's ledger rows of the terminal."""
        return self._read(self.ledger)

    def notices(self) -> list[dict[str, Any]]:
        """The customer notices the host received from the terminal (`record` is what went up)."""
        return self._read(self.notices_file)

    def _read(self, path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [row for row in json.loads(path.read_text()) if row["terminal"] == self.terminal_id]

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


def _worker_command(
    data_dir: Path, port: int, seed: int, operations: int, cards: str, final: bool
) -> list[str]:
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
    return [*command, "--final"] if final else command


def _run_worker(
    data_dir: Path,
    port: int,
    seed: int,
    operations: int,
    *,
    cards: str,
    final: bool = False,
    kill_after: float | None = None,
    limit: float = HANG_LIMIT,
) -> WorkerRun:
    """Run the terminal; with `kill_after`, SIGKILL it that long after it said it is open (`ready`).

    A run that has not ended `limit` seconds after its start is killed too, and is `hung`.
    """
    process = subprocess.Popen(
        _worker_command(data_dir, port, seed, operations, cards, final),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "dummy"},
        start_new_session=True,  # a SIGKILL takes the card process the terminal started with it
    )
    assert process.stdout is not None and process.stderr is not None
    out: list[str] = []
    err: list[str] = []
    ready = threading.Event()

    def read_out(stream: IO[str]) -> None:
        for line in stream:
            out.append(line)
            if line.startswith('{"ready"'):
                ready.set()

    readers = [
        threading.Thread(target=read_out, args=(process.stdout,), daemon=True),
        threading.Thread(
            target=lambda: err.append(process.stderr.read() if process.stderr else ""), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + limit
    killed = hung = False
    if kill_after is not None:
        while not ready.wait(0.02) and process.poll() is None and time.monotonic() < deadline:
            pass
        if ready.is_set():
            try:
                process.wait(min(kill_after, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                killed = time.monotonic() < deadline
    if not killed:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            hung = True
    if killed or hung:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for reader in readers:
        reader.join(10)
    lines = [json.loads(line) for line in out if line.startswith("{")]
    return WorkerRun(None if killed else process.returncode, lines, "".join(err), killed, hung)


def soak(
    seconds: float, seed: int, work: Path, disk_faults: bool, cards: str, terminal_id: str = TERMINAL_ID
) -> int:
    if cards == "pcsc":
        from _harness import VPCD_READER, vpcd_slot

        print(f"soak: cards in pcscd's reader {VPCD_READER!r} (vpcd), read through PC/SC", flush=True)
        with vpcd_slot():
            return _soak(seconds, seed, work, disk_faults, cards, terminal_id)
    print("soak: cards in the in-process simulated reader (--cards sim: pcscd not used)", flush=True)
    return _soak(seconds, seed, work, disk_faults, cards, terminal_id)


def _soak(seconds: float, seed: int, work: Path, disk_faults: bool, cards: str, terminal_id: str) -> int:
    rng = random.Random(seed)
    data_dir = work / "terminal"
    data_dir.mkdir(parents=True)
    disk = Disk(data_dir, "16m") if disk_faults else None
    host: Host | None = None
    try:
        host = Host(work, _provision(data_dir), terminal_id)
        tally: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        ops: list[dict[str, Any]] = []
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
                done = _run_worker(
                    data_dir,
                    host.port,
                    rng.randrange(10**6),
                    rng.randint(2, 8),
                    cards=cards,
                    kill_after=kill_after,
                )
            tally[f"disk {disk_fault}"] += bool(disk_fault)
            for problem in tally_run(tally, errors, ops, done, disk_fault):
                print(f"soak: run {run} (disk fault {disk_fault}): {problem}\n{done.err}", flush=True)
        host.faults("")
        done = _run_worker(data_dir, host.port, 0, 0, cards=cards, final=True)
        finals = [line["final"] for line in done.lines if "final" in line]
        if done.code != 0 or not finals:
            print(f"soak: the final run failed ({done.code}):\n{done.err}", flush=True)
            return 1
        rows = host.rows()
        details: list[str] = []
        counts = reconcile(
            rows,
            finals[0],
            tally["crashes"],
            host.notices(),
            ops,
            every_kind=seconds >= 120,
            details=details,
        )
        for key in ("hung", "store_errors", "refused_at_start"):
            counts[key] += tally[key]
        for detail in details[:40]:
            print(f"soak: {detail}", flush=True)
        done_by_kind = succeeded(ops)
        print("soak: succeeded: " + ", ".join(f"{kind} {done_by_kind[kind]}" for kind in KINDS), flush=True)
        if errors:
            print("soak: errors: " + ", ".join(f"{name} {n}" for name, n in errors.most_common()), flush=True)
        print(
            f"soak: {seconds / 60:.1f} min, {tally['operations']} operations and "
            f"{tally['sign-ons']} sign-ons ({tally['signed on']} signed on) in {tally['runs']} runs "
            f"({tally['killed']} killed, {tally['host faults']} with host faults, "
            f"{tally['cards pulled']} cards pulled, {tally['pcsc cards']} cards read through PC/SC, "
            f"{tally['disk full']} disk full, {tally['disk read-only']} read-only, "
            f"{tally['unbalanced']} settlements unbalanced), "
            f"{len(rows)} requests booked by the host; "
            f"lost {counts['lost']}, applied twice {counts['applied_twice']}, "
            f"unacknowledged {counts['unacknowledged']}, mismatched {counts['mismatched']}, "
            f"pending {counts['pending']}, crashes {counts['crashes']}, hung {counts['hung']}, "
            f"doubled traces {counts['doubled_traces']}, idle {counts['idle']}, "
            f"unsettled {counts['unsettled']}, over-refunded {counts['over_refunded']}, "
            f"cash missing {counts['cash_missing']}, notices {counts['notices']}, "
            f"pulled approved {counts['pulled_approved']}, store errors {counts['store_errors']}, "
            f"refused at start {counts['refused_at_start']}, kinds never done {counts['kinds_never_done']}, "
            f"failures {counts['failures']} ({counts['failures_without_reason']} without a reason)",
            flush=True,
        )
        return 1 if any(counts[key] for key in BAD) else 0
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
    # the terminal registered at the host: another than the terminal's own proves an idle soak fails
    parser.add_argument("--terminal-id", default=TERMINAL_ID, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.command == "worker":
        timeout = FINAL_ANSWER_TIMEOUT if args.final else ANSWER_TIMEOUT
        return _worker(args.data, args.port, args.seed, args.operations, args.final, args.cards, timeout)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60
    print(f"soak: seed {args.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pos-soak-") as scratch:
        return soak(seconds, args.seed, Path(scratch), not args.no_disk_faults, args.cards, args.terminal_id)


if __name__ == "__main__":
    sys.exit(main())
