"""The books under real kills: a child records, settles, refunds, acknowledges and rotates, and is SIGKILLed.

A fork server (one child process that imported everything once) forks a worker per round; the test
kills the worker with SIGKILL at a random moment, then opens the book itself and checks it against the
worker's log (a line appended after each call returned): no entry lost once its call returned, none
doubled, a reversal armed exactly while its request is pending, trace numbers never handed out again.
Files are read as plain JSON beside the book's own reader. A worker that ends its work waits to be
killed, so the pid the test kills is always its own child's.

A second test cuts the power (tests/power_cut.py) before each durable step of a settlement in turn:
the book opens on the old batch or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware.txn.model import TxnStatus
from tests.power_cut import ARM_POWER_CUT
from tests.txn_fixtures import open_book, sale

REPO = Path(__file__).resolve().parent.parent
ROUNDS = 50

FORK_SERVER = """
import os, random, signal, sys
from datetime import timedelta
from pathlib import Path
from firmware.txn.model import TxnStatus
from tests.txn_fixtures import Clock, open_book, refund_of, reversal, sale

directory, log_path = Path(sys.argv[1]), sys.argv[2]

def work(seed):
    rng = random.Random(seed)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def note(*words):
        os.write(log, (" ".join(str(w) for w in words) + "\\n").encode())

    book = open_book(directory, Clock(step=timedelta(seconds=7)))
    sales = []
    for n in range(400):
        with book.transaction():
            trace = book.take_trace()
            book.record_request(sale(trace, book.batch), reversal(trace))
        note("R", trace)
        if rng.random() < 0.8:
            book.settle_request(trace, TxnStatus.APPROVED, rrn=f"{trace:012d}")
            note("S", trace)
            sales.append(book.entry(trace))
        if sales and rng.random() < 0.3:
            original = sales[-1]
            with book.transaction():
                refund = refund_of(original, book.take_trace(), book.batch, 100)
                done = book.record_reverse(refund, notice={"amount": 100, "order": original.order})
            note("V", refund.trace, done.notice_id)
        if rng.random() < 0.2:
            first = book.outbox.pending()[:1]
            if first:
                book.outbox.acknowledge(first[0].id)
                note("A", first[0].id)
        if rng.random() < 0.1:
            old = book.batch
            book.close_batch(old + 1)
            sales = []
            note("C", old, old + 1)
    note("END")

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            work(int(line))
        finally:
            signal.pause()  # wait for the kill: the pid stays this worker's until the test kills it
            os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(status, flush=True)
"""


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    directory, log = tmp_path / "txn", tmp_path / "worker.log"
    server = subprocess.Popen(
        [sys.executable, "-c", FORK_SERVER, str(directory), str(log)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield server, directory, log
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)


def everything_on_disk(directory: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every journal entry (open file and archives) and the open file, read as plain JSON."""
    state = json.loads((directory / "open.json").read_bytes())
    entries = list(state.get("entries", {}).values())
    for archive in sorted((directory / "batches").glob("batch-??????.json")):
        entries += json.loads(archive.read_bytes())["entries"]
    return entries, state


