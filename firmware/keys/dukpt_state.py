"""The DUKPT originating device at rest: its registers and counter, sealed, one transaction at a time.

X9.24-1 (TDES) and X9.24-3 (AES) let a device keep only what the next
transactions need: the future key registers (TDES, 21) or the intermediate
derivation key registers (AES, 32) and the transaction counter. The initial
key fills the registers once (`DukptState.from_initial_key`) and is never
stored; a register is erased once it has been used.

The state lives in `DATA_DIR/keys/dukpt.json` (mode 0600), written
crash-safely (temp, fsync, rename, fsync dir) under the file's inter-process
lock. The registers are sealed with AES-256-GCM under the device key; the
metadata shown in clear (algorithm, initial KSN or key ID, next counter, KCV
of the initial key, TR-31 key version, the initial key IDs loaded before) is
the GCM associated data, so any change to it, or to the registers, makes the
file refuse to open (KeyStoreError).

`PersistentDukptTerminal.next_transaction` reads the state, steps it and
writes the new state before it returns the transaction's keys: a power cut
can cost a counter, never give one twice. Once exhausted the state says so
and stays so. An initial key ID loaded once is never loaded again (its
counter would start over), and a versioned key only gives way to a newer one.

Against an older copy put back whole, or the file deleted, the state is
written in the anti-rollback record's guarded step (`firmware.keys.monotonic`)
with the facts that outlive the file: every initial key ID ever loaded
(`initial_key_ids`), the counter reached by each (`counter.ID`) and the last
key version (`key_version`). A reader refuses a file older than the record
or missing while the record says it exists (KeyStoreError naming the file),
and `install` refuses an initial key ID the record lists even when the file
is gone. Only the whole data directory put back at once, record included,
needs more: the TPM counter the record can be bound to.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

from cryptography.exceptions import InvalidTag

from firmware.errors import (
    CryptoError,
    KeyBlockError,
    KeyExhaustedError,
    KeyStoreError,
    MalformedFileError,
    RolledBackError,
    StoreError,
)
from firmware.keys import dukpt_aes, dukpt_tdes
from firmware.keys.device import DeviceKey
from firmware.keys.dukpt_aes import AesDukptTerminal, AesTransactionKeys, KeyType
from firmware.keys.dukpt_registers import lowest_set_bit
from firmware.keys.dukpt_tdes import TdesDukptTerminal, TdesTransactionKeys
from firmware.keys.kcv import KIND_AES, KIND_TDES, kcv_hex
from firmware.keys.monotonic import MonotonicRecord
from firmware.keys.tr31 import NO_KEY_VERSION, check_newer_key_version
from firmware.randomness import Rng
from firmware.store.atomic_file import locked
from firmware.store.json_guard import load_json, read_bounded

__all__ = [
    "DUKPT_ALGORITHMS",
    "DUKPT_FILE_NAME",
    "DukptInfo",
    "DukptState",
    "DukptTransactionKeys",
    "PersistentDukptTerminal",
    "take_transaction",
]

log = logging.getLogger(__name__)

DUKPT_FILE_NAME: Final = "dukpt.json"
DUKPT_RECORD_NAME: Final = "dukpt"  # its name in the anti-rollback record
DUKPT_ALGORITHMS: Final = (KIND_TDES, KIND_AES)
_FORMAT: Final = "pos-dukpt-1"
_NONCE_LENGTH: Final = 12
_MAX_STATE_BYTES: Final = 1 << 20  # a few registers: a larger file is not a state of this device
_BITMAP_LENGTH: Final = 4  # one bit per register, register 0 the least significant

DukptTransactionKeys = TdesTransactionKeys | AesTransactionKeys


@dataclass(frozen=True)
class _Parameters:
    counter_bits: int
    max_one_bits: int
    id_length: int  # TDES: the initial KSN (counter bits zero); AES: the initial key ID
    key_lengths: tuple[int, ...]


_PARAMETERS: Final = {
    KIND_TDES: _Parameters(dukpt_tdes.COUNTER_BITS, dukpt_tdes.MAX_ONE_BITS, dukpt_tdes.KSN_LENGTH, (16,)),
    KIND_AES: _Parameters(
        dukpt_aes.COUNTER_BITS, dukpt_aes.MAX_ONE_BITS, dukpt_aes.INITIAL_KEY_ID_LENGTH, (16, 24, 32)
    ),
}


def _parameters(algorithm: str) -> _Parameters:
    parameters = _PARAMETERS.get(algorithm)
    if parameters is None:
        raise CryptoError(f"unknown DUKPT algorithm {algorithm!r} (expected tdes or aes)")
    return parameters


def _check_initial_key_id(algorithm: str, initial_key_id: bytes) -> None:
    parameters = _parameters(algorithm)
    if len(initial_key_id) != parameters.id_length:
        what = "initial KSN" if algorithm == KIND_TDES else "initial key ID"
        raise CryptoError(
            f"DUKPT {algorithm} {what} must be {parameters.id_length} bytes, got {len(initial_key_id)}"
        )
    if algorithm == KIND_TDES and dukpt_tdes.ksn_counter(initial_key_id):
        raise CryptoError(
            f"initial KSN {initial_key_id.hex().upper()} has a non-zero transaction counter "
            f"(its rightmost {dukpt_tdes.COUNTER_BITS} bits)"
        )


def _is_device_counter(parameters: _Parameters, counter: int) -> bool:
    """A counter a device can be at: usable, or the one past the last (exhausted)."""
    if counter == 1 << parameters.counter_bits:
        return True
    return 0 < counter < 1 << parameters.counter_bits and counter.bit_count() <= parameters.max_one_bits


@dataclass(frozen=True)
class DukptInfo:
    """What may be shown about a DUKPT device: never a key."""

    algorithm: str
    initial_key_id: bytes  # TDES: initial KSN (counter zero); AES: the 8-byte initial key ID
    counter: int  # the counter the next transaction uses; past the last one once exhausted
    kcv: str  # of the initial key, computed when it was loaded
    key_version: str  # TR-31 key version number of the block it came in
    live_registers: tuple[int, ...]  # positions of the registers that hold a key

    @property
    def exhausted(self) -> bool:
        return self.counter >= 1 << _parameters(self.algorithm).counter_bits

    @property
    def next_ksn(self) -> bytes | None:
        """The KSN the next transaction sends; None once exhausted."""
        if self.exhausted:
            return None
        if self.algorithm == KIND_TDES:
            return dukpt_tdes.ksn_with_counter(self.initial_key_id, self.counter)
        return dukpt_aes.ksn_of(self.initial_key_id, self.counter)


@dataclass(frozen=True, repr=False)
class DukptState:
    """Registers and next counter of a DUKPT device; the initial key is not part of it."""

    algorithm: str
    initial_key_id: bytes
    key_length: int
    counter: int
    registers: tuple[bytes | None, ...]
    kcv: str
    key_version: str = NO_KEY_VERSION

    @classmethod
    def from_initial_key(
        cls, algorithm: str, initial_key: bytes, initial_key_id: bytes, key_version: str = NO_KEY_VERSION
    ) -> DukptState:
        """Fill the registers from the initial key (which the caller then drops); counter 1."""
        _check_initial_key_id(algorithm, initial_key_id)
        terminal: TdesDukptTerminal | AesDukptTerminal
        if algorithm == KIND_TDES:
            terminal = TdesDukptTerminal.load_initial_key(initial_key, initial_key_id)
        else:
            terminal = AesDukptTerminal.load_initial_key(initial_key, initial_key_id)
        return cls._of(algorithm, initial_key, initial_key_id, key_version, terminal)

    @classmethod
    def at_counter(
        cls,
        algorithm: str,
        initial_key: bytes,
        initial_key_id: bytes,
        counter: int,
        key_version: str = NO_KEY_VERSION,
    ) -> DukptState:
        """The state of a device whose next transaction uses `counter` (recovery, tests)."""
        _check_initial_key_id(algorithm, initial_key_id)
        terminal: TdesDukptTerminal | AesDukptTerminal
        if algorithm == KIND_TDES:
            ksn = dukpt_tdes.ksn_with_counter(initial_key_id, counter)
            terminal = TdesDukptTerminal.at_counter(initial_key, ksn)
        else:
            terminal = AesDukptTerminal.at_counter(initial_key, initial_key_id, counter)
        return cls._of(algorithm, initial_key, initial_key_id, key_version, terminal)

    @classmethod
    def _of(
        cls,
        algorithm: str,
        initial_key: bytes,
        initial_key_id: bytes,
        key_version: str,
        terminal: TdesDukptTerminal | AesDukptTerminal,
    ) -> DukptState:
        if len(key_version) != 2 or not key_version.isalnum():
            raise CryptoError(f"key version {key_version!r} must be 2 letters or digits")
        return cls(
            algorithm=algorithm,
            initial_key_id=bytes(initial_key_id),
            key_length=len(initial_key),
            counter=terminal.next_counter,
            registers=terminal.registers,
            kcv=kcv_hex(algorithm, initial_key),
            key_version=key_version,
        )

    @property
    def exhausted(self) -> bool:
        return self.counter >= 1 << _parameters(self.algorithm).counter_bits

    @property
    def live_registers(self) -> tuple[int, ...]:
        return tuple(position for position, key in enumerate(self.registers) if key is not None)

    def info(self) -> DukptInfo:
        return DukptInfo(
            self.algorithm, self.initial_key_id, self.counter, self.kcv, self.key_version, self.live_registers
        )

    def __repr__(self) -> str:
        return (
            f"DukptState({self.algorithm}, id={self.initial_key_id.hex().upper()}, counter={self.counter}, "
            f"KCV {self.kcv})"
        )


def take_transaction(state: DukptState) -> tuple[DukptState, DukptTransactionKeys]:
    """The next transaction's keys and the state after it (the used register erased); pure."""
    if state.exhausted:
        raise KeyExhaustedError(
            f"DUKPT {state.algorithm} device {state.initial_key_id.hex().upper()} has used every "
            "transaction counter: load a new initial key"
        )
    terminal: TdesDukptTerminal | AesDukptTerminal
    if state.algorithm == KIND_TDES:
        terminal = TdesDukptTerminal.resume(state.initial_key_id, state.counter, state.registers)
    else:
        key_type = KeyType.aes_for_length(state.key_length)
        terminal = AesDukptTerminal.resume(state.initial_key_id, key_type, state.counter, state.registers)
    keys = terminal.next_transaction()
    registers = terminal.registers
    if terminal.exhausted:  # nothing left to derive from: no register outlives the last counter
        registers = (None,) * len(registers)
    return dataclasses.replace(state, counter=terminal.next_counter, registers=registers), keys


