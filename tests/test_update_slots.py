"""A/B slots: install on trial, boot counting, mark-good, automatic and manual rollback, anti-rollback.

Anchors: RAUC's slot status and mark-good, Mender's boot counting with
rollback after a new artifact fails to commit, SWUpdate's double copy.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from firmware.errors import ImageRefusedError, SlotError
from firmware.update.build import WheelDirectory
from firmware.update.manifest import Refusal, Version
from firmware.update.slots import boot, highest_installed, install, mark_good, rollback, status
from firmware.update.trust import load_trusted_keys
from tests.flash_fixtures import (
    PRODUCTION,
    TARGET,
    build,
    make_queue,
    slot_intact,
    small_source,
    tree_digest,
    trust,
)


class Terminal:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.data = tmp_path / "data"
        trust(self.data, PRODUCTION)
        self.source = small_source(tmp_path / "src")

    def image(self, version: str) -> Path:
        (self.source / "firmware" / "__init__.py").write_text(f'"""Firmware {version}."""\n')
        return build(self.source, self.tmp / "dist", version)

    def install(self, version: str, max_boots: int = 3) -> object:
        return install(
            self.image(version),
            self.root,
            self.data,
            load_trusted_keys(self.data),
            TARGET,
            max_boots=max_boots,
        )


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    return Terminal(tmp_path)


def test_first_install_is_good_at_once_then_the_next_goes_to_the_other_slot_on_trial(
    terminal: Terminal,
) -> None:
    first = terminal.install("1.0.0")
    assert os.readlink(terminal.root / "current") == "slots/a"
    assert status(terminal.root, terminal.data).trial is None
    assert first.trial is None  # type: ignore[attr-defined]
    second = terminal.install("1.1.0")
    assert os.readlink(terminal.root / "current") == "slots/b"
    now = status(terminal.root, terminal.data)
    assert now.trial is not None and (now.trial.slot, now.trial.boots, now.trial.fallback) == ("b", 0, "a")
    assert (now.slot("a").version, now.slot("b").version, now.highest) == (
        Version(1, 0, 0),
        Version(1, 1, 0),
        Version(1, 1, 0),
    )
    assert second.previous == "a"  # type: ignore[attr-defined]
    assert slot_intact(terminal.root / "slots" / "a") and slot_intact(terminal.root / "slots" / "b")
    decision = boot(terminal.root, terminal.data)
    assert decision.slot == "b" and decision.trial is not None and decision.trial.boots == 1
    assert mark_good(terminal.root)[1] is not None
    assert status(terminal.root, terminal.data).trial is None
    assert mark_good(terminal.root) == ("b", None)  # already good: nothing to do
    third = terminal.install("1.2.0")
    assert third.slot == "a"  # type: ignore[attr-defined]


def test_a_slot_that_never_reaches_mark_good_is_rolled_back_after_n_starts(terminal: Terminal) -> None:
    terminal.install("1.0.0")
    data = make_queue(terminal.data)
    terminal.install("2.0.0", max_boots=3)
    for start in (1, 2, 3):  # the kiosk crashes each time: no mark-good
        decision = boot(terminal.root, terminal.data)
        assert (decision.slot, decision.trial.boots if decision.trial else None) == ("b", start)
    decision = boot(terminal.root, terminal.data)
    assert decision.slot == "a" and decision.version == Version(1, 0, 0) and decision.trial is None
    assert decision.rolled_back is not None and decision.rolled_back.slot == "b"
    assert os.readlink(terminal.root / "current") == "slots/a"
    now = status(terminal.root, terminal.data)
    assert now.trial is None and now.last_rollback is not None and now.last_rollback["version"] == "2.0.0"
    assert boot(terminal.root, terminal.data).slot == "a"  # stays back
    # The data directory came through untouched (the counter aside), and the counter did not go down.
    after = tree_digest(terminal.data)
    assert {k: v for k, v in after.items() if k in data} == data
    assert highest_installed(terminal.data) == Version(2, 0, 0)
    # 2.0.0 again is refused (freeze); 2.0.1 goes into slot b.
    with pytest.raises(ImageRefusedError) as caught:
        terminal.install("2.0.0")
    assert caught.value.reason is Refusal.VERSION
    assert terminal.install("2.0.1").slot == "b"  # type: ignore[attr-defined]


def test_rollback_by_the_technician_only_from_a_trial(terminal: Terminal) -> None:
    terminal.install("1.0.0")
    with pytest.raises(SlotError, match="marked good"):
        rollback(terminal.root)
    terminal.install("1.1.0")
    boot(terminal.root, terminal.data)
    with pytest.raises(SlotError, match="on trial"):
        terminal.install("1.2.0")
    gone = rollback(terminal.root)
    assert (gone.slot, gone.fallback) == ("b", "a")
    assert boot(terminal.root, terminal.data).slot == "a"
    with pytest.raises(ImageRefusedError) as caught:  # above the installed 1.0.0 but below the counter
        terminal.install("1.0.5")
    assert caught.value.reason is Refusal.VERSION


def test_a_stale_trial_record_is_dropped_at_boot(terminal: Terminal) -> None:
    terminal.install("1.0.0")
    (terminal.root / "trial.json").write_text(
        json.dumps({"slot": "b", "version": "9.0.0", "boots": 0, "max_boots": 3, "fallback": "a"})
    )
    assert status(terminal.root, terminal.data).trial is None
    assert boot(terminal.root, terminal.data).slot == "a"
    assert not (terminal.root / "trial.json").exists()


def test_a_damaged_slot_on_trial_falls_back_at_once(terminal: Terminal) -> None:
    terminal.install("1.0.0")
    terminal.install("1.1.0")
    (terminal.root / "slots" / "b" / "manifest.json").unlink()
    decision = boot(terminal.root, terminal.data)
    assert decision.slot == "a" and decision.rolled_back is not None


def test_the_image_wheels_are_unpacked_into_the_slot(terminal: Terminal, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "tinydb-4.9.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("tinydb/__init__.py", "VERSION = '4.9.0'\n")
        wheel.writestr("tinydb-4.9.0.dist-info/METADATA", "Name: tinydb\n")
    image = build(terminal.source, tmp_path / "dist", "1.0.0", wheels=WheelDirectory(wheels))
    install(image, terminal.root, terminal.data, load_trusted_keys(terminal.data), TARGET)
    site = terminal.root / "current" / "site"
    assert (site / "tinydb" / "__init__.py").read_text() == "VERSION = '4.9.0'\n"
    assert (terminal.root / "current" / "files" / "wheels" / "tinydb-4.9.0-py3-none-any.whl").is_file()
