"""The soak's counts (bench/soak.py): each terminal run's lines tallied, and the acquirer's books
held against the terminal's at the end. Pure functions over what the runs printed and the files the
simulated acquirer kept, so that each check can be shown to catch what it is for
(tests/test_soak_books.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["BAD", "KINDS", "WorkerRun", "notice_reference_of", "reconcile", "succeeded", "tally_run"]


@dataclass(frozen=True)
class WorkerRun:
    """How a terminal run ended: its exit code (None: killed as planned), its lines and standard error."""

    code: int | None
    lines: list[dict[str, Any]]
    err: str
    killed: bool = False  # the planned kill, at a random moment after the terminal was open
    hung: bool = False  # no end within the time limit: killed, and a crash


def tally_run(
    tally: Counter[str],
    errors: Counter[str],
    ops: list[dict[str, Any]],
    run: WorkerRun,
    disk_fault: str | None,
) -> list[str]:
    """Count one run's lines; what went wrong in it: crashes, hangs, store errors with no disk fault."""
    problems = []
    tally["runs"] += 1
    tally["killed"] += run.killed
    for line in run.lines:
        if "op" in line:
            ops.append(line)
            tally["operations"] += 1
            tally["cards pulled"] += bool(line.get("pulled"))
            tally["pcsc cards"] += line.get("reader") == "pcsc"
            tally["unbalanced"] += line["op"] == "settle" and line.get("balanced") is False
        elif "sign-on" in line:
            tally["sign-ons"] += 1
            tally["signed on"] += bool(line["sign-on"])
        elif "failed" in line or "refused" in line:
            tally["refused"] += 1
            errors[line.get("error", "?")] += 1
            if disk_fault is None and "refused" in line:
                tally["refused_at_start"] += 1
                problems.append(f"refused at start-up with no disk fault: {line['refused']}")
            elif disk_fault is None and line.get("store"):
                tally["store_errors"] += 1
                problems.append(f"store error with no disk fault: {line['failed']}")
    if run.hung:
        tally["hung"] += 1
        problems.append("hung: no end within its time limit")
    elif run.code not in (None, 0, 3) or "Traceback" in run.err:
        tally["crashes"] += 1
        problems.append(run.err.strip().splitlines()[-1] if run.err.strip() else f"exit {run.code}")
    if run.code == 3 and disk_fault is None and not any("refused" in line for line in run.lines):
        tally["refused_at_start"] += 1  # exit 3 with no refusal line
        problems.append("exit 3 at start-up with no disk fault")
    return problems


KINDS = ("sale", "preauth", "complete", "void", "refund", "cash", "adjust", "settle")
BAD = (
    "lost",
    "applied_twice",
    "doubled_traces",
    "unacknowledged",
    "mismatched",
    "pending",
    "crashes",
    "hung",
    "idle",
    "unsettled",
    "over_refunded",
    "cash_missing",
    "notices",
    "pulled_approved",
    "store_errors",
    "refused_at_start",
    "kinds_never_done",
    "failures_without_reason",
)


