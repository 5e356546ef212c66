"""Supervisor and technician passwords: scrypt hashes in a sealed file, lock-out, factory passwords.

Passwords are kept as scrypt hashes (RFC 7914; n = 2**14, r = 8, p = 5: the
work of n = 2**17, p = 1 within 16 MiB of memory, which a handheld has;
16-byte salt, 32-byte hash) in one small file written crash-safe, each
update under the file's inter-process lock (no failure is lost between
processes). The whole file is sealed under the device key (AES-256-GCM,
`firmware.keys.device`): its hashes, parameters, failure counts and locks
cannot be read, edited or moved to another terminal without the file being
refused (KeyStoreError: a file that is not sealed, sealed under another
device key, or altered). Whatever the sealed file says, the code fixes the
hash length and salt length and refuses parameters below `SCRYPT_N`,
`SCRYPT_R`, `SCRYPT_P` (or above the memory a terminal has): an empty or
one-byte hash, a salt of the wrong size or a parameter scrypt cannot take is
the project's own error, never ValueError or MemoryError.

Password rules (`password_problem`): the supervisor's password is typed on
the keypad, at least `MIN_SUPERVISOR_DIGITS` digits and nothing else; every
other role's (the technician's) at least `MIN_PASSWORD_LENGTH` characters.
After `max_failures` wrong passwords in a row a role is locked for
`lockout_seconds` (default 30 minutes); the failure count and the lock
survive a restart.

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

Not covered here: a whole older copy of the sealed file put back (it opens,
with its older failure count); that is the anti-rollback record's part.
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
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from firmware.clocks import MonotonicClock
from firmware.errors import ConfigError, CryptoError, KeyStoreError, MalformedFileError
from firmware.keys.device import SEALED_NONCE_LENGTH, DeviceKey, sealed_document
from firmware.randomness import Rng
from firmware.store.atomic_file import locked, write_atomically
from firmware.store.json_guard import load_json, read_bounded

__all__ = [
    "DEFAULT_LOCKOUT_SECONDS",
    "MIN_PASSWORD_LENGTH",
    "MIN_SUPERVISOR_DIGITS",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "ChangeOutcome",
    "LoginOutcome",
    "LoginResult",
    "PasswordStore",
    "password_problem",
    "scrypt_hash",
]

log = logging.getLogger(__name__)

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 5
_MAX_SCRYPT_N: Final = 2**20
_MAX_SCRYPT_R: Final = 32
_MAX_SCRYPT_P: Final = 64
_MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024  # 128 * r * n bytes, for a stored hash
_MAX_SCRYPT_HASH_MEMORY: Final = 1024 * 1024 * 1024  # what `scrypt_hash` runs at all (RFC 7914 vectors)
_SALT_LENGTH: Final = 16
_HASH_LENGTH: Final = 32
_FORMAT: Final = "pos-passwords-3"
_UNSEALED_FORMATS: Final = ("pos-passwords-1", "pos-passwords-2")
_MAX_FILE_BYTES: Final = 64 * 1024
_SEALED_FIELDS: Final = frozenset({"format", "device_key_id", "nonce", "sealed"})
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
DEFAULT_LOCKOUT_SECONDS: Final = 30 * 60.0
MIN_PASSWORD_LENGTH: Final = 12
MIN_SUPERVISOR_DIGITS: Final = 6
SUPERVISOR: Final = "supervisor"
_MAX_PASSWORD_LENGTH: Final = 256
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def scrypt_hash(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    """RFC 7914 scrypt; parameters it cannot take (or memory it cannot get) are a CryptoError.

    Checked here, before the library sees them: it panics (not even an Exception) on some overflows.
    """
    for name, value in (("n", n), ("r", r), ("p", p), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CryptoError(f"scrypt parameter {name} must be a positive integer, got {value!r}")
    if n < 2 or n & (n - 1) or r * p >= 2**30 or 128 * r * n > _MAX_SCRYPT_HASH_MEMORY or length > 1024:
        raise CryptoError(f"scrypt cannot run with n={n}, r={r}, p={p}, length={length}")
    if not isinstance(salt, bytes) or not salt:
        raise CryptoError("scrypt needs a salt")
    try:
        return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(password)
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise CryptoError(f"scrypt cannot run with n={n}, r={r}, p={p}, length={length}: {exc}") from None


def password_problem(role: str, password: str) -> str | None:
    """Why `password` may not be `role`'s, or None: the supervisor's is 6+ digits, others' 12+ characters."""
    if len(password) > _MAX_PASSWORD_LENGTH:
        return f"a password has at most {_MAX_PASSWORD_LENGTH} characters"
    if role == SUPERVISOR:
        if not (password.isascii() and password.isdigit()):
            return "the supervisor's password is typed on the keypad: digits only"
        if len(password) < MIN_SUPERVISOR_DIGITS:
            return f"the supervisor's password has at least {MIN_SUPERVISOR_DIGITS} digits"
        return None
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a {role} password has at least {MIN_PASSWORD_LENGTH} characters"
    return None


