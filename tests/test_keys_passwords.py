"""Passwords: RFC 7914 scrypt vectors, factory passwords, lock-out with a persisted counter."""

from __future__ import annotations

import hmac
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import firmware.keys.passwords as passwords_module
from firmware.errors import ConfigError, KeyStoreError
from firmware.keys.device import DeviceKey
from firmware.keys.passwords import ChangeOutcome, LoginOutcome, PasswordStore, scrypt_hash

DEVICE_KEY_BYTES = bytes(range(32))
DEVICE = DeviceKey(DEVICE_KEY_BYTES)


@pytest.mark.parametrize(
    ("password", "salt", "n", "r", "p", "expected"),
    [
        (
            b"password",
            b"NaCl",
            1024,
            8,
            16,
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
        ),
        (
            b"pleaseletmein",
            b"SodiumChloride",
            16384,
            8,
            1,
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
            "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887",
        ),
    ],
)
def test_scrypt_rfc7914_vectors(password: bytes, salt: bytes, n: int, r: int, p: int, expected: str) -> None:
    assert scrypt_hash(password, salt, n, r, p, 64).hex() == expected


class ManualMonotonicClock:
    """A monotonic clock the test sets by hand (`now`, in seconds)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualMonotonicClock:
    return ManualMonotonicClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualMonotonicClock) -> PasswordStore:
    passwords = PasswordStore(tmp_path / "passwords.json", DEVICE, clock, lockout_seconds=600)
    passwords.install_factory_passwords({"supervisor": "123456", "technician": "888888888888"})
    return passwords


def test_factory_password_must_be_changed_first(store: PasswordStore) -> None:
    assert store.must_change("technician")
    for _ in range(3):  # logging in again and again with it never lets the role in
        result = store.verify("technician", "888888888888")
        assert result.outcome is LoginOutcome.MUST_CHANGE and not result.authenticated
        assert store.must_change("technician")
    assert store.change_password("technician", "888888888888", "2468-0135-tech") is ChangeOutcome.CHANGED
    assert not store.must_change("technician")
    changed = store.verify("technician", "2468-0135-tech")
    assert changed.outcome is LoginOutcome.ACCEPTED and changed.authenticated
    assert store.verify("technician", "888888888888").outcome is LoginOutcome.WRONG


def test_factory_install_never_overwrites(store: PasswordStore) -> None:
    store.change_password("supervisor", "123456", "6543210")
    assert store.install_factory_passwords({"supervisor": "000000", "technician": "000000000000"}) == []
    assert store.verify("supervisor", "6543210").outcome is LoginOutcome.ACCEPTED


def test_lockout_after_five_failures_then_release(store: PasswordStore, clock: ManualMonotonicClock) -> None:
    for attempt in range(1, 5):
        result = store.verify("supervisor", "wrong!")
        assert (result.outcome, result.failures) == (LoginOutcome.WRONG, attempt)
    locked = store.verify("supervisor", "wrong!")
    assert locked.outcome is LoginOutcome.LOCKED and locked.locked_for == 600
    clock.now += 599
    still = store.verify("supervisor", "123456")  # even the right password is refused while locked
    assert still.outcome is LoginOutcome.LOCKED and still.locked_for == pytest.approx(1)
    clock.now += 1
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE  # right, still factory
    assert store.verify("supervisor", "wrong!").failures == 1  # the count started afresh


def test_success_resets_the_count(store: PasswordStore) -> None:
    for _ in range(4):
        store.verify("supervisor", "nope")
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE  # right, still factory
    assert store.verify("supervisor", "nope").outcome is LoginOutcome.WRONG


def test_failure_count_and_lock_survive_a_restart(tmp_path: Path, clock: ManualMonotonicClock) -> None:
    path = tmp_path / "passwords.json"
    first = PasswordStore(path, DEVICE, clock)
    first.install_factory_passwords({"supervisor": "123456"})
    for _ in range(3):
        first.verify("supervisor", "bad")
    second = PasswordStore(path, DEVICE, clock)  # the terminal restarted
    assert second.verify("supervisor", "bad").failures == 4
    assert second.verify("supervisor", "bad").outcome is LoginOutcome.LOCKED
    assert PasswordStore(path, DEVICE, clock).verify("supervisor", "123456").outcome is LoginOutcome.LOCKED


def test_lockout_is_configurable(tmp_path: Path, clock: ManualMonotonicClock) -> None:
    store = PasswordStore(tmp_path / "p.json", DEVICE, clock, max_failures=2, lockout_seconds=30)
    store.install_factory_passwords({"technician": "999999999999"})
    store.verify("technician", "x")
    assert store.verify("technician", "x").locked_for == 30
    with pytest.raises(ConfigError):
        PasswordStore(tmp_path / "p.json", DEVICE, clock, max_failures=0)


def test_change_password_rules(store: PasswordStore) -> None:
    assert store.change_password("supervisor", "123456", "12345") is ChangeOutcome.TOO_SHORT
    assert store.change_password("supervisor", "123456", "123456") is ChangeOutcome.SAME_AS_OLD
    assert store.must_change("supervisor")
    assert store.change_password("supervisor", "bad", "7654321") is ChangeOutcome.WRONG
    for _ in range(4):
        store.verify("supervisor", "bad")
    assert store.change_password("supervisor", "123456", "7654321") is ChangeOutcome.LOCKED


def test_file_is_private_and_holds_no_password(store: PasswordStore, tmp_path: Path) -> None:
    path = tmp_path / "passwords.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    assert b"123456" not in content and b"888888" not in content


def test_comparison_is_constant_time(store: PasswordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording_compare)
    store.verify("supervisor", "wrong")
    assert calls == [(32, 32)]


def test_unknown_role_and_damaged_file(store: PasswordStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cashier"):
        store.verify("cashier", "123456")
    (tmp_path / "passwords.json").write_text('{"format": "pos-passwords-1", "users": {"supervisor": {}}}')
    with pytest.raises(KeyStoreError, match="not sealed"):
        store.verify("supervisor", "123456")
    (tmp_path / "passwords.json").write_text("{")
    with pytest.raises(KeyStoreError, match="damaged"):
        store.roles()


def test_failures_in_two_processes_at_once_both_count(
    tmp_path: Path, clock: ManualMonotonicClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "passwords.json"
    store = PasswordStore(path, DEVICE, clock)
    store.install_factory_passwords({"supervisor": "123456"})
    other_code = (
        "from pathlib import Path\n"
        "from firmware.keys.device import DeviceKey\n"
        "from firmware.keys.passwords import PasswordStore\n"
        f"PasswordStore(Path({str(path)!r}), DeviceKey({DEVICE_KEY_BYTES!r}), lambda: {clock.now!r})"
        ".verify('supervisor', 'guess-1')\n"
    )
    others: list[subprocess.Popen[str]] = []
    real_write = passwords_module.write_atomically

    def write_while_another_process_guesses(target: Path, data: bytes) -> None:
        other = subprocess.Popen(
            [sys.executable, "-c", f"print('ready', flush=True)\n{other_code}"],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        others.append(other)
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        try:  # unlocked, the other process's wrong guess is written well within two seconds
            other.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass  # it waits for the lock this process holds
        real_write(target, data)

    monkeypatch.setattr(passwords_module, "write_atomically", write_while_another_process_guesses)
    assert store.verify("supervisor", "guess-2").failures == 1
    monkeypatch.undo()
    assert others[0].wait(timeout=30) == 0
    assert store.verify("supervisor", "guess-3").failures == 3


def lock(store: PasswordStore, role: str = "supervisor") -> None:
    for _ in range(5):
        result = store.verify(role, "wrong!")
    assert result.outcome is LoginOutcome.LOCKED


def test_a_clock_set_back_does_not_lock_for_years(tmp_path: Path, clock: ManualMonotonicClock) -> None:
    store = PasswordStore(tmp_path / "p.json", DEVICE, clock, lockout_seconds=300, boot_id="boot-1")
    store.install_factory_passwords({"supervisor": "123456"})
    lock(store)
    clock.now = 946_684_800.0  # RTC lost: back to 2000-01-01
    locked = store.verify("supervisor", "123456")
    assert locked.outcome is LoginOutcome.LOCKED and locked.locked_for <= 300
    clock.now += 300
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE


def test_a_clock_set_back_neither_lifts_the_lock_nor_resets_the_count(
    tmp_path: Path, clock: ManualMonotonicClock
) -> None:
    store = PasswordStore(tmp_path / "p.json", DEVICE, clock, lockout_seconds=300, boot_id="boot-1")
    store.install_factory_passwords({"supervisor": "123456"})
    for _ in range(3):
        store.verify("supervisor", "wrong!")
    clock.now -= 86_400
    assert store.verify("supervisor", "wrong!").failures == 4
    assert store.verify("supervisor", "wrong!").outcome is LoginOutcome.LOCKED
    clock.now -= 1_000_000
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.LOCKED
    clock.now += 299
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.LOCKED
    clock.now += 1
    assert store.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE


def test_a_restart_keeps_the_lock_bounded_and_never_shorter(
    tmp_path: Path, clock: ManualMonotonicClock
) -> None:
    path = tmp_path / "p.json"
    first = PasswordStore(path, DEVICE, clock, lockout_seconds=300, boot_id="boot-1")
    first.install_factory_passwords({"supervisor": "123456"})
    lock(first)
    clock.now += 100
    assert first.verify("supervisor", "123456").locked_for == pytest.approx(200)
    clock.now = 12.0  # the next boot: its monotonic clock starts again near zero
    second = PasswordStore(path, DEVICE, clock, lockout_seconds=300, boot_id="boot-2")
    after_restart = second.verify("supervisor", "123456")
    assert after_restart.outcome is LoginOutcome.LOCKED and after_restart.locked_for == pytest.approx(300)
    assert after_restart.failures == 5
    clock.now += 299
    assert second.verify("supervisor", "123456").outcome is LoginOutcome.LOCKED
    clock.now += 1
    assert second.verify("supervisor", "123456").outcome is LoginOutcome.MUST_CHANGE


def test_a_file_of_an_older_unsealed_format_is_refused(tmp_path: Path, clock: ManualMonotonicClock) -> None:
    path = tmp_path / "p.json"
    salt = bytes(16)
    entry = {"salt": salt.hex(), "hash": scrypt_hash(b"123456", salt, 2**14, 8, 1, 32).hex(), "n": 2**14}
    entry.update(r=8, p=1, must_change=False, failures=0, locked_until=0.0)
    path.write_text(json.dumps({"format": "pos-passwords-1", "users": {"supervisor": entry}}))
    with pytest.raises(KeyStoreError, match="not sealed"):
        PasswordStore(path, DEVICE, clock).verify("supervisor", "123456")
