"""The soak's counts (bench/soak_books.py, as bench/soak.py uses them): crafted ledgers, journals,
cash refunds, notices and runs.

Each test breaks one thing the soak must catch and checks the count that names it.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_soak() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("soak_under_test", ROOT / "bench" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


soak = _load_soak()
TERMINAL = "TERM0001"


def _entry(trace: int, kind: str, amount: int, status: str = "approved", **more: Any) -> dict[str, Any]:
    entry = {
        "trace": trace,
        "type": kind,
        "amount": amount,
        "status": status,
        "rrn": f"R{trace:011d}" if status in ("approved", "voided") else "",
        "batch": 1,
        "status_reason": "",
        "response_code": "00",
        "original_batch": None,
        "original_trace": None,
    }
    return {**entry, **more}


def _row(entry: dict[str, Any], **more: Any) -> dict[str, Any]:
    row = {key: entry[key] for key in ("trace", "type", "amount", "status", "rrn", "batch")}
    return {"terminal": TERMINAL, "auth_code": "123456", **row, **more}


def _notice(reference: str) -> dict[str, Any]:
    return {"terminal": TERMINAL, "batch": 1, "received": "", "record": {"payload": {"reference": reference}}}


def _cash(number: int, amount: int, original_trace: int) -> dict[str, Any]:
    return {
        "reference": f"C000001{number:06d}",
        "amount": amount,
        "order": "S1-0",
        "original_batch": 1,
        "original_trace": original_trace,
    }


class Books:
    """Books that balance: a sale of 5000 tipped to 5100, refunded 100 to the card and 500 in cash."""

    def __init__(self) -> None:
        sale = _entry(1, "sale", 5_000)
        adjust = _entry(2, "adjust", 5_100, original_batch=1, original_trace=1)
        refund = _entry(3, "refund", 100, original_batch=1, original_trace=1)
        self.journal = [sale, adjust, refund]
        self.rows = [_row(sale), _row(adjust), _row(refund)]
        self.cash = [_cash(1, 500, 1)]
        self.notices = [_notice("N000001000002"), _notice("N000001000003"), _notice("C000001000001")]
        self.settlement: dict[str, Any] | None = {"batch": 1, "balanced": True, "new_batch": 2}
        self.problems: list[str] = []
        self.ops: list[dict[str, Any]] = [
            {"op": "sale", "ok": True, "status": "approved", "trace": 1, "pulled": False, "reader": "sim"},
            {"op": "adjust", "ok": True, "status": "approved", "trace": 2},
            {"op": "refund", "ok": True, "status": "approved", "trace": 3},
            {"op": "cash", "ok": True, "reference": "C000001000001"},
        ]

    def check(self, *, every_kind: bool = False) -> dict[str, int]:
        final = {
            "journal": copy.deepcopy(self.journal),
            "cash_refunds": copy.deepcopy(self.cash),
            "queue": {"waiting": [], "flagged": [], "set_aside": [], "pending_requests": []},
            "settlement": self.settlement,
            "problems": self.problems,
        }
        counts: dict[str, int] = soak.reconcile(
            copy.deepcopy(self.rows), final, 0, self.notices, self.ops, every_kind=every_kind
        )
        return counts

    def bad(self, **kwargs: bool) -> dict[str, int]:
        return {key: n for key, n in self.check(**kwargs).items() if key in soak.BAD and n}


def test_books_that_balance_are_clean() -> None:
    assert Books().bad() == {}


# ----- a soak that did nothing fails; sign-ons are not operations; every kind in a long soak ----------------


def test_nothing_booked_is_idle() -> None:
    books = Books()
    books.journal, books.rows, books.cash, books.notices, books.ops = [], [], [], [], []
    assert books.bad() == {"idle": 1}


def test_no_sale_approved_is_idle() -> None:
    books = Books()
    declined = _entry(1, "sale", 5_000, "declined", response_code="51")
    preauth = _entry(2, "preauth", 1_000)
    books.journal, books.rows, books.cash, books.notices = [declined, preauth], [_row(preauth)], [], []
    books.ops = [{"op": "sale", "ok": False, "status": "declined", "trace": 1}]
    assert books.bad() == {"idle": 1}


def test_sign_ons_are_counted_apart_from_operations() -> None:
    tally: Counter[str] = Counter()
    lines = [
        {"ready": True},
        {"sign-on": False},
        {"sign-on": True},
        {"op": "drain", "ok": True, "waiting": 0},
    ]
    soak.tally_run(tally, Counter(), [], soak.WorkerRun(0, lines, ""), None)
    assert (tally["operations"], tally["sign-ons"], tally["signed on"]) == (1, 2, 1)


def test_a_long_soak_fails_when_a_kind_never_succeeded() -> None:
    books = Books()
    assert books.bad() == {}
    never = {"preauth", "complete", "void", "settle"}
    assert books.bad(every_kind=True) == {"kinds_never_done": len(never)}
    assert {kind for kind, n in soak.succeeded(books.ops).items() if not n} == never


# ----- hung runs, and kills after the terminal is open ------------------------------------------------------


def _fake_worker(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    monkeypatch.setattr(soak, "_worker_command", lambda *args: [sys.executable, "-c", code])


def test_a_run_that_does_not_end_is_hung_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(monkeypatch, "import time; print('{\"ready\": true}', flush=True); time.sleep(60)")
    started = time.monotonic()
    run = soak._run_worker(Path("/nonexistent"), 1, 0, 3, cards="sim", kill_after=None, limit=1.0)
    assert time.monotonic() - started < 10
    assert (run.killed, run.hung) == (False, True)
    tally: Counter[str] = Counter()
    problems = soak.tally_run(tally, Counter(), [], run, None)
    assert (tally["killed"], tally["hung"]) == (0, 1), tally
    assert problems and "hung" in problems[0]


def test_the_kill_comes_after_the_terminal_said_it_is_open(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(
        monkeypatch,
        "import time; time.sleep(1.0); print('{\"ready\": true}', flush=True); time.sleep(0.3); "
        'print(\'{"op": "drain", "ok": true}\', flush=True); time.sleep(60)',
    )
    started = time.monotonic()
    run = soak._run_worker(Path("/nonexistent"), 1, 0, 3, cards="sim", kill_after=0.6, limit=30)
    elapsed = time.monotonic() - started
    assert (run.code, run.killed, run.hung) == (None, True, False)
    assert run.lines == [{"ready": True}, {"op": "drain", "ok": True}]
    assert 1.5 <= elapsed < 10


def test_a_run_refused_before_it_is_open_is_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_worker(monkeypatch, 'import sys; print(\'{"refused": "StoreError: x"}\'); sys.exit(3)')
    run = soak._run_worker(Path("/nonexistent"), 1, 0, 3, cards="sim", kill_after=5.0, limit=30)
    assert (run.code, run.killed, run.hung) == (3, False, False)


# ----- cash refunds, refund ceilings, notices ---------------------------------------------------------------


def test_cash_refunds_above_the_sale_are_caught() -> None:
    books = Books()
    books.cash.append(_cash(2, 4_600, 1))  # 100 + 500 + 4600 = 5200 > 5100
    books.notices.append(_notice("C000001000002"))
    assert books.bad() == {"over_refunded": 1}


def test_the_ceiling_is_the_adjusted_amount() -> None:
    books = Books()
    books.cash.append(_cash(2, 4_500, 1))  # 5100 in all: the tipped amount, not more
    books.notices.append(_notice("C000001000002"))
    assert books.bad() == {}
    books.journal[1]["status"] = "declined"  # no tip after all: 5000 is the ceiling
    books.journal[1]["rrn"] = ""
    books.rows = [row for row in books.rows if row["trace"] != 2]
    books.notices = [n for n in books.notices if n["record"]["payload"]["reference"] != "N000001000002"]
    assert books.bad() == {"over_refunded": 1}


def test_a_cash_refund_done_and_not_stored_is_caught() -> None:
    books = Books()
    books.ops.append({"op": "cash", "ok": True, "reference": "C000001000002"})
    assert books.bad() == {"cash_missing": 1}


def test_notices_owed_go_up_exactly_once() -> None:
    books = Books()
    books.notices = books.notices[1:]  # the tip adjust's notice never went up
    assert books.bad() == {"notices": 1}
    books = Books()
    books.notices.append(_notice("C000001000001"))  # the cash refund's notice twice
    assert books.bad() == {"notices": 1}
    books = Books()
    books.notices.append(_notice("N000001000009"))  # a notice for nothing in the journal
    assert books.bad() == {"notices": 1}


# ----- the final settlement, and the batch of each request --------------------------------------------------


@pytest.mark.parametrize("settlement", [None, {"batch": 1, "balanced": False, "new_batch": 2}])
def test_the_final_settlement_must_balance(settlement: dict[str, Any] | None) -> None:
    books = Books()
    books.settlement = settlement
    assert books.bad() == {"unsettled": 1}


def test_problems_settling_up_are_counted() -> None:
    books = Books()
    books.problems = ["settle: SettlementError: the host refused the settlement (96)"]
    assert books.bad() == {"unsettled": 1}


def test_the_batch_of_a_request_must_match_the_host() -> None:
    books = Books()
    books.rows[0]["batch"] = 2
    assert books.bad() == {"mismatched": 1}


# ----- a card pulled before the second GENERATE AC ----------------------------------------------------------


@pytest.mark.parametrize(("status", "bad"), [("approved", 1), ("reversed", 0), ("declined", 0)])
def test_a_pulled_card_is_never_approved(status: str, bad: int) -> None:
    books = Books()
    pulled = _entry(4, "sale", 1_234, status, status_reason="card removed" if status != "approved" else "")
    books.journal.append(pulled)
    if status == "approved":
        books.rows.append(_row(pulled))
    books.ops.append(
        {"op": "sale", "ok": False, "status": status, "trace": 4, "pulled": True, "reader": "sim"}
    )
    assert books.bad() == ({"pulled_approved": 1} if bad else {})


# ----- store errors with no disk fault ----------------------------------------------------------------------


def test_store_errors_count_only_without_a_disk_fault() -> None:
    lines = [
        {"ready": True},
        {"failed": "DamagedStoreError: open.json", "error": "DamagedStoreError", "store": True},
        {"failed": "HostTimeoutError: no answer", "error": "HostTimeoutError", "store": False},
    ]
    for disk_fault, bad in ((None, 1), ("full", 0), ("read-only", 0)):
        tally: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        problems = soak.tally_run(tally, errors, [], soak.WorkerRun(0, lines, ""), disk_fault)
        assert (tally["store_errors"], len(problems)) == (bad, bad), disk_fault
        assert errors == Counter(DamagedStoreError=1, HostTimeoutError=1)


def test_a_refusal_at_start_up_counts_without_a_disk_fault() -> None:
    lines = [{"refused": "TamperedRecordError: x", "error": "TamperedRecordError", "store": True}]
    for disk_fault, bad in ((None, 1), ("full", 0)):
        tally: Counter[str] = Counter()
        soak.tally_run(tally, Counter(), [], soak.WorkerRun(3, lines, ""), disk_fault)
        assert tally["refused_at_start"] == bad


# ----- cards read through PC/SC -----------------------------------------------------------------------------


def test_cards_read_through_pcsc_are_counted() -> None:
    lines = [
        {"op": "sale", "ok": True, "status": "approved", "trace": 1, "pulled": False, "reader": "pcsc"},
        {"op": "preauth", "ok": False, "status": "reversed", "trace": 2, "pulled": True, "reader": "pcsc"},
        {"op": "drain", "ok": True, "waiting": 0},
    ]
    tally: Counter[str] = Counter()
    ops: list[dict[str, Any]] = []
    soak.tally_run(tally, Counter(), ops, soak.WorkerRun(0, lines, ""), None)
    assert (tally["pcsc cards"], tally["cards pulled"], len(ops)) == (2, 1, 3)


# ----- a trace twice in a batch -----------------------------------------------------------------------------


def test_a_trace_twice_in_a_batch_is_caught() -> None:
    books = Books()
    books.journal.insert(0, _entry(1, "sale", 100, "declined", response_code="51"))
    assert books.bad()["doubled_traces"] == 1  # (and lost: the host booked what one of them declined)