def _kernel_boot_id() -> str:
    """This boot's id from the kernel; "" when it cannot be read."""
    try:
        return read_bounded(_BOOT_ID_FILE, 64).decode("ascii").strip()
    except (OSError, UnicodeDecodeError, MalformedFileError):
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
    TOO_SHORT = "too_short"  # breaks the password rules (`password_problem`): too short, or not digits
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
    """Passwords of the roles ("supervisor", "technician") in one file sealed under `device_key`."""

    def __init__(
        self,
        path: Path,
        device_key: DeviceKey,
        clock: MonotonicClock,
        *,
        max_failures: int = 5,
        lockout_seconds: float = DEFAULT_LOCKOUT_SECONDS,
        rng: Rng = os.urandom,
        boot_id: str | None = None,
    ) -> None:
        """`clock` is monotonic (seconds, never set back); `boot_id` names its epoch (default: kernel's)."""
        if max_failures < 1 or lockout_seconds <= 0:
            raise ConfigError("password lock-out needs max_failures >= 1 and lockout_seconds > 0")
        self._path = Path(path)
        self._device_key = device_key
        self._clock = clock
        self._max_failures = max_failures
        self._lockout_seconds = lockout_seconds
        self._rng = rng
        # Unknown boot: each store object counts as a new boot (a lock restarts, never shortens).
        self._boot_id = boot_id if boot_id is not None else _kernel_boot_id() or rng(8).hex()

    # ----- file --------------------------------------------------------------------

    def _damaged(self, what: str) -> KeyStoreError:
        return KeyStoreError(f"password file {self._path} is damaged: {what}")

    def _aad(self) -> bytes:
        return f"{_FORMAT}\x00{self._device_key.key_id}".encode("ascii")

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = read_bounded(self._path, _MAX_FILE_BYTES)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyStoreError(f"cannot read password file {self._path}: {exc.strerror}") from exc
        except MalformedFileError as exc:
            raise self._damaged(f"larger than {_MAX_FILE_BYTES} bytes") from exc
        try:
            document = load_json(raw, str(self._path))
        except MalformedFileError as exc:
            raise self._damaged(f"not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise self._damaged("unknown format")
        if document.get("format") in _UNSEALED_FORMATS:
            raise KeyStoreError(
                f"password file {self._path} is not sealed (written by an older firmware): "
                "set the passwords again (pos-keys set-password) after removing it"
            )
        if document.get("format") != _FORMAT or set(document) != _SEALED_FIELDS:
            raise self._damaged("unknown format")
        owner = document.get("device_key_id")
        if owner != self._device_key.key_id:
            raise KeyStoreError(
                f"password file {self._path} was sealed under another device key "
                f"(file {owner}, this device {self._device_key.key_id})"
            )
        try:
            nonce, sealed = bytes.fromhex(document["nonce"]), bytes.fromhex(document["sealed"])
            if len(nonce) != SEALED_NONCE_LENGTH:
                raise ValueError("nonce length")
            plain = self._device_key.open(sealed, self._aad(), nonce)
        except (KeyError, TypeError, ValueError, InvalidTag) as exc:
            raise KeyStoreError(
                f"password file {self._path} fails authentication (file tampered or damaged)"
            ) from exc
        try:
            users = load_json(plain, str(self._path))["users"]
        except (MalformedFileError, KeyError, TypeError) as exc:
            raise self._damaged("field 'users'") from exc
        if not isinstance(users, dict):
            raise self._damaged("field 'users'")
        for role, user in users.items():
            self._check_entry(role, user)
        return users

    def _check_entry(self, role: str, user: object) -> None:
        """Refuse an entry this code would not write, sealed or not: types, lengths, scrypt bounds."""
        fields: dict[str, type | tuple[type, ...]] = {
            "salt": str,
            "hash": str,
            "n": int,
            "r": int,
            "p": int,
            "must_change": bool,
            "failures": int,
            "lock_remaining": (int, float),
            "lock_since": (int, float),
            "lock_boot": str,
        }
        if not isinstance(user, dict):
            raise self._damaged(f"entry {role!r}")
        for field, field_type in fields.items():
            value = user.get(field)
            if not isinstance(value, field_type) or (field_type is int and isinstance(value, bool)):
                raise self._damaged(f"entry {role!r} field {field!r}")
        try:
            salt, digest = bytes.fromhex(user["salt"]), bytes.fromhex(user["hash"])
        except ValueError:
            raise self._damaged(f"entry {role!r}: salt or hash is not hex") from None
        if len(salt) != _SALT_LENGTH or len(digest) != _HASH_LENGTH:
            raise self._damaged(f"entry {role!r}: salt or hash of the wrong length")
        n, r, p = user["n"], user["r"], user["p"]
        if (
            not SCRYPT_N <= n <= _MAX_SCRYPT_N
            or n & (n - 1)
            or not SCRYPT_R <= r <= _MAX_SCRYPT_R
            or not SCRYPT_P <= p <= _MAX_SCRYPT_P
            or 128 * r * n > _MAX_SCRYPT_MEMORY
        ):
            raise self._damaged(f"entry {role!r}: scrypt parameters n={n}, r={r}, p={p} are not allowed")
        if user["failures"] < 0:
            raise self._damaged(f"entry {role!r} field 'failures'")

    def _save(self, users: Mapping[str, Mapping[str, Any]]) -> None:
        plain = json.dumps({"users": dict(users)}, sort_keys=True, allow_nan=False).encode()
        document = sealed_document(self._device_key, self._rng, _FORMAT, plain, self._aad())
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
        """The entry was checked by `_check_entry`: 16-byte salt, 32-byte hash, parameters in bounds."""
        salt, expected = bytes.fromhex(user["salt"]), bytes.fromhex(user["hash"])
        digest = scrypt_hash(password.encode("utf-8"), salt, user["n"], user["r"], user["p"], _HASH_LENGTH)
        return hmac.compare_digest(digest, expected)

    # ----- setting passwords ---------------------------------------------------------

    def install_factory_passwords(self, passwords: Mapping[str, str]) -> list[str]:
        """Give each role without a password its factory password (flagged must_change); returns those set."""
        for role, password in passwords.items():
            if not _ROLE.match(role):
                raise ConfigError(f"role name {role!r} is not allowed")
            problem = password_problem(role, password)
            if problem is not None:
                raise ConfigError(f"factory password of {role}: {problem}")
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
        problem = password_problem(role, password)
        if problem is not None:
            raise ConfigError(problem)
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
            elif password_problem(role, new_password) is not None:
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
