"""The fuzz targets reach what they name and judge what comes back (tests/fuzz_*.py, tests/test_*fuzz*.py).

- the atheris "books" target opens `open.json` as the Book does: counters that
  are not numbers are refused there, where the storage's generic JSON check
  lets them through;
- every atheris target takes its own last seed without a refusal, so the corpus
  starts past the first checks of its parser;
- `bounded_allowing` fails an example on a PosError its operation should not
  give (a StoreError where only a host fault may come out);
- the EMV targets take their example counts from `fuzz_settings`, so
  `./build.sh fuzz --scale X` scales them like the others.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware.errors import HostError, HostTimeoutError, StoreError, TamperedRecordError
from firmware.store.storage import CrashSafeStorage
from tests import test_emv_fuzz
from tests.fuzz_targets import FUZZ_SCALE, bounded, bounded_allowing, read_whole_book

INVALID_BOOK = b'{"meta": {"1": {"batch": "zzz", "next_trace": -5}}, "entries": {"1": {"trace": [1]}}}'


def test_counters_that_are_not_numbers_pass_the_storage_and_are_refused_by_the_book(tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    path.write_bytes(INVALID_BOOK)
    shape_only = CrashSafeStorage(path, lambda: datetime(2025, 6, 1, tzinfo=UTC)).read()
    assert shape_only["meta"]["1"]["batch"] == "zzz"
    with pytest.raises(StoreError, match="meta batch is not a number"):
        read_whole_book(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_every_atheris_target_takes_its_seed_and_the_books_target_reads_the_book() -> None:
    from tests.fuzz_atheris import TARGETS, seeds  # imported, not run: nothing is instrumented

    for target, run in TARGETS.items():
        run(seeds(target)[-1])  # no refusal: the corpus starts past the parser's first checks
    with pytest.raises(StoreError, match="meta batch is not a number"):
        TARGETS["books"](INVALID_BOOK)


def _store_fault() -> None:
    raise TamperedRecordError("record 1: signature does not verify")


def _host_fault() -> None:
    raise HostTimeoutError("no answer in time")


def test_an_error_the_operation_should_not_give_fails_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.fuzz_targets.event", lambda text: None)  # outside a hypothesis test
    assert bounded("harness", _store_fault) == "TamperedRecordError"  # bounded alone takes it as an answer
    assert isinstance(bounded_allowing("harness", _host_fault, (HostError,)), HostTimeoutError)
    with pytest.raises(AssertionError, match="TamperedRecordError is not an acceptable answer"):
        bounded_allowing("harness", _store_fault, (HostError,))


@pytest.mark.parametrize(
    ("test", "examples"),
    [
        (test_emv_fuzz.test_reading_path_only_raises_firmware_errors, 250),
        (test_emv_fuzz.test_random_answers_to_every_command, 150),
        (test_emv_fuzz.test_pos_emv_read_never_tracebacks, 100),
        (test_emv_fuzz.test_whole_transaction_with_a_faulty_card_only_raises_firmware_errors, 80),
    ],
)
def test_the_emv_targets_follow_the_fuzz_scale(test: object, examples: int) -> None:
    settings = test._hypothesis_internal_use_settings  # type: ignore[attr-defined]
    assert settings.max_examples == max(1, int(examples * FUZZ_SCALE))
    assert settings.database is None and settings.deadline is None