def _state_problem(state: DukptState) -> str | None:
    """What makes `state` one no device can be in (None: it is consistent)."""
    parameters = _PARAMETERS.get(state.algorithm)
    if parameters is None:
        return f"unknown algorithm {state.algorithm!r}"
    try:
        _check_initial_key_id(state.algorithm, state.initial_key_id)
    except CryptoError as exc:
        return str(exc)
    if state.key_length not in parameters.key_lengths:
        return f"register length {state.key_length}"
    if len(state.key_version) != 2 or not state.key_version.isalnum():
        return f"key version {state.key_version!r}"
    if not _is_device_counter(parameters, state.counter):
        return f"counter {state.counter:#x} is not one a device can be at"
    if len(state.registers) != parameters.counter_bits:
        return f"{len(state.registers)} registers instead of {parameters.counter_bits}"
    if any(key is not None and len(key) != state.key_length for key in state.registers):
        return f"a register that is not {state.key_length} bytes"
    if state.exhausted:
        return "an exhausted device still holds registers" if state.live_registers else None
    needed = lowest_set_bit(state.counter)
    if state.registers[needed] is None:
        return f"register {needed}, needed by counter {state.counter:#x}, is empty"
    return None


# ----- the sealed record -------------------------------------------------------------------


class _Record(NamedTuple):
    state: DukptState
    retired: tuple[bytes, ...]  # initial key IDs this device held before the current one


