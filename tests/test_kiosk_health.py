"""The kiosk under systemd: READY=1 once the idle screen is up and the books open, WATCHDOG=1 every half
WatchdogSec from the loop, and the slot on trial marked good (as `pos-flash mark-good`) once healthy."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.sdnotify import notify, watchdog_interval
from firmware.update.slots import install, status
from firmware.update.trust import load_trusted_keys
from tests.flash_fixtures import PRODUCTION, TARGET, build, small_source, trust
from tests.kiosk_rig import KioskProcess
from tests.txn_rig import Rig, rig_fixture


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _listener(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0)
    return sock


def _received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_notify_sends_one_datagram_to_a_path_or_an_abstract_socket(tmp_path: Path) -> None:
    with _listener(str(tmp_path / "notify")) as sock:
        assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert _received(sock) == ["READY=1"]
    name = f"pos-test-{os.getpid()}"
    with _listener("\0" + name) as sock:
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert _received(sock) == ["WATCHDOG=1"]
    assert not notify("READY=1", {})  # not run by systemd


def test_the_watchdog_interval_is_half_the_period_for_this_process() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def _slot_on_trial(tmp_path: Path) -> Path:
    root, data = tmp_path / "root", tmp_path / "flash-data"
    trust(data, PRODUCTION)
    source = small_source(tmp_path / "src")
    for version in ("1.0.0", "1.1.0"):
        (source / "firmware" / "__init__.py").write_text(f'"""Firmware {version}."""\n')
        install(build(source, tmp_path / "dist", version), root, data, load_trusted_keys(data), TARGET)
    assert status(root, data).trial is not None
    return root


def test_the_kiosk_says_ready_pings_the_watchdog_and_marks_its_slot_good(rig: Rig, tmp_path: Path) -> None:
    rig.service.close()
    root = _slot_on_trial(tmp_path)
    kiosk = KioskProcess(
        rig, tmp_path, {"POS_ROOT": str(root), "WATCHDOG_USEC": "200000"}
    )  # a ping every 0.1 s
    try:
        messages = kiosk.wait_for(
            lambda said: "STATUS=slot b marked good" in said and said.count("WATCHDOG=1") >= 4,
            "its slot marked good and four watchdog pings",
        )
        assert kiosk.stop() == 0, kiosk.stderr()
    finally:
        kiosk.close()
    assert messages[0].startswith("READY=1\n")  # nothing before READY=1: no ping from a kiosk not up yet
    assert status(root, tmp_path / "flash-data").trial is None  # marked good: the trial is over
