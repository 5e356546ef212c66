"""TDES DUKPT, ANSI X9.24-1:2009 (terminal and host side).

KSN: 10 bytes, the rightmost 21 bits are the transaction counter. IPEK from
BDK and KSN (counter bits cleared); each counter bit adds one step of the
non-reversible key generation process; a counter has at most 10 one bits,
which leaves 1,048,575 usable counters. Working keys are variants of the
transaction key: PIN, MAC request/response, data request/response (the data
variants are then encrypted under themselves, as X9.24-1:2009 A.4 shows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware.errors import CryptoError
from firmware.keys.blockcipher import tdes_encrypt_ecb, xor
from firmware.keys.dukpt_registers import FutureKeyRegisters, chain_derive

__all__ = [
    "COUNTER_BITS",
    "KSN_LENGTH",
    "MAX_ONE_BITS",
    "TdesDukptTerminal",
    "TdesTransactionKeys",
    "data_request_key",
    "data_response_key",
    "derive_ipek",
    "derive_transaction_key",
    "ksn_counter",
    "ksn_with_counter",
    "mac_request_key",
    "mac_response_key",
    "non_reversible_key",
    "pin_key",
]

KSN_LENGTH = 10
COUNTER_BITS = 21
MAX_ONE_BITS = 10
_COUNTER_MASK = (1 << COUNTER_BITS) - 1
_KEY_MASK = bytes.fromhex("C0C0C0C000000000C0C0C0C000000000")
_VARIANT_PIN = bytes.fromhex("00000000000000FF00000000000000FF")
_VARIANT_MAC_REQUEST = bytes.fromhex("000000000000FF00000000000000FF00")
_VARIANT_MAC_RESPONSE = bytes.fromhex("00000000FF00000000000000FF000000")
_VARIANT_DATA_REQUEST = bytes.fromhex("0000000000FF00000000000000FF0000")
_VARIANT_DATA_RESPONSE = bytes.fromhex("000000FF00000000000000FF00000000")


def _check_ksn(ksn: bytes) -> int:
    if len(ksn) != KSN_LENGTH:
        raise CryptoError(f"TDES DUKPT KSN must be {KSN_LENGTH} bytes, got {len(ksn)}")
    return int.from_bytes(ksn, "big")


def _check_key(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise CryptoError(f"{what} must be a 16-byte double-length key, got {len(key)} bytes")


def ksn_counter(ksn: bytes) -> int:
    return _check_ksn(ksn) & _COUNTER_MASK


def ksn_with_counter(ksn: bytes, counter: int) -> bytes:
    if not 0 <= counter <= _COUNTER_MASK:
        raise CryptoError(f"TDES DUKPT counter {counter:#x} does not fit in {COUNTER_BITS} bits")
    return ((_check_ksn(ksn) & ~_COUNTER_MASK) | counter).to_bytes(KSN_LENGTH, "big")


def derive_ipek(bdk: bytes, ksn: bytes) -> bytes:
    """Initial PIN encryption key (initial key) from the BDK and the KSN (counter ignored)."""
    _check_key(bdk, "BDK")
    base = ksn_with_counter(ksn, 0)[:8]
    return tdes_encrypt_ecb(bdk, base) + tdes_encrypt_ecb(xor(bdk, _KEY_MASK), base)


def non_reversible_key(key: bytes, data: bytes) -> bytes:
    """X9.24-1 non-reversible key generation process: new key from `key` and 8 bytes of KSN."""
    _check_key(key, "DUKPT key")
    if len(data) != 8:
        raise CryptoError(f"non-reversible key generation takes 8 bytes of KSN, got {len(data)}")

    def half(k: bytes) -> bytes:
        return xor(tdes_encrypt_ecb(k[:8], xor(data, k[8:])), k[8:])

    return half(xor(key, _KEY_MASK)) + half(key)


@dataclass(frozen=True)
class _TdesStep:
    """One derivation step: the KSN's right 8 bytes carrying the partial counter."""

    ksn_right: int

    def __call__(self, parent: bytes, counter: int) -> bytes:
        return non_reversible_key(parent, (self.ksn_right | counter).to_bytes(8, "big"))


def _step(ksn: bytes) -> _TdesStep:
    return _TdesStep(int.from_bytes(ksn_with_counter(ksn, 0)[2:], "big"))