def _aad(device_key_id: str, fields: Mapping[str, Any]) -> bytes:
    values = [
        _FORMAT,
        device_key_id,
        fields["algorithm"],
        fields["initial_key_id"],
        fields["key_length"],
        fields["counter"],
        fields["kcv"],
        fields["key_version"],
        fields["retired"],
    ]
    return json.dumps(values, separators=(",", ":")).encode()


def _pack_registers(registers: Sequence[bytes | None]) -> bytes:
    bitmap = sum(1 << position for position, key in enumerate(registers) if key is not None)
    return bitmap.to_bytes(_BITMAP_LENGTH, "big") + b"".join(key for key in registers if key is not None)


def _seal(device_key: DeviceKey, record: _Record, nonce: bytes) -> dict[str, Any]:
    state = record.state
    fields: dict[str, Any] = {
        "algorithm": state.algorithm,
        "initial_key_id": state.initial_key_id.hex().upper(),
        "key_length": state.key_length,
        "counter": state.counter,
        "kcv": state.kcv,
        "key_version": state.key_version,
        "retired": [initial_key_id.hex().upper() for initial_key_id in record.retired],
    }
    sealed = device_key.seal(_pack_registers(state.registers), _aad(device_key.key_id, fields), nonce)
    header = {"format": _FORMAT, "device_key_id": device_key.key_id}
    return {**header, **fields, "nonce": nonce.hex(), "sealed": sealed.hex()}


