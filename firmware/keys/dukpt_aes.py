"""AES DUKPT, ANSI X9.24-3:2017 (terminal and host side).

KSN: 12 bytes, the 8-byte initial key ID (BDK ID + derivation ID) then a
32-bit transaction counter with at most 16 one bits. Every derivation is
AES-ECB under the parent key of a 16-byte derivation data block:

    01 | block counter | key usage (2) | algorithm (2) | length in bits (2) | 8 bytes

where the last 8 bytes are the initial key ID (for the initial key) or its
right 4 bytes followed by the counter (intermediate and working keys). Keys
longer than 128 bits take two blocks (block counter 1, 2), truncated.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from firmware.errors import CryptoError
from firmware.keys.blockcipher import aes_encrypt_ecb
from firmware.keys.dukpt_registers import FutureKeyRegisters, chain_derive

__all__ = [
    "COUNTER_BITS",
    "INITIAL_KEY_ID_LENGTH",
    "KSN_LENGTH",
    "MAX_ONE_BITS",
    "AesDukptTerminal",
    "AesTransactionKeys",
    "KeyType",
    "KeyUsage",
    "derivation_data",
    "derive_initial_key",
    "derive_intermediate_key",
    "derive_key",
    "derive_working_key",
    "ksn_of",
]

INITIAL_KEY_ID_LENGTH = 8
KSN_LENGTH = 12
COUNTER_BITS = 32
MAX_ONE_BITS = 16


class KeyType(enum.Enum):
    """Algorithm indicator and length in bits, as the derivation data carries them."""

    TDES2 = (0x0000, 128)
    TDES3 = (0x0001, 192)
    AES128 = (0x0002, 128)
    AES192 = (0x0003, 192)
    AES256 = (0x0004, 256)

    @property
    def algorithm(self) -> int:
        return self.value[0]

    @property
    def bits(self) -> int:
        return self.value[1]

    @property
    def is_aes(self) -> bool:
        return self in (KeyType.AES128, KeyType.AES192, KeyType.AES256)

    @classmethod
    def aes_for_length(cls, length: int) -> KeyType:
        for key_type in (cls.AES128, cls.AES192, cls.AES256):
            if key_type.bits == length * 8:
                return key_type
        raise CryptoError(f"AES DUKPT key must be 16, 24 or 32 bytes, got {length}")


class KeyUsage(enum.IntEnum):
    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH_WAYS = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH_WAYS = 0x3002
    KEY_DERIVATION = 0x8000
    KEY_DERIVATION_INITIAL_KEY = 0x8001


def _check_initial_key_id(initial_key_id: bytes) -> None:
    if len(initial_key_id) != INITIAL_KEY_ID_LENGTH:
        raise CryptoError(f"initial key ID must be {INITIAL_KEY_ID_LENGTH} bytes, got {len(initial_key_id)}")


def derivation_data(usage: KeyUsage, key_type: KeyType, initial_key_id: bytes, counter: int | None) -> bytes:
    """The 16-byte derivation data block (block counter 1)."""
    _check_initial_key_id(initial_key_id)
    if usage is KeyUsage.KEY_DERIVATION_INITIAL_KEY:
        tail = initial_key_id
    else:
        if counter is None or not 0 <= counter < 1 << COUNTER_BITS:
            raise CryptoError("derivation data for this usage needs a 32-bit counter")
        tail = initial_key_id[4:] + counter.to_bytes(4, "big")
    head = bytes([0x01, 0x01]) + usage.to_bytes(2, "big")
    return head + key_type.algorithm.to_bytes(2, "big") + key_type.bits.to_bytes(2, "big") + tail


def derive_key(derivation_key: bytes, key_type: KeyType, data: bytes) -> bytes:
    """AES-ECB of the derivation data under `derivation_key`, one block per 128 bits."""
    blocks = -(-key_type.bits // 128)
    output = b"".join(
        aes_encrypt_ecb(derivation_key, data[:1] + bytes([counter]) + data[2:])
        for counter in range(1, blocks + 1)
    )
    return output[: key_type.bits // 8]


def derive_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The device's initial key from the BDK (AES-128/192/256) and the initial key ID."""
    bdk_type = KeyType.aes_for_length(len(bdk))
    data = derivation_data(KeyUsage.KEY_DERIVATION_INITIAL_KEY, bdk_type, initial_key_id, None)
    return derive_key(bdk, bdk_type, data)


@dataclass(frozen=True)
class _AesStep:
    key_type: KeyType
    initial_key_id: bytes

    def __call__(self, parent: bytes, counter: int) -> bytes:
        data = derivation_data(KeyUsage.KEY_DERIVATION, self.key_type, self.initial_key_id, counter)
        return derive_key(parent, self.key_type, data)


