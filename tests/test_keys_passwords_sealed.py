"""The password file is sealed under the device key; hash length, salt and scrypt minimums are the code's.

Before the file was sealed, anyone who could write it chose the scrypt
parameters and the hash length (an empty hash accepted every password, a
one-byte hash one in 256) and reset failures and locks by editing them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from firmware.errors import ConfigError, CryptoError, KeyStoreError
from firmware.keys.device import DeviceKey
from firmware.keys.passwords import (
    DEFAULT_LOCKOUT_SECONDS,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    ChangeOutcome,
    LoginOutcome,
    PasswordStore,
    scrypt_hash,
)

DEVICE = DeviceKey(bytes(range(32)))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "passwords.json"


@pytest.fixture
def store(path: Path) -> PasswordStore:
    passwords = PasswordStore(path, DEVICE, lambda: 1000.0, boot_id="boot")
    passwords.install_factory_passwords({"supervisor": "123456"})
    assert passwords.change_password("supervisor", "123456", "24681357") is ChangeOutcome.CHANGED
    return passwords


def _users(store: PasswordStore) -> dict[str, dict[str, Any]]:
    return store._load()  # the sealed content, opened with the device key


def _reseal(store: PasswordStore, change: Callable[[dict[str, Any]], None]) -> None:
    """What an attacker holding the device key could write (and nobody else can)."""
    users = _users(store)
    change(users["supervisor"])
    store._save(users)


def test_new_hashes_use_the_fixed_parameters(store: PasswordStore) -> None:
    user = _users(store)["supervisor"]
    assert (user["n"], user["r"], user["p"]) == (SCRYPT_N, SCRYPT_R, SCRYPT_P) == (2**14, 8, 5)
    assert len(bytes.fromhex(user["hash"])) == 32 and len(bytes.fromhex(user["salt"])) == 16
    assert 128 * SCRYPT_R * SCRYPT_N == 16 * 1024 * 1024
    assert SCRYPT_N * SCRYPT_P >= 2**16  # within a factor 2 of n = 2**17, p = 1


def test_the_file_holds_neither_hashes_nor_counts_in_clear(store: PasswordStore, path: Path) -> None:
    document = json.loads(path.read_text())
    assert set(document) == {"format", "device_key_id", "nonce", "sealed"}
    user = _users(store)["supervisor"]
    assert user["hash"] not in path.read_text() and "failures" not in path.read_text()


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(sealed=d["sealed"][:-2] + ("00" if d["sealed"][-2:] != "00" else "01")),
        lambda d: d.update(nonce="00" * 12),
        lambda d: d.update(sealed=""),
        lambda d: d.update(format="pos-passwords-2", users={}),
    ],
    ids=["sealed byte", "nonce", "emptied", "unsealed format"],
)
def test_an_edited_file_is_refused(
    store: PasswordStore, path: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError):
        store.verify("supervisor", "anything")


def test_a_file_of_another_device_is_refused(store: PasswordStore, path: Path) -> None:
    other = PasswordStore(path, DeviceKey(bytes(32)), lambda: 1000.0)
    with pytest.raises(KeyStoreError, match="another device key"):
        other.verify("supervisor", "24681357")


def test_failures_and_locks_cannot_be_reset_by_editing(store: PasswordStore, path: Path) -> None:
    for _ in range(5):
        store.verify("supervisor", "000000")
    assert store.verify("supervisor", "24681357").outcome is LoginOutcome.LOCKED
    document = json.loads(path.read_text())
    document["users"] = {"supervisor": {"failures": 0, "lock_remaining": 0}}  # what used to work
    path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError):
        store.verify("supervisor", "24681357")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hash", ""),
        ("hash", "00"),
        ("hash", "00" * 31),
        ("salt", ""),
        ("salt", "zz"),
        ("salt", "00" * 8),
        ("n", 2**10),
        ("n", 3 * 2**14),
        ("n", 2**40),
        ("r", 1),
        ("r", 2**31),
        ("p", 1),
        ("p", 0),
        ("p", -1),
        ("n", True),
        ("failures", -1),
    ],
)
def test_a_sealed_entry_below_the_code_s_rules_is_refused(
    store: PasswordStore, field: str, value: object
) -> None:
    _reseal(store, lambda user: user.update({field: value}))
    with pytest.raises(KeyStoreError, match="supervisor"):
        store.verify("supervisor", "24681357")


@pytest.mark.parametrize(
    ("salt", "n", "r", "p"),
    [(b"", 3, 8, 1), (bytes(16), 2**14, 0, 1), (bytes(16), 2**62, 8, 1), (bytes(16), 2**14, 8, 2**40)],
)
def test_scrypt_parameters_it_cannot_take_are_a_crypto_error(salt: bytes, n: int, r: int, p: int) -> None:
    with pytest.raises(CryptoError):
        scrypt_hash(b"x", salt, n, r, p, 32)


def test_the_default_lock_out_is_thirty_minutes(path: Path) -> None:
    assert DEFAULT_LOCKOUT_SECONDS == 1800
    now = [5000.0]
    store = PasswordStore(path, DEVICE, lambda: now[0], boot_id="boot")
    store.install_factory_passwords({"supervisor": "123456"})
    for _ in range(5):
        result = store.verify("supervisor", "000000")
    assert result.outcome is LoginOutcome.LOCKED and result.locked_for == 1800
    now[0] += 1799
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.LOCKED
    now[0] += 1
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE


@pytest.mark.parametrize(
    ("role", "password", "allowed"),
    [
        ("technician", "short-pass1", False),
        ("technician", "twelve-chars", True),
        ("supervisor", "12345", False),
        ("supervisor", "S3cret-2025", False),
        ("supervisor", "１２３４５６", False),  # full-width digits are not what the keypad sends
        ("supervisor", "123456", True),
    ],
)
def test_password_rules_per_role(path: Path, role: str, password: str, allowed: bool) -> None:
    store = PasswordStore(path, DEVICE, lambda: 0.0)
    if allowed:
        assert store.set_first_password(role, password)
        assert store.verify(role, password).authenticated
    else:
        with pytest.raises(ConfigError):
            store.set_first_password(role, password)
        assert store.roles() == []


def test_a_change_must_follow_the_rules(store: PasswordStore) -> None:
    assert store.change_password("supervisor", "24681357", "abcdefgh") is ChangeOutcome.TOO_SHORT
    assert store.change_password("supervisor", "24681357", "13579") is ChangeOutcome.TOO_SHORT
    assert store.change_password("supervisor", "24681357", "135791") is ChangeOutcome.CHANGED