_FIELD_TYPES: Final[Mapping[str, type]] = {
    "algorithm": str,
    "initial_key_id": str,
    "key_length": int,
    "counter": int,
    "kcv": str,
    "key_version": str,
    "retired": list,
    "nonce": str,
    "sealed": str,
}


def _open(device_key: DeviceKey, document: object, where: Path) -> _Record:
    """The record of a parsed dukpt.json, after checking its seal and its shape; KeyStoreError if not."""

    def damaged(what: str) -> KeyStoreError:
        return KeyStoreError(f"DUKPT state {where} is damaged: {what}")

    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise damaged("unknown format")
    owner = document.get("device_key_id")
    if owner != device_key.key_id:
        raise KeyStoreError(
            f"DUKPT state {where} was written under another device key "
            f"(state {owner}, this device {device_key.key_id}): wrong device key"
        )
    for field, field_type in _FIELD_TYPES.items():
        value = document.get(field)
        if not isinstance(value, field_type) or isinstance(value, bool):
            raise damaged(f"field {field!r}")
    if not all(isinstance(initial_key_id, str) for initial_key_id in document["retired"]):
        raise damaged("field 'retired'")
    try:
        plain = device_key.open(
            bytes.fromhex(document["sealed"]), _aad(owner, document), bytes.fromhex(document["nonce"])
        )
    except (ValueError, InvalidTag) as exc:
        raise KeyStoreError(f"DUKPT state {where} fails authentication (file tampered or damaged)") from exc
    # Authentic from here on: what follows catches a state this firmware could never have written.
    parameters = _PARAMETERS.get(document["algorithm"])
    if parameters is None:
        raise damaged(f"unknown algorithm {document['algorithm']!r}")
    try:
        initial_key_id = bytes.fromhex(document["initial_key_id"])
        retired = tuple(bytes.fromhex(initial_key_id) for initial_key_id in document["retired"])
    except ValueError as exc:
        raise damaged("initial key ID is not hex") from exc
    state = DukptState(
        algorithm=document["algorithm"],
        initial_key_id=initial_key_id,
        key_length=document["key_length"],
        counter=document["counter"],
        registers=_unpack_registers(plain, parameters.counter_bits, document["key_length"], damaged),
        kcv=document["kcv"],
        key_version=document["key_version"],
    )
    problem = _state_problem(state)
    if problem is not None:
        raise damaged(problem)
    return _Record(state, retired)


def _unpack_registers(
    plain: bytes, count: int, key_length: int, damaged: Callable[[str], KeyStoreError]
) -> tuple[bytes | None, ...]:
    if len(plain) < _BITMAP_LENGTH:
        raise damaged("register map")
    bitmap = int.from_bytes(plain[:_BITMAP_LENGTH], "big")
    if bitmap >> count:
        raise damaged("register map names a register past the last")
    keys = plain[_BITMAP_LENGTH:]
    if len(keys) != bitmap.bit_count() * key_length:
        raise damaged("register data does not match the register map")
    registers: list[bytes | None] = []
    offset = 0
    for position in range(count):
        if bitmap >> position & 1:
            registers.append(keys[offset : offset + key_length])
            offset += key_length
        else:
            registers.append(None)
    return tuple(registers)


# ----- the device --------------------------------------------------------------------------