def derive_transaction_key(ipek: bytes, ksn: bytes) -> bytes:
    """The transaction key for the KSN's counter, from the IPEK (host side)."""
    return chain_derive(_step(ksn), ipek, ksn_counter(ksn), COUNTER_BITS)


def pin_key(transaction_key: bytes) -> bytes:
    return xor(transaction_key, _VARIANT_PIN)


def mac_request_key(transaction_key: bytes) -> bytes:
    return xor(transaction_key, _VARIANT_MAC_REQUEST)


def mac_response_key(transaction_key: bytes) -> bytes:
    return xor(transaction_key, _VARIANT_MAC_RESPONSE)


def _one_way(variant: bytes) -> bytes:
    return tdes_encrypt_ecb(variant, variant[:8]) + tdes_encrypt_ecb(variant, variant[8:])


def data_request_key(transaction_key: bytes) -> bytes:
    return _one_way(xor(transaction_key, _VARIANT_DATA_REQUEST))


def data_response_key(transaction_key: bytes) -> bytes:
    return _one_way(xor(transaction_key, _VARIANT_DATA_RESPONSE))


@dataclass(frozen=True, repr=False)
class TdesTransactionKeys:
    """The KSN to send and the keys of one transaction."""

    ksn: bytes
    transaction_key: bytes

    @property
    def counter(self) -> int:
        return ksn_counter(self.ksn)

    def pin_key(self) -> bytes:
        return pin_key(self.transaction_key)

    def mac_request_key(self) -> bytes:
        return mac_request_key(self.transaction_key)

    def mac_response_key(self) -> bytes:
        return mac_response_key(self.transaction_key)

    def data_request_key(self) -> bytes:
        return data_request_key(self.transaction_key)

    def data_response_key(self) -> bytes:
        return data_response_key(self.transaction_key)

    def __repr__(self) -> str:
        return f"TdesTransactionKeys(ksn={self.ksn.hex().upper()})"


class TdesDukptTerminal:
    """The originating device: future key registers loaded from the IPEK, one key per transaction."""

    def __init__(self, registers: FutureKeyRegisters, ksn: bytes) -> None:
        self._registers = registers
        self._ksn = ksn_with_counter(ksn, 0)

    @classmethod
    def load_initial_key(cls, ipek: bytes, initial_ksn: bytes) -> TdesDukptTerminal:
        _check_key(ipek, "IPEK")
        registers = FutureKeyRegisters.load_initial_key(_step(initial_ksn), ipek, COUNTER_BITS, MAX_ONE_BITS)
        return cls(registers, initial_ksn)

    @classmethod
    def at_counter(cls, ipek: bytes, ksn: bytes) -> TdesDukptTerminal:
        """A device whose next transaction uses the counter in `ksn`."""
        _check_key(ipek, "IPEK")
        registers = FutureKeyRegisters.at_counter(
            _step(ksn), ipek, ksn_counter(ksn), COUNTER_BITS, MAX_ONE_BITS
        )
        return cls(registers, ksn)

    @classmethod
    def resume(cls, ksn: bytes, counter: int, registers: Sequence[bytes | None]) -> TdesDukptTerminal:
        """A device restored from its saved future key registers and next counter (no initial key)."""
        for key in registers:
            if key is not None:
                _check_key(key, "DUKPT future key register")
        saved = FutureKeyRegisters(_step(ksn), list(registers), counter, COUNTER_BITS, MAX_ONE_BITS)
        return cls(saved, ksn)

    @property
    def next_ksn(self) -> bytes:
        return ksn_with_counter(self._ksn, min(self._registers.counter, _COUNTER_MASK))

    @property
    def next_counter(self) -> int:
        """The counter the next transaction uses; 1 << COUNTER_BITS once exhausted."""
        return self._registers.counter

    @property
    def registers(self) -> tuple[bytes | None, ...]:
        """The future key registers now (None: empty), to be saved with `next_counter`."""
        return self._registers.registers

    @property
    def exhausted(self) -> bool:
        return self._registers.exhausted

    def next_transaction(self) -> TdesTransactionKeys:
        """Keys for the next transaction; KeyExhaustedError once the counter is spent."""
        counter, key = self._registers.take()
        return TdesTransactionKeys(ksn_with_counter(self._ksn, counter), key)