def test_sigkill_at_random_moments_loses_doubles_and_reuses_nothing(
    fork_server: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    server, directory, log = fork_server
    assert server.stdin is not None and server.stdout is not None
    rng = random.Random(20260314)
    known: set[int] = set()  # traces of entries on disk after some round: durable, must stay
    acknowledged: set[str] = set()
    adopted: set[str] = set()  # notices on disk whose call the kill kept out of the log
    ended, started = 0, time.monotonic()
    for round_number in range(ROUNDS):
        server.stdin.write(f"{round_number}\n")
        server.stdin.flush()
        pid = int(server.stdout.readline())
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(pid, signal.SIGKILL)
        status = int(server.stdout.readline())  # reaped by the server
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        lines = [line.split() for line in log.read_text().splitlines()]
        ended += sum(1 for words in lines if words == ["END"])

        book = open_book(directory)  # finishes a rotation the kill cut short
        entries, state = everything_on_disk(directory)
        traces = [entry["trace"] for entry in entries]
        assert len(traces) == len(set(traces)), f"round {round_number}: an entry is doubled"
        recorded = {int(w[1]) for w in lines if w[0] in ("R", "V")}
        assert recorded <= set(traces), f"round {round_number}: lost {sorted(recorded - set(traces))}"
        assert known <= set(traces), f"round {round_number}: lost {sorted(known - set(traces))}"
        assert len(set(traces) - recorded - known) <= 1, f"round {round_number}: entries from nowhere"
        known = set(traces)

        by_trace = {entry["trace"]: entry for entry in entries}
        for words in lines:
            if words[0] == "S":
                assert by_trace[int(words[1])]["status"] == "approved"
        armed = {int(key) for key in state.get("reversals", {})}
        pending_sales = {e["trace"] for e in state.get("entries", {}).values()
                         if e["status"] == "pending" and e["type"] == "sale"}  # fmt: skip
        assert armed == pending_sales, f"round {round_number}: a reversal armed apart from its request"
        assert state["meta"]["1"]["next_trace"] > max(traces, default=0)  # never handed out again

        acknowledged |= {w[1] for w in lines if w[0] == "A"}
        queued = {w[2] for w in lines if w[0] == "V"}
        in_outbox = {doc["record"]["id"] for doc in state.get("outbox", {}).values()}
        unlogged = in_outbox - queued - adopted
        assert len(unlogged) <= 1, f"round {round_number}: notices from nowhere {unlogged}"
        adopted |= unlogged
        missing = queued - in_outbox - acknowledged
        assert len(missing) <= 1, f"round {round_number}: notices lost {missing}"
        acknowledged |= missing  # an acknowledgement the kill kept out of the log
        for words in lines:
            if words[0] == "C":
                assert (directory / "batches" / f"batch-{int(words[1]):06d}.json").exists()
                assert book.batch >= int(words[2])
        assert book.open_entries() is not None and book.outbox.armed() is not None  # every document reads
        book.close()
    batches = len(list((directory / "batches").glob("batch-??????.json")))
    print(f"{ROUNDS} kills in {time.monotonic() - started:.1f} s: {len(known)} entries, {batches} batches, "
          f"{ended} workers ended first")  # fmt: skip
    assert len(known) > ROUNDS  # the kills landed in the middle of real work


SETTLE_THEN_CUT = (
    ARM_POWER_CUT
    + """
import sys
from pathlib import Path
from tests.txn_fixtures import open_book, sale
book = open_book(Path(sys.argv[2]))
arm_power_cut(int(sys.argv[1]))
book.close_batch(2)
"""
)


def test_a_power_cut_before_any_durable_step_of_a_settlement_leaves_one_batch_or_the_next(
    tmp_path: Path,
) -> None:
    outcomes = []
    for cut_at in range(1, 40):
        directory = tmp_path / f"cut{cut_at}"
        book = open_book(directory)
        for _ in range(3):
            with book.transaction():
                trace = book.take_trace()
                book.record_request(sale(trace, 1))
                book.settle_request(trace, TxnStatus.APPROVED)
        book.outbox.enqueue("notice", {"amount": 1})
        result = subprocess.run(
            [sys.executable, "-c", SETTLE_THEN_CUT, str(cut_at), str(directory)],
            cwd=REPO, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode in (0, 137), result.stderr
        reopened = open_book(directory)
        entries, _ = everything_on_disk(directory)
        assert sorted(entry["trace"] for entry in entries) == [1, 2, 3], f"cut before step {cut_at}"
        assert len(reopened.outbox.pending()) == 1
        archived = (directory / "batches" / "batch-000001.json").exists()
        assert reopened.batch == (2 if archived else 1), f"cut before step {cut_at}"
        assert sorted(e.trace for e in reopened.find()) == [1, 2, 3]
        outcomes.append((result.returncode, reopened.batch))
        if result.returncode == 0:
            break
    assert (137, 1) in outcomes and (137, 2) in outcomes and outcomes[-1] == (0, 2)
