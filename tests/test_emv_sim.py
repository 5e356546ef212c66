"""Every simulated card profile read by the terminal: in process through
SimReader, and through the real stack pcscd + vpcd + pyscard; `pos-emv read`
run as a program, its output checked for masking.

What the terminal read is compared with the profile JSON (the card side's
own data), never with a second run of the code under test alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import VpcdCard

from firmware.emv.application import ApplicationData, read_application
from firmware.emv.application_list import load_application_list
from firmware.emv.reader import CardReader, PcscReader, open_pcsc_reader
from firmware.emv.report import technician_chooser
from firmware.emv.selection import Candidate, Chooser
from firmware.emv.transport import Transport
from firmware.errors import CardRemovedError, SelectionError
from sim.card import load_profile_card
from sim.profile import AppProfile, CardProfile, load_profile, profile_names
from sim.reader import SimReader

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG = load_application_list()
PROFILES = profile_names()
# Profiles whose reading must end in "no supported application".
NOT_READABLE = {"blocked"}
# Fixed PDOL data so that two reads of one card can be compared.
TRANSACTION = {
    0x9F02: bytes(6),
    0x9A: bytes.fromhex("250601"),
    0x9C: b"\x00",
    0x9F37: bytes.fromhex("01020304"),
}


def read_card(reader: CardReader, choose: Chooser | None) -> tuple[Transport, ApplicationData]:
    transport = Transport(reader)
    with transport.session():
        data = read_application(transport, CONFIG, transaction_data=TRANSACTION, choose=choose)
    return transport, data


def selected_profile_app(profile: CardProfile, data: ApplicationData) -> AppProfile:
    matches = [app for app in profile.applications if app.aid == data.selected.aid]
    assert matches, f"selected {data.selected.aid.hex()} is not an application of {profile.name}"
    return matches[0]


def check_against_profile(profile: CardProfile, transport: Transport, data: ApplicationData) -> None:
    app = selected_profile_app(profile, data)
    assert transport.atr == profile.atr
    assert (data.options.aip, data.options.afl) == (app.aip, app.afl)
    assert data.pan == app.pan
    assert data.records.missing_mandatory == ()
    read = {(record.sfi, record.number): record for record in data.records.records}
    assert set(read) == {(entry.sfi, n) for entry in data.options.entries for n in entry.record_numbers}
    assert all(app.record(sfi, number) is not None for sfi, number in read)
    for spec in app.records:
        if (spec.sfi, spec.number) not in read:
            continue
        record = read[(spec.sfi, spec.number)]
        if spec.raw is not None:
            assert record.data == spec.raw
            continue
        tamper = profile.faults.tamper_record
        for tag, value in spec.items:
            if tamper is not None and (tamper.sfi, tamper.record, tamper.tag) == (spec.sfi, spec.number, tag):
                value = tamper.value  # the card changed it after signing, to fail ODA
            if isinstance(value, bytes):
                assert record.tags[tag] == value, (
                    f"{profile.name} SFI {spec.sfi} rec {spec.number} tag {tag:X}"
                )
            else:
                assert tag in record.tags  # filled from the TEST PKI by the card
    for tag, value in app.fci:
        if tag == 0xBF0C:
            assert data.selected.fci.issuer_discretionary_data == value
        elif isinstance(value, bytes):
            assert data.selected.fci.data[tag] == value
    masked = data.masked_pan or ""
    assert masked[:6] == app.pan[:6] and masked[-4:] == app.pan[-4:] and "*" in masked


@pytest.mark.parametrize("name", PROFILES)
def test_profile_through_sim_reader(name: str) -> None:
    profile = load_profile(name)
    reader = SimReader(load_profile_card(name))
    if name in NOT_READABLE:
        with pytest.raises(SelectionError):
            read_card(reader, technician_chooser(None))
        return
    transport, data = read_card(reader, technician_chooser(None))
    check_against_profile(profile, transport, data)
    assert data.selection_method == ("pse" if profile.pse else "aid-list")


def test_multi_app_needs_the_cardholder() -> None:
    with pytest.raises(SelectionError, match="confirmation"):
        read_card(SimReader(load_profile_card("multi-app")), None)
    offered: list[bytes] = []

    def second(candidates: Sequence[Candidate]) -> Candidate | None:
        offered.extend(candidate.aid for candidate in candidates)
        return candidates[1]

    _, data = read_card(SimReader(load_profile_card("multi-app")), second)
    profile = load_profile("multi-app")
    assert offered == [app.aid for app in profile.applications]
    assert data.selected.aid == profile.applications[1].aid


def test_card_pulled_from_the_sim_reader() -> None:
    reader = SimReader(load_profile_card("visa-credit"))
    transport = Transport(reader)
    transport.power_on()
    reader.remove_card()
    with pytest.raises(CardRemovedError):
        read_application(transport, CONFIG)


# --- the real PC/SC stack -------------------------------------------------------


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_profile_through_pcscd_and_vpcd(name: str, vpcd_card: Callable[[str], VpcdCard]) -> None:
    card = vpcd_card(name)
    reader = open_pcsc_reader(card.reader_name)
    if name in NOT_READABLE:
        with pytest.raises(SelectionError):
            read_card(reader, technician_chooser(None))
        return
    transport, data = read_card(reader, technician_chooser(None))
    profile = load_profile(name)
    check_against_profile(profile, transport, data)
    # The same card in process gives the same reading.
    _, in_process = read_card(SimReader(load_profile_card(name)), technician_chooser(None))
    assert data.selected.fci == in_process.selected.fci
    assert data.records == in_process.records
    assert data.options == in_process.options
    # T=0 cards answer 61xx / 6Cxx, resolved by the transport.
    if profile.t0:
        assert {entry.response[-2] for entry in transport.trace} & {0x61, 0x6C}


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_pcsc_protocol_follows_the_atr(vpcd_card: Callable[[str], VpcdCard]) -> None:
    for name, protocol in (("unionpay-debit", "T=0"), ("multi-app", "T=1")):
        card = vpcd_card(name)
        reader = open_pcsc_reader(card.reader_name)
        assert isinstance(reader, PcscReader)
        reader.power_on()
        try:
            assert reader.protocol == protocol
        finally:
            reader.power_off()


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_card_removed_on_the_pcsc_path(vpcd_card: Callable[[str], VpcdCard]) -> None:
    card = vpcd_card("visa-credit")
    transport = Transport(open_pcsc_reader(card.reader_name))
    transport.power_on()
    card.remove()
    with pytest.raises(CardRemovedError):
        read_application(transport, CONFIG)
    transport.power_off()


# --- pos-emv as a program -------------------------------------------------------


def pos_emv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from firmware.__main__ import emv_main; sys.exit(emv_main())",
            *args,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_masked_report(result: subprocess.CompletedProcess[str], profile_name: str) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    app = load_profile(profile_name).applications[0]
    assert app.pan not in result.stdout
    assert app.pan[6:-4] not in result.stdout.replace(app.pan[:6], "")
    assert report["pan"] == app.pan[:6] + "*" * (len(app.pan) - 10) + app.pan[-4:]
    track2 = app.record_value(0x57)
    assert isinstance(track2, bytes)
    assert track2.hex().upper()[len(app.pan) :] not in result.stdout
    name = app.record_value(0x5F20)
    if isinstance(name, bytes):
        assert name.decode() not in result.stdout and name.hex().upper() not in result.stdout
    return report


def test_pos_emv_read_sim_profile_is_masked() -> None:
    result = pos_emv("read", "--reader", "sim:unionpay-debit")
    report = assert_masked_report(result, "unionpay-debit")
    assert report["reader"] == "sim:unionpay-debit"
    trace = report["trace"]
    assert isinstance(trace, list) and trace
    assert all(isinstance(row, dict) and "ms" in row for row in trace)


def test_pos_emv_unknown_profile_is_one_line() -> None:
    result = pos_emv("read", "--reader", "sim:no-such-card")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pos-emv: ")
    assert "Traceback" not in result.stderr


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_pos_emv_read_through_pcsc(vpcd_card: Callable[[str], VpcdCard]) -> None:
    card = vpcd_card("mastercard-credit")
    result = pos_emv("read", "--reader", f"pcsc:{card.reader_name}")
    report = assert_masked_report(result, "mastercard-credit")
    assert report["reader"] == card.reader_name
    assert report["atr"] == load_profile("mastercard-credit").atr.hex().upper()


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_pos_emv_read_without_card(vpcd_card: Callable[[str], VpcdCard]) -> None:
    card = vpcd_card("visa-credit")
    card.remove()  # the slot stays ours (locked) and empty
    result = pos_emv("read", "--reader", f"pcsc:{card.reader_name}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"pos-emv: no card in reader '{card.reader_name}'\n"