def derive_intermediate_key(initial_key: bytes, initial_key_id: bytes, counter: int) -> bytes:
    """The intermediate derivation key for `counter` (host side)."""
    step = _AesStep(KeyType.aes_for_length(len(initial_key)), initial_key_id)
    return chain_derive(step, initial_key, counter, COUNTER_BITS)


def _working_key(
    derivation_key: bytes, initial_key_id: bytes, counter: int, usage: KeyUsage, working_type: KeyType
) -> bytes:
    derivation_type = KeyType.aes_for_length(len(derivation_key))
    if working_type.bits > derivation_type.bits:
        raise CryptoError(
            f"working key {working_type.name} is stronger than the derivation key {derivation_type.name}"
        )
    if usage in (KeyUsage.KEY_DERIVATION, KeyUsage.KEY_DERIVATION_INITIAL_KEY):
        raise CryptoError(f"{usage.name} is not a working key usage")
    data = derivation_data(usage, working_type, initial_key_id, counter)
    return derive_key(derivation_key, working_type, data)


def derive_working_key(
    initial_key: bytes,
    initial_key_id: bytes,
    counter: int,
    usage: KeyUsage,
    working_type: KeyType = KeyType.AES128,
) -> bytes:
    """A working key for `counter` straight from the initial key (host side)."""
    derivation_key = derive_intermediate_key(initial_key, initial_key_id, counter)
    return _working_key(derivation_key, initial_key_id, counter, usage, working_type)


def ksn_of(initial_key_id: bytes, counter: int) -> bytes:
    _check_initial_key_id(initial_key_id)
    return initial_key_id + counter.to_bytes(4, "big")


@dataclass(frozen=True, repr=False)
class AesTransactionKeys:
    """The KSN to send and the intermediate derivation key of one transaction."""

    initial_key_id: bytes
    counter: int
    derivation_key: bytes

    @property
    def ksn(self) -> bytes:
        return ksn_of(self.initial_key_id, self.counter)

    def working_key(self, usage: KeyUsage, working_type: KeyType = KeyType.AES128) -> bytes:
        return _working_key(self.derivation_key, self.initial_key_id, self.counter, usage, working_type)

    def __repr__(self) -> str:
        return f"AesTransactionKeys(ksn={self.ksn.hex().upper()})"


class AesDukptTerminal:
    """The originating device: intermediate derivation key registers loaded from the initial key."""

    def __init__(self, registers: FutureKeyRegisters, initial_key_id: bytes) -> None:
        self._registers = registers
        self._initial_key_id = initial_key_id

    @classmethod
    def load_initial_key(cls, initial_key: bytes, initial_key_id: bytes) -> AesDukptTerminal:
        step = _AesStep(KeyType.aes_for_length(len(initial_key)), initial_key_id)
        _check_initial_key_id(initial_key_id)
        registers = FutureKeyRegisters.load_initial_key(step, initial_key, COUNTER_BITS, MAX_ONE_BITS)
        return cls(registers, initial_key_id)

    @classmethod
    def at_counter(cls, initial_key: bytes, initial_key_id: bytes, counter: int) -> AesDukptTerminal:
        """A device whose next transaction uses `counter`."""
        step = _AesStep(KeyType.aes_for_length(len(initial_key)), initial_key_id)
        registers = FutureKeyRegisters.at_counter(step, initial_key, counter, COUNTER_BITS, MAX_ONE_BITS)
        return cls(registers, initial_key_id)

    @classmethod
    def resume(
        cls, initial_key_id: bytes, key_type: KeyType, counter: int, registers: Sequence[bytes | None]
    ) -> AesDukptTerminal:
        """A device restored from its saved intermediate derivation key registers and next counter."""
        _check_initial_key_id(initial_key_id)
        if not key_type.is_aes:
            raise CryptoError(f"AES DUKPT registers hold AES keys, not {key_type.name}")
        for key in registers:
            if key is not None and len(key) * 8 != key_type.bits:
                raise CryptoError(f"AES DUKPT register of {len(key)} bytes is not an {key_type.name} key")
        saved = FutureKeyRegisters(
            _AesStep(key_type, initial_key_id), list(registers), counter, COUNTER_BITS, MAX_ONE_BITS
        )
        return cls(saved, initial_key_id)

    @property
    def exhausted(self) -> bool:
        return self._registers.exhausted

    @property
    def next_counter(self) -> int:
        return self._registers.counter

    @property
    def registers(self) -> tuple[bytes | None, ...]:
        """The intermediate derivation key registers now (None: empty), to be saved with `next_counter`."""
        return self._registers.registers

    def next_transaction(self) -> AesTransactionKeys:
        """Keys for the next transaction; KeyExhaustedError once the counter is spent."""
        counter, derivation_key = self._registers.take()
        return AesTransactionKeys(self._initial_key_id, counter, derivation_key)
