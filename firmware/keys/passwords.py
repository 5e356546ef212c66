"""Supervisor and technician passwords: scrypt hashes, lock-out, factory passwords.

Passwords are kept as scrypt hashes (n = 2**14, r = 8, p = 1, 16-byte salt,
32-byte hash) in one small JSON file written crash-safe, each update under
the file's inter-process lock (no failure is lost between processes). After
`max_failures` wrong passwords in a row a role is locked for
`lockout_seconds`; the failure count and the lock survive a restart.

The lock-out never trusts the wall clock, which an operator or the host's
sign-on answer can set: time is read from a monotonic clock (`clock`,
e.g. `time.monotonic`), and the file keeps the seconds of lock left, the
clock reading they were counted from and the boot that reading belongs to.
On another boot, or if the clock reads earlier than that (it went back),
the remaining time is counted again from now: a lock never lasts more
than `lockout_seconds` from now, a restart never shortens it, and no clock
step resets the failure count. A
factory password is flagged `must_change`: logging in with it gives
MUST_CHANGE, which is not `authenticated`; the operator must set a new
password (`change_password`) before the role is let in.
A login attempt is an outcome (LoginResult), never an exception.
"""

from __future__ import annotations

import enum
import hmac
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from firmware.clocks import MonotonicClock
from firmware.errors import ConfigError, KeyStoreError
from firmware.randomness import Rng
from firmware.store.atomic_file import locked, write_atomically

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "ChangeOutcome",
    "LoginOutcome",
    "LoginResult",
    "PasswordStore",
    "scrypt_hash",
]

