"""The README's `pos-txn` walkthrough, run as written against a real `pos-sim host`.

The blocks after ``<!-- walkthrough -->`` are run in order, by one bash, in a
scratch directory, with the console scripts of this interpreter's venv first
on PATH and PYTHONPATH at this checkout (so they run the code under test).
Two changes only: the host gets a free port instead of 5000, and each
`pos-txn` is told that port with ``--host``. Each command must exit with the
status its comment names (``# exits N``, else 0); each block after
``<!-- prints -->`` must match what the command before it printed, line by
line (``…`` stands for anything). Then the facts the walkthrough is about:
the sale and the void approved, the refunds and adjusts done, the settlement
balanced, the journal's types in order, the faulted sale reversed, and the
host's ledger equal to the terminal's journal in the fields they share.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
WALKTHROUGH = "<!-- walkthrough -->"
PRINTS = "<!-- prints -->"
README_PORT = "5000"
RUN_LIMIT_S = 90.0  # a bound for a hung host, not an expectation (the walkthrough takes ~15 s)

# The journal the walkthrough leaves: its requests, in order (cash refunds are never sent).
JOURNAL_TYPES = [
    "sale", "void", "sale", "refund", "sale", "adjust", "preauth", "completion", "sale",
]  # fmt: skip
SHARED_FIELDS = ("trace", "type", "amount", "status", "batch", "rrn", "auth_code")


@dataclass
class Step:
    command: str  # as the README has it, continuation lines joined, comment removed
    expected_status: int
    prints: list[str]  # the excerpt shown after it, if any
    status: int | None = None
    stdout: str = ""
    stderr: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"`{self.command}` did not print one JSON document:\n{self.stdout}{self.stderr}")

    def describe(self) -> str:
        return (
            f"`{self.command}` exited {self.status} (README: {self.expected_status})\n"
            f"--- stdout\n{self.stdout[-3000:]}--- stderr\n{self.stderr[-3000:]}"
        )


def _split_comment(line: str) -> tuple[str, str]:
    """The command and its trailing `# comment` (a # outside quotes, after a blank)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def _fenced_block(lines: list[str], start: int) -> tuple[list[str], int]:
    """The lines of the fenced block opening at or after `start`, and the index after it."""
    index = start
    while not lines[index].startswith("```"):
        if lines[index].strip():
            raise AssertionError(f"README.md line {index + 1}: a marker must be followed by a fenced block")
        index += 1
    end = index + 1
    while not lines[end].startswith("```"):
        end += 1
    return lines[index + 1 : end], end + 1


def parse_walkthrough(text: str) -> list[Step]:
    lines = text.splitlines()
    steps: list[Step] = []
    index = 0
    while index < len(lines):
        marker = lines[index].strip()
        if marker not in (WALKTHROUGH, PRINTS):
            index += 1
            continue
        block, index = _fenced_block(lines, index + 1)
        if marker == PRINTS:
            assert steps, "README.md: a prints block before any walkthrough command"
            assert not steps[-1].prints, f"README.md: two prints blocks after `{steps[-1].command}`"
            steps[-1].prints = block
            continue
        pending = ""
        for raw in block:
            command, comment = _split_comment(raw)
            if command.endswith("\\"):
                pending += command[:-1] + " "
                continue
            command = " ".join((pending + command).split()) if pending else command.strip()
            pending = ""
            if not command:
                continue
            found = re.search(r"\bexits (\d+)", comment)
            steps.append(Step(command, int(found.group(1)) if found else 0, []))
    return steps


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _with_port(command: str, port: int) -> str:
    command = command.replace(f"--port {README_PORT}", f"--port {port}")
    return re.sub(r"\bpos-txn\b", f"pos-txn --host 127.0.0.1:{port}", command)


def _environment(pycache: Path) -> dict[str, str]:
    """The console scripts next to this interpreter, importing this checkout; no POS_* from outside.

    Bytecode goes to `pycache` (outside the checkout), so the walkthrough compiles the firmware once.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_walkthrough(steps: list[Step], work: Path, records: Path) -> None:
    """Run every step in one bash (shell state, background host and fd 3 carry over); fill in results."""
    port = _free_port()
    script = ["cd " + str(work)]
    for number, step in enumerate(steps):
        base = records / str(number)
        script.append(
            f"{{ {_with_port(step.command, port)}\n}} </dev/null >{base}.out 2>{base}.err; echo $? >{base}.rc"
        )
    (records / "walkthrough.sh").write_text("\n".join(script) + "\n", encoding="utf-8")
    bash = subprocess.Popen(
        ["bash", str(records / "walkthrough.sh")],
        env=_environment(records / "pycache"),
        start_new_session=True,
    )
    try:
        bash.wait(timeout=RUN_LIMIT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(bash.pid, signal.SIGKILL)  # the host too, if the walkthrough did not stop it
        except ProcessLookupError:
            pass
        bash.wait()
    for number, step in enumerate(steps):
        base = records / str(number)
        if (base.with_suffix(".rc")).exists():
            step.status = int(base.with_suffix(".rc").read_text())
            step.stdout = base.with_suffix(".out").read_text(encoding="utf-8")
            step.stderr = base.with_suffix(".err").read_text(encoding="utf-8")


def _excerpt_matches(excerpt: str, printed: set[str]) -> bool:
    pattern = ".*".join(re.escape(part) for part in excerpt.split("…"))
    return any(re.fullmatch(pattern, line) for line in printed)


def _one(steps: list[Step], *words: str) -> Step:
    found = [step for step in steps if all(word in step.command for word in words)]
    assert len(found) == 1, f"the walkthrough should have one command with {words}, has {len(found)}"
    return found[0]


@dataclass
class Walkthrough:
    steps: list[Step]
    work: Path  # the scratch directory it ran in


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Walkthrough:
    steps = parse_walkthrough(README.read_text(encoding="utf-8"))
    assert steps, "README.md has no <!-- walkthrough --> block"
    assert sum(f"--port {README_PORT}" in step.command for step in steps) == 1
    assert not any("--host" in step.command for step in steps), "the test sets pos-txn --host itself"
    work, records = tmp_path_factory.mktemp("walkthrough"), tmp_path_factory.mktemp("records")
    run_walkthrough(steps, work, records)
    return Walkthrough(steps, work)


@pytest.fixture
def walkthrough(run: Walkthrough) -> list[Step]:
    return run.steps


def test_every_command_exits_as_the_readme_says(walkthrough: list[Step]) -> None:
    for step in walkthrough:
        assert step.status is not None, f"never ran (the walkthrough hung or stopped): {step.describe()}"
        assert step.status == step.expected_status, step.describe()


def test_every_excerpt_is_what_the_command_printed(walkthrough: list[Step]) -> None:
    for step in walkthrough:
        printed = {line.strip() for line in (step.stdout + step.stderr).splitlines()}
        for excerpt in step.prints:
            excerpt = excerpt.strip()
            if excerpt and excerpt not in ("...", "…"):
                assert _excerpt_matches(excerpt, printed), f"README shows {excerpt!r}; {step.describe()}"


def test_the_operations_do_what_the_walkthrough_says(walkthrough: list[Step]) -> None:
    assert _one(walkthrough, "pos-txn --plain sign-on").json()["approved"] is True
    sale = _one(walkthrough, "pos-txn --plain sale", "A1001").json()
    assert (sale["outcome"], sale["status"]) == ("APPROVED_ONLINE", "approved")
    void = _one(walkthrough, "pos-txn --plain void").json()
    assert (void["type"], void["status"]) == ("void", "approved")
    refund = _one(walkthrough, "pos-txn --plain refund", "--to card").json()
    assert (refund["type"], refund["status"]) == ("refund", "approved")
    assert refund["amount"] < _one(walkthrough, "pos-txn --plain sale", "A1002").json()["amount"]
    cash = _one(walkthrough, "--to cash").json()
    assert (cash["type"], cash["trace"], cash["status"]) == ("cash_refund", None, "approved")
    adjust = _one(walkthrough, "pos-txn --plain adjust").json()
    assert (adjust["type"], adjust["status"]) == ("adjust", "approved")
    completion = _one(walkthrough, "pos-txn --plain complete").json()
    assert (completion["type"], completion["status"]) == ("completion", "approved")
    settlement = _one(walkthrough, "pos-txn --plain settle").json()
    assert settlement["balanced"] is True
    assert settlement["new_batch"] == settlement["batch"] + 1
    faulted = _one(walkthrough, "pos-txn --plain sale", "A1004").json()
    assert (faulted["status"], faulted["reversal_pending"]) == ("reversed", False)


def test_the_journal_lists_the_requests_in_order(walkthrough: list[Step]) -> None:
    journal = next(s for s in walkthrough if s.command == "pos-txn --plain journal").json()
    # It is listed before the faulted sale, the last request of the walkthrough.
    assert [entry["type"] for entry in journal] == JOURNAL_TYPES[:-1]
    last4 = _one(walkthrough, "pos-txn --plain orders", "--last4").json()
    assert last4 and {entry["masked_pan"][-4:] for entry in last4} == {"0434"}


def test_the_host_ledger_is_the_terminal_journal(run: Walkthrough) -> None:
    # The journal as listed before the faults, and the faulted sale as `orders` shows it after.
    journal = next(s for s in run.steps if s.command == "pos-txn --plain journal").json()
    journal += _one(run.steps, "pos-txn --plain orders", "A1004").json()
    ledger = json.loads((run.work / "host-ledger.json").read_text(encoding="utf-8"))
    assert [entry["type"] for entry in journal] == JOURNAL_TYPES
    assert [entry["trace"] for entry in ledger] == [entry["trace"] for entry in journal]
    for ours, theirs in zip(journal, ledger, strict=True):
        if ours["rrn"] is not None:
            assert {f: ours[f] for f in SHARED_FIELDS} == {f: theirs[f] for f in SHARED_FIELDS}
            continue
        # No valid answer reached the terminal: it never learnt the RRN or the authorisation code.
        fields = ("trace", "type", "amount", "batch")
        assert {f: ours[f] for f in fields} == {f: theirs[f] for f in fields}
        assert (ours["status"], theirs["status"]) == ("reversed", "reversed")