def reconcile(
    rows: list[dict[str, Any]],
    final: dict[str, Any],
    crashes: int,
    notices: list[dict[str, Any]] | None = None,
    ops: list[dict[str, Any]] | None = None,
    *,
    every_kind: bool = False,
    details: list[str] | None = None,
) -> dict[str, int]:
    """The host's ledger and notices against the terminal's final journal, cash refunds and settlement.

    `rows`: the ledger rows of the terminal; `notices`: the notices it uploaded; `ops`: the operation
    lines of every run. Returns the counts (`BAD` names those that must be 0); `details` gets why.
    `every_kind`: each kind of operation (`KINDS`) must have succeeded at least once.
    """
    from firmware.txn.notice import notice_reference

    notices = notices or []
    ops = ops or []
    why = details if details is not None else []
    journal = final["journal"]
    cash = final.get("cash_refunds", [])
    counts: Counter[str] = Counter({key: 0 for key in BAD})
    by_trace: dict[int, list[dict[str, Any]]] = {}
    for entry in journal:
        by_trace.setdefault(entry["trace"], []).append(entry)
    in_batch = Counter((entry["batch"], entry["trace"]) for entry in journal)
    for (batch, trace), n in in_batch.items():
        if n > 1:
            counts["doubled_traces"] += n - 1
            why.append(f"trace {trace} is {n} times in the journal's batch {batch}")
    ledger_traces = Counter(row["trace"] for row in rows)
    ledger: dict[int, dict[str, Any]] = {}
    for booked in rows:
        ledger.setdefault(booked["trace"], booked)
    for trace, n in ledger_traces.items():
        if n > 1:
            counts["applied_twice"] += n - 1
            why.append(f"the host booked trace {trace} {n} times")
    rrns = Counter(entry["rrn"] for entry in journal if entry["rrn"])
    for rrn, n in rrns.items():
        if n > 1:
            counts["applied_twice"] += n - 1
            why.append(f"RRN {rrn} is on {n} journal entries")
    for entry in journal:
        trace, status = entry["trace"], entry["status"]
        row = ledger.get(trace)
        if status in ("approved", "voided"):
            if row is None:
                counts["lost"] += 1
                why.append(f"trace {trace}: {status} in the journal, not at the host")
            elif (row["type"], row["amount"], row["status"], row["rrn"], row["batch"]) != (
                entry["type"],
                entry["amount"],
                status,
                entry["rrn"],
                entry["batch"],
            ):
                counts["mismatched"] += 1
                why.append(f"trace {trace}: host {row}, journal {entry['type']} {entry['amount']} {status} "
                           f"RRN {entry['rrn']} batch {entry['batch']}")  # fmt: skip
        elif status == "reversed":
            if row is not None and row["status"] != "reversed":
                counts["mismatched"] += 1
                why.append(f"trace {trace}: reversed in the journal, {row['status']} at the host")
        elif status in ("declined", "failed"):
            if row is not None and row["status"] != "reversed":
                counts["lost"] += 1  # the host moved money the terminal says did not move
                why.append(f"trace {trace}: {status} in the journal, {row['status']} at the host")
        else:
            counts["pending"] += 1
            why.append(f"trace {trace}: still {status}")
    for trace in ledger:
        if trace not in by_trace:
            counts["lost"] += 1
            why.append(f"trace {trace}: booked by the host, not in the journal")
    queue = final["queue"]
    counts["unacknowledged"] = len(queue["waiting"]) + len(queue["flagged"]) + len(queue["set_aside"])
    counts["crashes"] = crashes
    # the final settlement: balanced, and nothing left over on the way there
    settlement = final.get("settlement")
    if settlement is None or not settlement.get("balanced"):
        counts["unsettled"] += 1
        why.append(f"the final settlement: {settlement}")
    counts["unsettled"] += len(final.get("problems", []))
    why.extend(f"while settling up: {problem}" for problem in final.get("problems", []))
    # refunds, to the card and in cash, at most the sale's (adjusted) amount
    refunded: Counter[tuple[int, int]] = Counter()
    adjusted: dict[tuple[int, int], int] = {}
    for entry in journal:
        original = (entry.get("original_batch"), entry.get("original_trace"))
        if None in original or entry["status"] != "approved":
            continue
        if entry["type"] == "refund":
            refunded[original] += entry["amount"]
        elif entry["type"] == "adjust":
            adjusted[original] = entry["amount"]
    for refund in cash:
        refunded[(refund["original_batch"], refund["original_trace"])] += refund["amount"]
    sales = {(e["batch"], e["trace"]): e for e in journal if e["type"] == "sale"}
    for original, total in refunded.items():
        sale = sales.get(original)
        ceiling = adjusted.get(original, sale["amount"]) if sale else 0
        if total > ceiling:
            counts["over_refunded"] += 1
            why.append(f"sale {original} (batch, trace) of {ceiling} refunded {total}")
    # every cash refund done is stored
    stored = {refund["reference"] for refund in cash}
    for op in ops:
        if op["op"] == "cash" and op.get("ok") and op.get("reference") not in stored:
            counts["cash_missing"] += 1
            why.append(f"cash refund {op.get('reference')} done, not stored")
    # every notice the journal owes went up, once: cash refunds, and approved voids, refunds, tip
    # adjusts and completions (a completion's notice is an amount adjustment notice)
    owed = stored | {
        notice_reference(e["batch"], e["trace"]) for e in journal
        if e["status"] == "approved" and e["type"] in ("void", "refund", "adjust", "completion")
    }  # fmt: skip
    uploaded = Counter(notice_reference_of(notice) for notice in notices)
    for reference in sorted(owed - set(uploaded)):
        counts["notices"] += 1
        why.append(f"notice {reference} owed, never uploaded")
    for reference, n in sorted(uploaded.items(), key=str):
        if reference not in owed:
            counts["notices"] += 1
            known = [f"{e['type']} {e['status']}" for e in journal if e["trace"] == int(reference[-6:] or 0)]
            why.append(f"notice {reference} uploaded, not owed (journal: {known})")
        if n > 1:
            counts["notices"] += n - 1
            why.append(f"notice {reference} uploaded {n} times")
    # a card pulled before the second GENERATE AC: never approved
    for op in ops:
        if op.get("pulled") and op.get("trace") is not None:
            statuses = [entry["status"] for entry in by_trace.get(op["trace"], [])]
            if not statuses or any(s not in ("reversed", "declined", "failed") for s in statuses):
                counts["pulled_approved"] += 1
                why.append(f"trace {op['trace']}: card pulled before the second GENERATE AC, now {statuses}")
    # work was done: the host booked, a sale was approved, and (long soaks) every kind succeeded once
    done_by_kind = succeeded(ops)
    sold = any(e["type"] == "sale" and e["status"] in ("approved", "voided") for e in journal)
    if not rows or not sold:
        counts["idle"] = 1
        why.append(f"idle: {len(rows)} requests booked by the host, a sale approved: {sold}")
    if every_kind:
        never = [kind for kind in KINDS if not done_by_kind[kind]]
        counts["kinds_never_done"] = len(never)
        if never:
            why.append(f"never succeeded: {', '.join(never)}")
    failures = [e for e in journal if e["status"] in ("declined", "failed", "reversed")]
    counts["failures"] = len(failures)
    counts["failures_without_reason"] = sum(
        1 for e in failures if not (e["status_reason"] or e["response_code"])
    )
    return dict(counts)


def notice_reference_of(notice: dict[str, Any]) -> str:
    record = notice.get("record", {})
    payload = record.get("payload", record)
    return str(payload.get("reference"))


def succeeded(ops: list[dict[str, Any]]) -> Counter[str]:
    """How many operations of each kind (`KINDS`) succeeded."""
    done: Counter[str] = Counter({kind: 0 for kind in KINDS})
    for op in ops:
        done[op["op"]] += bool(op.get("ok"))
    return done