class PersistentDukptTerminal:
    """A DUKPT originating device whose state lives in `directory/dukpt.json`, sealed."""

    def __init__(
        self,
        directory: Path,
        device_key: DeviceKey,
        rng: Rng = os.urandom,
        *,
        record: MonotonicRecord | None = None,
    ) -> None:
        self._path = Path(directory) / DUKPT_FILE_NAME
        self._device_key = device_key
        self._rng = rng
        record = record or MonotonicRecord.beside(Path(directory), device_key)
        self._guard = record.guard(DUKPT_RECORD_NAME, self._path)

    @property
    def path(self) -> Path:
        return self._path

    def is_loaded(self) -> bool:
        """Whether an initial key has been loaded (KeyStoreError if its state is missing or put back)."""
        return self._read() is not None

    def _read(self, *, holding_lock: bool = False) -> _Record | None:
        try:
            raw = read_bounded(self._path, _MAX_STATE_BYTES)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise KeyStoreError(f"cannot read DUKPT state {self._path}: {exc.strerror}") from exc
        except MalformedFileError as exc:
            raise KeyStoreError(f"DUKPT state {self._path} is damaged: {exc}") from exc
        try:
            self._guard.verify(raw, holding_lock=holding_lock)
        except RolledBackError as exc:
            if raw is not None:
                self._parse(raw)  # a file that fails authentication is named as such first
            if holding_lock:
                raise KeyStoreError(str(exc)) from exc
            try:
                raw = self._guard.read(holding_lock=False)  # again, under the lock
            except RolledBackError as again:
                raise KeyStoreError(str(again)) from again
        except StoreError as exc:
            raise KeyStoreError(str(exc)) from exc
        return None if raw is None else self._parse(raw)

    def _parse(self, raw: bytes) -> _Record:
        try:
            document = load_json(raw, str(self._path))
        except MalformedFileError as exc:
            raise KeyStoreError(f"DUKPT state {self._path} is damaged: not valid JSON ({exc})") from exc
        return _open(self._device_key, document, self._path)

    def _read_loaded(self, *, holding_lock: bool = False) -> _Record:
        record = self._read(holding_lock=holding_lock)
        if record is None:
            raise KeyStoreError("no DUKPT initial key loaded (run `pos-keys load-dukpt`)")
        return record

    def _write(self, record: _Record) -> None:
        nonce = self._rng(_NONCE_LENGTH)
        if len(nonce) != _NONCE_LENGTH:
            raise KeyStoreError("random source returned too few bytes for a nonce")
        document = _seal(self._device_key, record, nonce)
        state = record.state
        loaded = [initial_key_id.hex().upper() for initial_key_id in (*record.retired, state.initial_key_id)]
        facts = {
            "initial_key_ids": loaded,
            f"counter.{state.initial_key_id.hex().upper()}": state.counter,
            "key_version": state.key_version,
        }
        try:
            self._guard.write(json.dumps(document, indent=1).encode(), facts)
        except StoreError as exc:
            raise KeyStoreError(str(exc)) from exc

    def read_state(self) -> DukptState:
        """The state now, registers included (KeyStoreError if none is loaded or the file is damaged)."""
        return self._read_loaded().state

    def info(self) -> DukptInfo:
        """Algorithm, initial KSN or key ID, next counter and KCV, after checking the file opens."""
        return self.read_state().info()

    def install(self, state: DukptState) -> DukptInfo:
        """Make `state` (fresh from an initial key) the device's, replacing the one before.

        KeyBlockError if its initial key ID was ever loaded on this device, or
        if its key version is not newer than a versioned installed key's;
        CryptoError for a state no device can be in; a damaged state file is
        not replaced (KeyStoreError).
        """
        problem = _state_problem(state)
        if problem is not None:
            raise CryptoError(f"DUKPT state not installed: {problem}")
        with locked(self._path):
            current = self._read(holding_lock=True)
            retired: tuple[bytes, ...] = ()
            try:
                facts = self._guard.facts()
            except StoreError as exc:
                raise KeyStoreError(str(exc)) from exc
            ever_loaded = facts.get("initial_key_ids", [])
            last_version = facts.get("key_version")
            if current is not None:
                retired = (*current.retired, current.state.initial_key_id)
                check_newer_key_version(state.key_version, current.state.key_version)
            elif isinstance(last_version, str):
                check_newer_key_version(state.key_version, last_version)
            if state.initial_key_id in retired or state.initial_key_id.hex().upper() in ever_loaded:
                what = "initial KSN" if state.algorithm == KIND_TDES else "initial key ID"
                raise KeyBlockError(
                    f"{what} {state.initial_key_id.hex().upper()} was loaded on this device before: "
                    "its transaction counter would start again, refusing",
                    "KS" if state.algorithm == KIND_TDES else "IK",
                )
            self._write(_Record(state, retired))
        info = state.info()
        log.info(
            "DUKPT %s initial key %s loaded: KCV %s, %d registers, counter %d",
            info.algorithm,
            info.initial_key_id.hex().upper(),
            info.kcv,
            len(info.live_registers),
            info.counter,
        )
        return info

    def next_transaction(self) -> DukptTransactionKeys:
        """The next transaction's KSN and keys; its counter is spent on disk before they are returned.

        KeyExhaustedError once every counter has been used (and after every
        restart from then on); KeyStoreError if the state cannot be read or written.
        """
        with locked(self._path):
            record = self._read_loaded(holding_lock=True)
            state, keys = take_transaction(record.state)
            self._write(record._replace(state=state))
        log.debug("DUKPT counter %d spent (KSN %s)", keys.counter, keys.ksn.hex().upper())
        return keys
