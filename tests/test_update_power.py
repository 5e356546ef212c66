"""Killed at every step: an install, a boot that rolls back, a mark-good, the data migrations.

A child process does the operation and SIGKILLs itself just before the n-th
call that makes something durable or moves a name (fsync, rename, link,
symlink, unlink, mkdir, rmdir), for n = 1, 2, ... until one run gets through.
After each kill the test starts the terminal as systemd would (`boot`) and
checks: the slot started is complete (every file as its manifest says), the
old slot still starts or the new one starts on trial with the old one behind
it, and the data directory is intact. (Mender's state-machine tests kill
the client in every state in the same way.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware.update.manifest import Version
from firmware.update.migrations import applied_migrations, run_migrations
from firmware.update.slots import boot, install, status
from firmware.update.trust import load_trusted_keys
from tests.flash_fixtures import (
    PRODUCTION,
    TARGET,
    TEST_MIGRATIONS,
    build,
    make_queue,
    slot_intact,
    small_source,
    tree_digest,
    trust,
)

REPO = Path(__file__).resolve().parent.parent
MAX_STEPS = 400

KILL_AT_STEP = """
import os, signal, sys

def kill_before(cut_at):
    calls = [0]

    def wrap(function):
        def call(*args, **kwargs):
            calls[0] += 1
            if calls[0] == cut_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)
        return call

    for name in ("fsync", "rename", "replace", "link", "symlink", "unlink", "mkdir", "rmdir"):
        setattr(os, name, wrap(getattr(os, name)))

kill_before(int(sys.argv[1]))
"""


def run_killed(script: str, step: int, *args: str) -> bool:
    """Run `script` killed before durable call `step`; True when it got through (no kill)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", KILL_AT_STEP + script, str(step), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 0:
        assert "DONE" in done.stdout
        return True
    assert done.returncode == -9, done.stderr
    return False


def every_step(script: str, prepare: Callable[[], list[str]], check: Callable[[bool], None]) -> int:
    for step in range(1, MAX_STEPS):
        args = prepare()
        finished = run_killed(script, step, *args)
        check(finished)
        if finished:
            return step
    raise AssertionError(f"still killed after {MAX_STEPS} steps")


INSTALL = """
from pathlib import Path
from firmware.update.slots import install
from firmware.update.trust import load_trusted_keys
from firmware.update.verify import Target
image, root, data = (Path(a) for a in sys.argv[2:5])
install(image, root, data, load_trusted_keys(data), Target("x86_64", "3.11"))
print("DONE")
"""


def test_an_install_killed_at_every_step_leaves_a_terminal_that_starts(tmp_path: Path) -> None:
    template = tmp_path / "template"
    source = small_source(tmp_path / "src")
    trust(template / "data", PRODUCTION)
    old = build(source, tmp_path / "old", "1.0.0")
    install(old, template / "root", template / "data", load_trusted_keys(template / "data"), TARGET)
    data_digest = make_queue(template / "data")
    (source / "firmware" / "__main__.py").write_text("print('kiosk 2')\n")
    new = build(source, tmp_path / "new", "2.0.0")
    work = tmp_path / "work"
    outcomes = set()

    def prepare() -> list[str]:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work, symlinks=True)
        return [str(new), str(work / "root"), str(work / "data")]

    def check(finished: bool) -> None:
        root, data = work / "root", work / "data"
        decision = boot(root, data)
        assert slot_intact(root / "slots" / "a")
        if decision.slot == "a":
            assert not finished and decision.version == Version(1, 0, 0)
            outcomes.add("old")
            # The technician runs the same install again: it goes through.
            install(new, root, data, load_trusted_keys(data), TARGET)
            decision = boot(root, data)
        assert decision.slot == "b" and decision.version == Version(2, 0, 0)
        assert decision.trial is not None and decision.trial.fallback == "a"
        assert slot_intact(root / "slots" / "b")
        assert {k: v for k, v in tree_digest(data).items() if k in data_digest} == data_digest
        assert status(root, data).highest == Version(2, 0, 0)
        if decision.trial.boots == 1 and not finished:
            outcomes.add("new")

    steps = every_step(INSTALL, prepare, check)
    assert steps > 20 and outcomes == {"old", "new"}


