"""No clear key, PIN, PAN or password at rest or in the logs.

A full sequence runs with planted, recognisable secrets and logging captured
at DEBUG: provision, load the TMK from a TR-31 block, sign on (PIK, MAK, TDK
under the TMK, one attempt with a wrong KCV), make PIN blocks in formats
0, 3 and 4, MACs under every profile, DUKPT keys, signed queue records, and
password logins. Then every file of the data directory, the captured logs
and the error messages are searched for each secret as raw bytes, upper and
lower case hex, and (for PINs, PANs and passwords) ASCII and packed BCD.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import psec
import pytest

from firmware.cli.keys import main as pos_keys
from firmware.errors import VerificationError
from firmware.keys.device import load_device_key
from firmware.keys.dukpt import AesDukptTerminal, KeyUsage, TdesDukptTerminal
from firmware.keys.dukpt_aes import derive_initial_key
from firmware.keys.dukpt_tdes import derive_ipek
from firmware.keys.layout import KeyLayout, open_key_store, open_record_signer
from firmware.keys.mac import MacProfile, compute_mac, verify_mac
from firmware.keys.passwords import PasswordStore
from firmware.keys.pinblock import decrypt_pin_block, encrypt_pin_block
from firmware.keys.signing import verify_record
from firmware.keys.working_keys import install_working_keys, parse_unionpay_field62

KBPK = bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90")
TMK = bytes.fromhex("1F2E3D4C5B6A79880123456789ABCDEF")
PIK = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
MAK = bytes.fromhex("13579BDF02468ACEFDB97531ECA86420")  # double length: no single DES by default
TDK = bytes.fromhex("FEDCBA98765432100011223344556677")
AES_PIK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
AES_MAK = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
PIN = "739146825031"
PAN = "6222020200112233445"
PASSWORDS = {"supervisor": "73910486251", "technician": "T3chnician!Planted"}
NEW_PASSWORD = "N3wPlantedPassw0rd"


def needles(secret: bytes | str) -> list[bytes]:
    if isinstance(secret, str):
        forms = [secret.encode("ascii")]
        if secret.isdigit():
            forms.append(bytes.fromhex(secret + ("F" if len(secret) % 2 else "")))  # packed BCD
        return forms
    return [secret, secret.hex().upper().encode(), secret.hex().lower().encode()]


def test_no_secret_in_files_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "data"
    messages: list[str] = []

    def cli(*args: str, stdin: str = "") -> str:
        out, err = io.StringIO(), io.StringIO()
        code = pos_keys(
            ["--data-dir", str(data_dir), *args], env={}, stdin=io.StringIO(stdin), stdout=out, stderr=err
        )
        assert code == 0, err.getvalue()
        messages.append(out.getvalue() + err.getvalue())
        return out.getvalue()

    # Provision and load the TMK from a TR-31 block made by psec.
    cli("provision")
    (tmp_path / "kbpk.hex").write_text(KBPK.hex())
    block = psec.tr31.wrap(KBPK, "B0000K0TD00N0000", TMK)
    cli("load-tmk", "--block", "-", "--kbpk-file", str(tmp_path / "kbpk.hex"), stdin=block)
    layout = KeyLayout.under(data_dir)
    store = open_key_store(layout)

    # Sign-on: first a field 62 whose MAK checkvalue is wrong, then the right one.
    def slot(key: bytes) -> bytes:
        return bytes(psec.des.encrypt_tdes_ecb(TMK, key)) + bytes(
            psec.des.generate_kcv(key if len(key) > 8 else key * 2, 4)
        )

    pik_slot, mak_slot, tdk_slot = slot(PIK), slot(MAK), slot(TDK)
    good = pik_slot + mak_slot + tdk_slot
    bad = pik_slot + mak_slot[:16] + b"\x00\x00\x00\x00" + tdk_slot
    with pytest.raises(VerificationError) as wrong_kcv:
        install_working_keys(store, parse_unionpay_field62(bad))
    messages.append(str(wrong_kcv.value))
    install_working_keys(store, parse_unionpay_field62(good))
    store.put("PIK_AES", AES_PIK, "aes", 1)
    store.put("MAK_AES", AES_MAK, "aes", 1)

    # PIN blocks and MACs, each checked so the run is real.
    rng = os.urandom
    for fmt, key_name in [(0, "PIK"), (3, "PIK"), (4, "PIK_AES")]:
        pin_block = encrypt_pin_block(store.get(key_name), PIN, PAN, fmt, rng)
        assert decrypt_pin_block(store.get(key_name), pin_block, PAN, fmt) == PIN
    message = b"0200" + PAN.encode() + b"000000012345"
    for profile, key_name in [
        (MacProfile.UNIONPAY_ECB, "MAK"), (MacProfile.X919, "PIK"), (MacProfile.AES_CMAC, "MAK_AES")
    ]:
        mac = compute_mac(profile, store.get(key_name), message)
        verify_mac(profile, store.get(key_name), message, mac)
        with pytest.raises(VerificationError) as bad_mac:
            verify_mac(profile, store.get(key_name), message + b"x", mac)
        messages.append(str(bad_mac.value))

    # DUKPT in memory: keys are never logged.
    ksn = bytes.fromhex("FFFF9876543210E00000")
    tdes_tx = TdesDukptTerminal.load_initial_key(derive_ipek(BDK, ksn), ksn).next_transaction()
    encrypt_pin_block(tdes_tx.pin_key(), PIN, PAN, 0, rng)
    aes_tx = AesDukptTerminal.load_initial_key(
        derive_initial_key(AES_BDK, bytes(8)), bytes(8)
    ).next_transaction()
    encrypt_pin_block(aes_tx.working_key(KeyUsage.PIN_ENCRYPTION), PIN, PAN, 4, rng)
    messages.append(repr(tdes_tx) + repr(aes_tx) + repr(store.list()))

    # Signed queue records, stored and checked.
    signer = open_record_signer(store)
    records = [
        signer.sign_record({"id": f"Q-{n}", "pan_masked": PAN[:6] + "*" * 9 + PAN[-4:], "amount": n * 100})
        for n in range(3)
    ]
    (data_dir / "queue.json").write_text(json.dumps(records))
    for record in json.loads((data_dir / "queue.json").read_text()):
        verify_record(record, signer.public_key())

    # Passwords: factory install, a wrong login, a change, a login.
    passwords = PasswordStore(layout.passwords_path, load_device_key(layout.device_key_path), lambda: 1.7e9)
    passwords.install_factory_passwords(PASSWORDS)
    passwords.verify("technician", "wrong-guess-1")
    passwords.change_password("technician", PASSWORDS["technician"], NEW_PASSWORD)
    assert passwords.verify("technician", NEW_PASSWORD).authenticated
    cli("list")

    secrets_: dict[str, bytes | str] = {
        "KBPK": KBPK, "TMK": TMK, "PIK": PIK, "MAK": MAK, "TDK": TDK, "AES PIK": AES_PIK,
        "AES MAK": AES_MAK, "BDK": BDK, "AES BDK": AES_BDK, "signing key": store.get("SIGNING"),
        "DUKPT TDES key": tdes_tx.transaction_key, "DUKPT AES key": aes_tx.derivation_key,
        "PIN": PIN, "PAN": PAN, "new password": NEW_PASSWORD, **PASSWORDS,
    }  # fmt: skip
    haystacks = {str(path): path.read_bytes() for path in data_dir.rglob("*") if path.is_file()}
    assert {Path(p).name for p in haystacks} >= {
        "device.key",
        "keystore.json",
        "passwords.json",
        "queue.json",
    }
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "KCV" in logged  # logging really was captured
    haystacks["logs"] = (logged + "\n" + caplog.text).encode()
    haystacks["messages"] = "\n".join(messages).encode()
    found = [
        f"{name} in {where}"
        for name, secret in secrets_.items()
        for where, content in haystacks.items()
        if any(needle in content for needle in needles(secret))
    ]
    assert found == []
