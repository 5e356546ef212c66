"""Outbox: the cost of one enqueue as the outbox grows, against a floor measured in the same run.

Measured: `Outbox.enqueue` (PAN check, Ed25519 signature, TinyDB update
through the store's document tables, crash-safe write of the whole file
under its lock) with 10, 100 and 1000 records already in the file. Floor:
a bare write of the same number of bytes to a temp file, fsync, rename
over, fsync of the directory (what any crash-safe write of that file costs
at least), timed right after each enqueue so both see the same disk and
load. The ratio says what the outbox adds; the growth of both with the file
size is why DESIGN keeps each TinyDB file small (settled batches are
rotated out of the open-batch file that holds the outbox: bench_book.py).

The files live under var/ (the repository's own disk, not a tmpfs), so fsync
is real.
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from _harness import REPO_ROOT

from firmware.keys.signing import RecordSigner, new_signing_key
from firmware.store.tables import DocumentTables
from firmware.txn.outbox import Outbox

SIZES = (10, 100, 1000)
SAMPLES = 15
PAYLOAD = {
    "type": "refund",
    "amount": 1250,
    "pan_masked": "622202*********3445",
    "original": {"trace": "000456", "date": "0315", "rrn": "123456789012"},
    "applicant": {"name": "Zhang San", "contact": "13800000000"},
}


def bare_replace(path: Path, data: bytes) -> None:
    """The floor: write, fsync, rename over, fsync the directory."""
    temp = path.with_name(f".{path.name}.floor.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, path)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def timed(action: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    signer = RecordSigner(new_signing_key(os.urandom))
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "var", prefix="bench-store-") as work:
        queue_path, floor_path = Path(work) / "open.json", Path(work) / "floor.json"
        queue = Outbox(DocumentTables(queue_path, datetime.now), signer, signer.public_key(), datetime.now)
        sign_s = statistics.median(timed(lambda: signer.sign_record(PAYLOAD))[0] for _ in range(200))
        print(f"Ed25519 signature of one record alone: {sign_s * 1e6:,.0f} us")
        print(f"{'records':>8} {'file KB':>8} {'enqueue ms':>11} {'floor ms':>9} {'x floor':>8}")
        first: tuple[float, float] | None = None
        filled = 0
        for size in SIZES:
            while filled < size:
                queue.enqueue("notice", PAYLOAD)
                filled += 1
            enqueue_times, floor_times = [], []
            for _ in range(SAMPLES):
                seconds, record_id = timed(lambda: queue.enqueue("notice", PAYLOAD))
                enqueue_times.append(seconds)
                data = queue_path.read_bytes()
                floor_times.append(timed(functools.partial(bare_replace, floor_path, data))[0])
                queue.acknowledge(str(record_id))  # back to `size` records
            enqueue_s, floor_s = statistics.median(enqueue_times), statistics.median(floor_times)
            first = first or (enqueue_s, floor_s)
            kilobytes = queue_path.stat().st_size / 1024
            print(f"{size:>8} {kilobytes:>8.1f} {enqueue_s * 1e3:>11.2f} {floor_s * 1e3:>9.2f} "
                  f"{enqueue_s / floor_s:>8.2f}")  # fmt: skip
        assert first is not None
        print(f"growth from {SIZES[0]} to {SIZES[-1]} records: enqueue x{enqueue_s / first[0]:.1f}, "
              f"floor x{floor_s / first[1]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
