"""The technician's path from the README, as typed: a card started in the
background, then `pos-emv read --reader pcsc` straight away."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import hold_vpcd_slot, reader_events, vpcd_port, vpcd_reader_name, wait_reader_events

pytestmark = [pytest.mark.pcsc, pytest.mark.xdist_group("pcsc")]

VISA_PAN = "4761739001010010"
POS_EMV = [sys.executable, "-c", "import sys, firmware.__main__ as m; sys.exit(m.emv_main(sys.argv[1:]))"]


def test_card_started_in_the_background_is_read_through_pcscd() -> None:
    port = vpcd_port()
    reader = vpcd_reader_name()
    with hold_vpcd_slot(reader, port):
        since, _ = reader_events(reader)
        card = subprocess.Popen(
            [sys.executable, "-m", "sim", "card", "--profile", "visa-credit", "--vpcd", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,  # what `&` in a script gives it
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            read = subprocess.run(
                [*POS_EMV, "read", "--reader", "pcsc", "--wait", "10"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert card.poll() is None, f"the card process died: {card.stderr.read() if card.stderr else ''}"
        finally:
            card.send_signal(signal.SIGTERM)
            card.wait(timeout=10)
        # the slot is left once pcscd has seen the card come and go
        wait_reader_events(reader, since, present=False, events=2)
    assert read.returncode == 0, read.stderr
    report = json.loads(read.stdout)
    assert report["reader"] == reader
    assert report["application"]["aid"] == "A0000000031010"
    assert report["pan"] == "476173******0010"
    assert VISA_PAN not in read.stdout
    assert card.returncode == 0, "SIGTERM must stop the card cleanly"


def test_no_card_is_one_clear_line_after_the_wait() -> None:
    with hold_vpcd_slot(vpcd_reader_name(), vpcd_port()):
        read = subprocess.run(
            [*POS_EMV, "read", "--reader", "pcsc", "--wait", "0.3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert read.returncode == 2
    assert read.stdout == ""
    assert read.stderr.count("\n") == 1 and "no card" in read.stderr