BOOT = """
from pathlib import Path
from firmware.update.slots import boot
boot(Path(sys.argv[2]), Path(sys.argv[3]))
print("DONE")
"""

MARK_GOOD = """
from pathlib import Path
from firmware.update.slots import mark_good
mark_good(Path(sys.argv[2]))
print("DONE")
"""


@pytest.fixture
def on_last_trial_start(tmp_path: Path) -> Path:
    """A terminal whose slot b (2.0.0) has used its 3 starts without mark-good; a (1.0.0) behind it."""
    template = tmp_path / "template"
    source = small_source(tmp_path / "src")
    trust(template / "data", PRODUCTION)
    for version in ("1.0.0", "2.0.0"):
        image = build(source, tmp_path / version, version)
        install(image, template / "root", template / "data", load_trusted_keys(template / "data"), TARGET)
    for _ in range(3):
        boot(template / "root", template / "data")
    make_queue(template / "data")
    return template


def test_a_rollback_killed_at_every_step_still_comes_back_to_the_old_slot(
    tmp_path: Path, on_last_trial_start: Path
) -> None:
    work = tmp_path / "work"
    data_digest = {
        k: v for k, v in tree_digest(on_last_trial_start / "data").items() if not k.startswith("update")
    }

    def prepare() -> list[str]:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(on_last_trial_start, work, symlinks=True)
        return [str(work / "root"), str(work / "data")]

    def check(finished: bool) -> None:
        decision = boot(work / "root", work / "data")
        assert (decision.slot, decision.version, decision.trial) == ("a", Version(1, 0, 0), None)
        assert slot_intact(work / "root" / "slots" / "a")
        assert {k: v for k, v in tree_digest(work / "data").items() if k in data_digest} == data_digest

    assert every_step(BOOT, prepare, check) > 3


def test_a_mark_good_killed_at_every_step_keeps_the_new_slot(
    tmp_path: Path, on_last_trial_start: Path
) -> None:
    work = tmp_path / "work"
    trial = on_last_trial_start / "root" / "trial.json"
    trial.write_text(json.dumps({**json.loads(trial.read_text()), "boots": 1}))

    def prepare() -> list[str]:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(on_last_trial_start, work, symlinks=True)
        return [str(work / "root")]

    def check(finished: bool) -> None:
        now = status(work / "root", work / "data")
        assert now.current == "b"
        assert (now.trial is None) if finished else (now.trial is None or now.trial.boots == 1)
        assert boot(work / "root", work / "data").slot == "b"

    every_step(MARK_GOOD, prepare, check)


MIGRATE = """
from pathlib import Path
from firmware.update.migrations import run_migrations
from tests.flash_fixtures import TEST_MIGRATIONS
run_migrations(Path(sys.argv[2]), TEST_MIGRATIONS)
print("DONE")
"""


def test_an_interrupted_migration_runs_again_to_the_same_result(tmp_path: Path) -> None:
    template = tmp_path / "template"
    make_queue(template)
    journal = {"j": 3, "notices": [{"id": "N1", "amount": 100}]}
    (template / "journal.json").write_text(json.dumps(journal))
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    assert [m.number for m in run_migrations(reference, TEST_MIGRATIONS)] == [1, 2]
    expected = tree_digest(reference)
    assert json.loads((reference / "notices.json").read_text()) == journal["notices"]
    work = tmp_path / "work"

    def prepare() -> list[str]:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(template, work)
        return [str(work)]

    def check(finished: bool) -> None:
        run_migrations(work, TEST_MIGRATIONS)
        assert tree_digest(work) == expected
        assert applied_migrations(work) == {1, 2}
        assert run_migrations(work, TEST_MIGRATIONS) == []  # once only

    assert every_step(MIGRATE, prepare, check) > 4
