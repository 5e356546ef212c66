"""What every fuzz target shares: the bounds each input runs under, the counts, mutated JSON.

A fuzz target (tests/test_fuzz_*.py, tests/test_emv_fuzz.py) hands each input to
`bounded(target, call)`, which runs it

- under a watchdog: an input that runs longer than `EXAMPLE_SECONDS` is a `Hang`
  (the alarm repeats, so code that swallows one exception cannot keep running);
- with its peak Python allocation measured (tracemalloc): above `EXAMPLE_MEGABYTES`
  it is a `MemoryBound` failure;
- letting out only the project's own errors: a `PosError` is an answer (its class
  name is returned and counted as a hypothesis event), anything else (ValueError,
  KeyError, IndexError, RecursionError, MemoryError...) fails the example.

`bounded_allowing(target, call, allowed)` is the same for a call whose acceptable
refusals are known: the result or the PosError raised, and any PosError not
among `allowed` fails the example (a StoreError where only a host fault may
come out is a finding, not an answer).

`read_whole_book(directory)` opens the book of `directory` the way the terminal
does and reads every table of its open batch through the book's own parsers;
`open_batch_file()` is a real open batch (an entry, an armed reversal, a
signed outbox record) as `txn/open.json` holds it.

`COUNTS` holds the inputs tried per target in this process (`./build.sh fuzz` prints
them). `fuzz_settings(n)` is the in-suite budget of a target: n examples, no
deadline (the watchdog bounds each one), times `FUZZ_SCALE` (environment) when
`./build.sh fuzz` runs the targets longer.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from firmware.errors import PosError
from tests.txn_fixtures import open_book, reversal, sale

__all__ = [
    "COUNTS",
    "EXAMPLE_MEGABYTES",
    "EXAMPLE_SECONDS",
    "FUZZ_SCALE",
    "Hang",
    "MemoryBound",
    "bounded",
    "bounded_allowing",
    "fuzz_settings",
    "json_values",
    "mutated_json",
    "mutated_text",
    "open_batch_file",
    "read_whole_book",
]

T = TypeVar("T")

FUZZ_SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLE_SECONDS = float(os.environ.get("FUZZ_EXAMPLE_SECONDS", "10"))
EXAMPLE_MEGABYTES = float(os.environ.get("FUZZ_EXAMPLE_MB", "64"))
COUNTS: Counter[str] = Counter()


class Hang(Exception):
    """An input that ran longer than its time bound (not a PosError: it fails the example)."""


class MemoryBound(Exception):
    """An input whose handling allocated more than its memory bound."""


def fuzz_settings(examples: int, **changes: Any) -> settings:
    """`examples` inputs in the suite (times FUZZ_SCALE for a long run), no deadline, no database."""
    return settings(
        max_examples=max(1, int(examples * FUZZ_SCALE)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **changes,
    )


@contextlib.contextmanager
def watchdog(seconds: float, what: str) -> Iterator[None]:
    """Raise Hang in this (main) thread after `seconds`, and every half second after that.

    Another SIGALRM user (pytest-timeout) gets its handler and what was left of its
    timer back afterwards. Off the main thread it only measures, after the fact.
    """
    start = time.monotonic()
    if threading.current_thread() is not threading.main_thread():
        yield
        if time.monotonic() - start > seconds:
            raise Hang(f"{what}: one input took {time.monotonic() - start:.1f} s (bound {seconds} s)")
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"{what}: one input ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:
            left = old_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), old_interval)


@contextlib.contextmanager
def memory_bound(megabytes: float, what: str) -> Iterator[None]:
    """MemoryBound when the Python allocations inside peak above `megabytes`."""
    nested = tracemalloc.is_tracing()
    if not nested:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not nested:
            tracemalloc.stop()
    if peak > megabytes * 1e6:
        raise MemoryBound(f"{what}: one input allocated {peak / 1e6:.0f} MB (bound {megabytes:.0f} MB)")


def bounded(target: str, call: Callable[[], T]) -> T | str:
    """Run one input of `target`: its result, or the name of the PosError it raised.

    Any other exception, a hang or an allocation above the bound fails the example.
    """
    COUNTS[target] += 1
    with watchdog(EXAMPLE_SECONDS, target), memory_bound(EXAMPLE_MEGABYTES, target):
        try:
            return call()
        except PosError as exc:
            name = type(exc).__name__
            event(f"{target}: {name}")
            return name


def bounded_allowing(target: str, call: Callable[[], T], allowed: tuple[type[PosError], ...]) -> T | PosError:
    """`bounded`, keeping the PosError raised: the result, or that error if it is one of `allowed`.

    Any other PosError fails the example (AssertionError, the error as its cause).
    """
    refused: list[PosError] = []

    def run() -> T:
        try:
            return call()
        except PosError as exc:
            refused.append(exc)
            raise

    outcome = bounded(target, run)
    if not refused:
        return outcome  # type: ignore[return-value]
    error = refused[0]
    if not isinstance(error, allowed):
        raise AssertionError(
            f"{target}: {type(error).__name__} is not an acceptable answer: {error}"
        ) from error
    return error


# ----- the books ------------------------------------------------------------------------------------------


def read_whole_book(directory: Path) -> int:
    """Open the book in `directory` (its opening validates every table), read each table again: a count."""
    book = open_book(directory)
    try:
        seen = len(book.open_entries()) + len(book.open_cash_refunds())
        seen += len(book.outbox.armed()) + len(book.outbox.pending()) + len(book.outbox.flagged()[1])
        seen += len(book.find(order="A2")) + len(book.outbox.set_aside())
        return seen + book.batch + (book.settling or 0)
    finally:
        book.close()


def open_batch_file() -> bytes:
    """The bytes of a real `open.json`: a pending sale, its armed reversal, a notice in the outbox."""
    with tempfile.TemporaryDirectory() as scratch:
        book = open_book(Path(scratch))
        trace = book.take_trace()
        book.record_request(sale(trace, book.batch, 5_000), reversal(trace, 5_000))
        book.outbox.enqueue("notice", {"order": "A2", "amount": 5_000, "type": "sale"})
        raw = book.path.read_bytes()
        book.close()
    return raw


# ----- JSON inputs ----------------------------------------------------------------------------------------

_ODD_TEXT = st.sampled_from(
    ["", "0", "-1", "00", "１２", "²", "٣", "\x00", "\ud7ff", "é", "中文", " 1", "1e3", "NaN", "x" * 300]
)
_ODD_NUMBERS = st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 0.5, -0.0, 1e308])
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | _ODD_NUMBERS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
    | _ODD_TEXT
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _slots(document: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document (a path of keys and indexes), the document itself first."""
    yield path
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _slots(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _slots(value, (*path, index))


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _changed(draw: Callable[[st.SearchStrategy[Any]], Any], value: Any) -> Any:
    """A near miss of `value`: the same kind a little off, or another kind altogether."""
    if isinstance(value, bool):
        return draw(st.sampled_from([not value, int(value), str(value).lower(), None]))
    if isinstance(value, int):
        return draw(
            st.sampled_from([value + 1, value - 1, -value, str(value), value / 3, value * 10**20, True])
        )
    if isinstance(value, str):
        if not value:
            return draw(st.sampled_from([" ", None, 0, []]))
        cut = draw(st.integers(0, len(value)))
        return draw(
            st.sampled_from(
                [
                    value[:cut],
                    value[:cut] + draw(st.text(min_size=1, max_size=3)) + value[cut:],
                    value * draw(st.integers(2, 50)),
                    value.upper(),
                    value.lower(),
                    value[:cut] + "１" + value[cut + 1 :],
                    int(value) if value.isascii() and value.isdigit() and len(value) < 50 else value + "0",
                ]
            )
        )
    if isinstance(value, list):
        if value and draw(st.booleans()):
            return value[:-1] if draw(st.booleans()) else [*value, copy.deepcopy(value[-1])]
        return draw(st.sampled_from([{}, None, "", []]))
    if isinstance(value, dict):
        return draw(st.sampled_from([[], None, "", {}]))
    return draw(json_values)


@st.composite
def mutated_json(draw: Callable[[st.SearchStrategy[Any]], Any], original: Any, max_changes: int = 4) -> Any:
    """`original` (a JSON document) with 1..max_changes near misses: values changed, keys dropped or added."""
    document = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, max_changes))):
        slots = list(_slots(document))
        path = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["change", "change", "replace", "drop", "add"]))
        if not path:
            if action == "replace":
                document = draw(json_values)
            continue
        parent, key = _get(document, path[:-1]), path[-1]
        if action == "change":
            parent[key] = _changed(draw, parent[key])
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.insert(key, draw(json_values))
    return document


@st.composite
def mutated_text(draw: Callable[[st.SearchStrategy[Any]], Any], original: bytes) -> bytes:
    """The bytes of `original` damaged: flipped, cut, spliced, or with hostile JSON put in."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.integers(0, 5))
        if action == 0 and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == 1:
            del data[at : at + draw(st.integers(1, 64))]
        elif action == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif action in (3, 4):  # where a value may start: after ':', '[' or ','
            starts = [i + 1 for i, byte in enumerate(data) if byte in b":[,"] or [at]
            at = draw(st.sampled_from(starts))
        if action == 3:
            depth = draw(st.sampled_from([50, 1000, 100_000]))
            data[at:at] = b"[" * depth + b"]" * depth * draw(st.integers(0, 1))
        elif action == 4:
            data[at:at] = draw(st.sampled_from([b"1" * 5000, b"1e99999", b"NaN", b"-Infinity", b'"\\ud800"']))
        elif action == 5:
            data = data[:at]
    return bytes(data)


def json_bytes(document: Any) -> bytes:
    """A document as a file would hold it (floats such as 1e308 stay, NaN never comes out of json_values)."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