log = logging.getLogger(__name__)

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_LENGTH = 16
_HASH_LENGTH = 32
_FORMAT = "pos-passwords-2"
_FORMAT_V1 = "pos-passwords-1"  # kept "locked_until" in wall-clock seconds: read, and converted
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
MIN_PASSWORD_LENGTH = 6
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def scrypt_hash(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(password)


def _kernel_boot_id() -> str:
    """This boot's id from the kernel; "" when it cannot be read."""
    try:
        return _BOOT_ID_FILE.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


class LoginOutcome(enum.Enum):
    ACCEPTED = "accepted"
    MUST_CHANGE = "must_change"  # right password, but a factory one: change it before anything else
    WRONG = "wrong"
    LOCKED = "locked"


class ChangeOutcome(enum.Enum):
    CHANGED = "changed"
    WRONG = "wrong"
    LOCKED = "locked"
    TOO_SHORT = "too_short"
    SAME_AS_OLD = "same_as_old"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    failures: int = 0  # consecutive wrong passwords so far
    locked_for: float = 0.0  # seconds until the lock lifts

    @property
    def authenticated(self) -> bool:
        """Only a changed password authenticates: a factory one (MUST_CHANGE) opens nothing but the change."""
        return self.outcome is LoginOutcome.ACCEPTED


class PasswordStore:
    """Passwords of the terminal's roles ("supervisor", "technician") in one JSON file."""

    def __init__(
        self,
        path: Path,
        clock: MonotonicClock,
        *,
        max_failures: int = 5,
        lockout_seconds: float = 300.0,
        rng: Rng = os.urandom,
        boot_id: str | None = None,
    ) -> None:
        """`clock` is monotonic (seconds, never set back); `boot_id` names its epoch (default: kernel's)."""
        if max_failures < 1 or lockout_seconds <= 0:
            raise ConfigError("password lock-out needs max_failures >= 1 and lockout_seconds > 0")
        self._path = Path(path)
        self._clock = clock
        self._max_failures = max_failures
        self._lockout_seconds = lockout_seconds
        self._rng = rng
        # Unknown boot: each store object counts as a new boot (a lock restarts, never shortens).
        self._boot_id = boot_id if boot_id is not None else _kernel_boot_id() or rng(8).hex()

    # ----- file --------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self._path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyStoreError(f"cannot read password file {self._path}: {exc.strerror}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"password file {self._path} is damaged: not valid JSON") from exc
        if not isinstance(document, dict) or document.get("format") not in (_FORMAT, _FORMAT_V1):
            raise KeyStoreError(f"password file {self._path} is damaged: unknown format")
        users = document.get("users")
        if not isinstance(users, dict):
            raise KeyStoreError(f"password file {self._path} is damaged: field 'users'")
        fields: dict[str, type | tuple[type, ...]] = {
            "salt": str,
            "hash": str,
            "n": int,
            "r": int,
            "p": int,
            "must_change": bool,
            "failures": int,
        }
        if document["format"] == _FORMAT:
            fields.update(lock_remaining=(int, float), lock_since=(int, float), lock_boot=str)
        else:
            fields.update(locked_until=(int, float))
        for role, user in users.items():
            if not isinstance(user, dict):
                raise KeyStoreError(f"password file {self._path} is damaged: entry {role!r}")
            for field, field_type in fields.items():
                if not isinstance(user.get(field), field_type):
                    raise KeyStoreError(
                        f"password file {self._path} is damaged: entry {role!r} field {field!r}"
                    )
            if document["format"] == _FORMAT_V1:
                # A wall-clock lock end cannot be read on a monotonic clock: a lock (perhaps run
                # out already) is taken as a whole lock-out from now.
                remaining = self._lockout_seconds if user.pop("locked_until") else 0.0
                user.update(lock_remaining=remaining, lock_since=0.0, lock_boot="")
        return users

    def _save(self, users: Mapping[str, Mapping[str, Any]]) -> None:
        document = {"format": _FORMAT, "users": dict(users)}
        write_atomically(self._path, json.dumps(document, sort_keys=True, indent=1).encode())

    def _new_entry(self, password: str, must_change: bool) -> dict[str, Any]:
        salt = self._rng(_SALT_LENGTH)
        if len(salt) != _SALT_LENGTH:
            raise KeyStoreError("random source returned too few bytes for a salt")
        digest = scrypt_hash(password.encode("utf-8"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, _HASH_LENGTH)
        return {
            "salt": salt.hex(),
            "hash": digest.hex(),
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "must_change": must_change,
            "failures": 0,
            "lock_remaining": 0.0,
            "lock_since": 0.0,
            "lock_boot": "",
        }

    @staticmethod
    def _matches(user: Mapping[str, Any], password: str) -> bool:
        salt, expected = bytes.fromhex(user["salt"]), bytes.fromhex(user["hash"])
        digest = scrypt_hash(password.encode("utf-8"), salt, user["n"], user["r"], user["p"], len(expected))
        return hmac.compare_digest(digest, expected)

    # ----- setting passwords ---------------------------------------------------------

    def install_factory_passwords(self, passwords: Mapping[str, str]) -> list[str]:
        """Give each role without a password its factory password (flagged must_change); returns those set."""
        for role in passwords:
            if not _ROLE.match(role):
                raise ConfigError(f"role name {role!r} is not allowed")
        with locked(self._path):
            users = self._load()
            added = [role for role in passwords if role not in users]
            for role in added:
                users[role] = self._new_entry(passwords[role], must_change=True)
            if added:
                self._save(users)
        if added:
            log.info("factory passwords installed for %s", ", ".join(added))
        return added

    def set_first_password(self, role: str, password: str) -> bool:
        """Set the password of a role that has none (the technician's first set-up); False if it has one."""
        if not _ROLE.match(role):
            raise ConfigError(f"role name {role!r} is not allowed")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ConfigError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        with locked(self._path):
            users = self._load()
            if role in users:
                return False
            users[role] = self._new_entry(password, must_change=False)
            self._save(users)
        log.info("first password set for %s", role)
        return True

    def roles(self) -> list[str]:
        return sorted(self._load())

    def must_change(self, role: str) -> bool:
        return bool(self._user(self._load(), role)["must_change"])

    def _user(self, users: Mapping[str, dict[str, Any]], role: str) -> dict[str, Any]:
        user = users.get(role)
        if user is None:
            raise ConfigError(f"no password is set for role {role!r}")
        return user

    # ----- logging in ------------------------------------------------------------------

    def _lock_left(self, user: dict[str, Any], now: float) -> float:
        """Seconds the role stays locked (0: not locked); re-counts from `now` when the clock reading
        the lock was counted from is from another boot or later than `now` (the clock went back)."""
        remaining = min(float(user["lock_remaining"]), self._lockout_seconds)
        if remaining <= 0:
            return 0.0
        if user["lock_boot"] != self._boot_id or now < user["lock_since"]:
            user.update(lock_remaining=remaining, lock_since=now, lock_boot=self._boot_id)
            return remaining
        return max(0.0, remaining - (now - float(user["lock_since"])))

    def _attempt(self, users: dict[str, dict[str, Any]], role: str, password: str) -> LoginResult:
        """Check a password, counting failures and locks in `users` (the caller saves)."""
        user = self._user(users, role)
        now = self._clock()
        locked_for = self._lock_left(user, now)
        if locked_for > 0:
            return LoginResult(LoginOutcome.LOCKED, user["failures"], locked_for)
        if user["lock_remaining"]:  # a lock that has run out starts a fresh count
            user.update(failures=0, lock_remaining=0.0, lock_since=0.0, lock_boot="")
        if self._matches(user, password):
            user["failures"] = 0
            outcome = LoginOutcome.MUST_CHANGE if user["must_change"] else LoginOutcome.ACCEPTED
            return LoginResult(outcome)
        user["failures"] += 1
        if user["failures"] >= self._max_failures:
            user.update(lock_remaining=self._lockout_seconds, lock_since=now, lock_boot=self._boot_id)
            log.warning(
                "role %s locked for %.0f s after %d wrong passwords",
                role,
                self._lockout_seconds,
                user["failures"],
            )
            return LoginResult(LoginOutcome.LOCKED, user["failures"], self._lockout_seconds)
        return LoginResult(LoginOutcome.WRONG, user["failures"])

    def verify(self, role: str, password: str) -> LoginResult:
        """Try a login; the failure count and lock are written before the result is returned."""
        with locked(self._path):
            users = self._load()
            before = json.dumps(users, sort_keys=True)
            result = self._attempt(users, role, password)
            if json.dumps(users, sort_keys=True) != before:
                self._save(users)
        if result.outcome is LoginOutcome.WRONG:
            log.info("wrong password for %s (%d in a row)", role, result.failures)
        return result

    def change_password(self, role: str, old_password: str, new_password: str) -> ChangeOutcome:
        """Change a password after checking the old one (which counts toward the lock-out)."""
        with locked(self._path):
            users = self._load()
            before = json.dumps(users, sort_keys=True)
            result = self._attempt(users, role, old_password)
            outcome: ChangeOutcome
            if result.outcome is LoginOutcome.LOCKED:
                outcome = ChangeOutcome.LOCKED
            elif result.outcome is LoginOutcome.WRONG:
                outcome = ChangeOutcome.WRONG
            elif len(new_password) < MIN_PASSWORD_LENGTH:
                outcome = ChangeOutcome.TOO_SHORT
            elif hmac.compare_digest(new_password.encode("utf-8"), old_password.encode("utf-8")):
                outcome = ChangeOutcome.SAME_AS_OLD
            else:
                users[role] = self._new_entry(new_password, must_change=False)
                outcome = ChangeOutcome.CHANGED
            if json.dumps(users, sort_keys=True) != before:
                self._save(users)
        log.info("password change for %s: %s", role, outcome.value)
        return outcome
