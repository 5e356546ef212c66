"""The PAN at rest: sealed under the data key, opened only by the terminal that sealed it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware.errors import CryptoError, KeyStoreError, VerificationError
from firmware.keys.device import provision_device_key
from firmware.keys.store import KeyStore
from firmware.txn.pan_vault import DATA_KEY_NAME, PanVault

PAN = "4761739001010119"  # the Visa test PAN
BINDING = "TERM0001|000001|000007"


def _store(tmp_path: Path, name: str = "a") -> KeyStore:
    device_key = provision_device_key(tmp_path / name / "device.key", os.urandom)
    return KeyStore(tmp_path / name / "keys", device_key)


def test_a_sealed_pan_opens_and_is_nowhere_in_clear(tmp_path: Path) -> None:
    store = _store(tmp_path)
    vault = PanVault(store)
    sealed = vault.seal(PAN, BINDING)
    assert PAN not in sealed and PAN.encode() not in bytes.fromhex(sealed)
    assert vault.open(sealed, BINDING) == PAN
    assert vault.seal(PAN, BINDING) != sealed  # a fresh nonce each time
    assert store.info(DATA_KEY_NAME).kind == "aes"
    for path in (tmp_path / "a").rglob("*"):
        if path.is_file():
            assert PAN.encode() not in path.read_bytes()


def test_an_altered_or_foreign_sealed_pan_is_refused(tmp_path: Path) -> None:
    vault = PanVault(_store(tmp_path))
    sealed = vault.seal(PAN, BINDING)
    flipped = sealed[:-1] + ("0" if sealed[-1] != "0" else "1")
    with pytest.raises(VerificationError):
        vault.open(flipped, BINDING)
    other = PanVault(_store(tmp_path, "b"))
    other.seal("6228480000000000018", BINDING)
    with pytest.raises(VerificationError):
        other.open(sealed, BINDING)
    for garbage in ("zz", "00" * 10):
        with pytest.raises(VerificationError):
            other.open(garbage, BINDING)


def test_nothing_opens_before_a_data_key_exists_and_only_pans_are_sealed(tmp_path: Path) -> None:
    vault = PanVault(_store(tmp_path))
    with pytest.raises(KeyStoreError):
        vault.open("00" * 40, BINDING)
    for not_a_pan in ("12345", "4761 7390 0101 0119", ""):
        with pytest.raises(CryptoError):
            vault.seal(not_a_pan, BINDING)


def test_a_sealed_pan_opens_only_for_its_request_and_only_as_the_card_shown(tmp_path: Path) -> None:
    vault = PanVault(_store(tmp_path))
    sealed = vault.seal(PAN, BINDING)
    with pytest.raises(VerificationError):
        vault.open(sealed, "TERM0001|000001|000008")  # copied into another journal entry
    assert vault.open_for(sealed, BINDING, "476173******0119") == PAN
    with pytest.raises(VerificationError):
        vault.open_for(sealed, BINDING, "541333******0434")  # the entry shows another card
