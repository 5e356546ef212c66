"""`pos-sim kit`: the TEST terminal's TMK key block loads in the terminal, its entry in the host.

The kit is made by sim/ (psec builds the TR-31 block); the terminal's own `pos-keys` (firmware.cli.keys)
unwraps and installs it, and a `pos-sim host --terminals` started on the kit's file then answers the
terminal's sign-on, sale and notice upload, keeping its ledger and notices files.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.cli.keys import main as pos_keys
from firmware.host.channel import TcpHostLink
from firmware.host.codes import TransactionCode
from firmware.host.financial import CardData, NetworkCode, authorisation, read_answer, record_upload
from firmware.host.mac import StoreMac
from firmware.host.messages import TerminalIdentity, send
from firmware.host.signon import sign_on
from firmware.keys.layout import KeyLayout, open_key_store, open_record_signer
from sim.__main__ import main as pos_sim
from sim.acquirer import load_terminals

REPO = Path(__file__).resolve().parent.parent
IDENTITY = TerminalIdentity("TERM0001", "123456789012345")  # firmware/data/identity.json, the kit's default
PAN = "6228480000000000018"  # a test PAN (Luhn-valid), in memory only


def _provision(data_dir: Path) -> str:
    out = io.StringIO()
    assert pos_keys(["--data-dir", str(data_dir), "provision"], stdout=out) == 0
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("record signing public key:")]
    return line.rsplit(" ", 1)[1]


def _load_tmk(data_dir: Path, kit: Path) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = pos_keys(["--data-dir", str(data_dir), "load-tmk", "--block", str(kit / "tmk.tr31"),
                     "--kbpk-file", str(kit / "kbpk.hex")], stdout=out, stderr=err)  # fmt: skip
    assert code == 0, err.getvalue()
    return out.getvalue()


@pytest.mark.parametrize("version", ["B", "D"])
def test_the_kit_block_loads_with_pos_keys(tmp_path: Path, version: str) -> None:
    kit, data_dir = tmp_path / "kit", tmp_path / "terminal"
    assert pos_sim(["kit", str(kit), "--block-version", version]) == 0
    block = (kit / "tmk.tr31").read_text().strip()
    assert block.startswith(f"{version}0") and block[5:9] == "K0TB"
    assert stat.S_IMODE(os.stat(kit / "kbpk.hex").st_mode) == 0o600
    [entry] = json.loads((kit / "terminals.json").read_text())
    assert entry["key_label"] == "TEST" and "device_public_key" not in entry
    _provision(data_dir)
    loaded = _load_tmk(data_dir, kit)
    assert f"TMK loaded from key block version {version}" in loaded
    assert entry["tmk_kcv"] in loaded  # the terminal unwrapped the key the host registered
    [terminal] = load_terminals(kit / "terminals.json")
    assert terminal.tmk == bytes.fromhex(entry["tmk"]) and terminal.device_public_key is None


def test_the_kit_is_not_overwritten_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = tmp_path / "kit"
    assert pos_sim(["kit", str(kit)]) == 0
    first = (kit / "terminals.json").read_text()
    capsys.readouterr()
    assert pos_sim(["kit", str(kit)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--force" in err
    assert (kit / "terminals.json").read_text() == first
    assert pos_sim(["kit", str(kit), "--force", "--terminal-id", "00000002"]) == 0
    [entry] = json.loads((kit / "terminals.json").read_text())
    assert entry["terminal_id"] == "00000002" and entry["tmk"] != json.loads(first)[0]["tmk"]
    assert stat.S_IMODE(os.stat(kit / "kbpk.hex").st_mode) == 0o600


@pytest.mark.parametrize("argument", [["--terminal-id", "123"], ["--merchant-id", "1"]])
def test_a_kit_for_no_terminal_is_refused(tmp_path: Path, argument: list[str]) -> None:
    assert pos_sim(["kit", str(tmp_path / "kit"), *argument]) == 2
    assert not (tmp_path / "kit" / "tmk.tr31").exists()


@pytest.mark.parametrize("argument", [["--public-key", "zz"], ["--public-key", "00" * 31],
                                      ["--mac-profile", "crc32"], ["--block-version", "A"]])  # fmt: skip
def test_bad_kit_arguments_are_usage_errors(tmp_path: Path, argument: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        pos_sim(["kit", str(tmp_path / "kit"), *argument])
    assert exited.value.code == 2


def test_pos_sim_host_serves_the_kit_terminal(tmp_path: Path) -> None:
    kit, data_dir = tmp_path / "kit", tmp_path / "terminal"
    public_key = _provision(data_dir)
    assert pos_sim(["kit", str(kit), "--public-key", public_key]) == 0
    assert json.loads((kit / "terminals.json").read_text())[0]["device_public_key"] == public_key
    _load_tmk(data_dir, kit)
    ledger, notices = tmp_path / "ledger.json", tmp_path / "notices.json"
    command = [sys.executable, "-m", "sim", "host", "--port", "0", "--terminals", str(kit / "terminals.json"),
               "--ledger", str(ledger), "--notices", str(notices)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, env=env) as host:  # fmt: skip
        try:
            assert host.stdout is not None and host.stdin is not None
            listening = host.stdout.readline()
            assert listening.startswith("listening on 127.0.0.1:"), listening
            link = TcpHostLink("127.0.0.1", int(listening.rsplit(":", 1)[1]), connect_timeout=5,
                               read_timeout=5)  # fmt: skip
            store = open_key_store(KeyLayout.under(data_dir))
            assert sign_on(link, store, IDENTITY, stan=1, batch_number=1).approved
            mac = StoreMac(store, "x9.19")  # the kit's default profile
            sale = authorisation(IDENTITY, type_code=TransactionCode.SALE, stan=2, batch=1, amount=1234,
                                 card=CardData(PAN))  # fmt: skip
            answer = read_answer(send(link, sale, mac))
            assert answer.approved
            notice = {"id": "0000000001-x", "kind": "notice", "payload": {"amount": 1234}}
            record = json.dumps(notice).encode()
            signature = open_record_signer(store).sign_bytes(record)
            upload = record_upload(IDENTITY, stan=3, batch=1, record=record, signature=signature,
                                   network_code=NetworkCode.NOTICE_UPLOAD)  # fmt: skip
            assert read_answer(send(link, upload, mac)).approved
            host.stdin.write("quit\n")
            host.stdin.flush()
            assert host.wait(timeout=10) == 0
        finally:
            if host.poll() is None:
                host.kill()
    assert json.loads(ledger.read_text()) == [
        {"terminal": "TERM0001", "trace": 2, "type": "sale", "amount": 1234, "status": "approved",
         "rrn": answer.rrn, "batch": 1, "auth_code": answer.auth_code},
    ]  # fmt: skip
    [notice] = json.loads(notices.read_text())
    assert notice["terminal"] == "TERM0001" and notice["record"] == json.loads(record)


def test_the_kit_never_writes_its_keys_through_a_planted_name_or_into_an_open_directory(
    tmp_path: Path,
) -> None:
    import os

    from sim.errors import HostConfigError
    from sim.kit import make_kit

    kit = tmp_path / "kit"
    kit.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("attacker's file\n")
    (kit / ".kbpk.hex.tmp").symlink_to(elsewhere)
    make_kit(kit)
    assert elsewhere.read_text() == "attacker's file\n"
    assert not (kit / "kbpk.hex").is_symlink()
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(HostConfigError, match="others may write"):
        make_kit(loose)
    assert not (loose / "kbpk.hex").exists()
