"""The terminal side of DUKPT, shared by TDES (X9.24-1) and AES (X9.24-3).

Both standards give the originating device one register per counter bit. The
key for counter c is a chain of derivations from the initial key, one per
set bit of c from the most significant down; register j holds, ready made,
the key for "the counter's bits above j, plus bit j". Using counter c (whose
lowest set bit is p) reads register p, fills the registers below p from it
(only while c has fewer than the maximum number of one bits), erases
register p and moves the counter on: by 1, or past every counter with too
many one bits. The initial key itself is never kept.
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.errors import CryptoError, KeyExhaustedError

__all__ = ["DeriveStep", "FutureKeyRegisters", "chain_derive", "lowest_set_bit"]

# derive(parent_key, counter_value) -> the key for counter_value, where counter_value is the
# parent's counter with one more (lower) bit set.
DeriveStep = Callable[[bytes, int], bytes]


def lowest_set_bit(value: int) -> int:
    return (value & -value).bit_length() - 1


def chain_derive(derive: DeriveStep, initial_key: bytes, counter: int, counter_bits: int) -> bytes:
    """The key for `counter` straight from the initial key (the receiving, host side)."""
    key = initial_key
    partial = 0
    for bit in reversed(range(counter_bits)):
        if counter >> bit & 1:
            partial |= 1 << bit
            key = derive(key, partial)
    return key


class FutureKeyRegisters:
    """Register state of an originating device; `take()` yields each usable counter once."""

    def __init__(
        self,
        derive: DeriveStep,
        registers: list[bytes | None],
        counter: int,
        counter_bits: int,
        max_one_bits: int,
    ) -> None:
        if len(registers) != counter_bits:
            raise CryptoError(f"DUKPT needs {counter_bits} registers, got {len(registers)}")
        self._derive = derive
        self._registers = registers
        self._counter = counter
        self._bits = counter_bits
        self._max_one_bits = max_one_bits

    @classmethod
    def load_initial_key(
        cls, derive: DeriveStep, initial_key: bytes, counter_bits: int, max_one_bits: int
    ) -> FutureKeyRegisters:
        registers: list[bytes | None] = [derive(initial_key, 1 << j) for j in range(counter_bits)]
        return cls(derive, registers, 1, counter_bits, max_one_bits)

    @classmethod
    def at_counter(
        cls, derive: DeriveStep, initial_key: bytes, counter: int, counter_bits: int, max_one_bits: int
    ) -> FutureKeyRegisters:
        """The state a device is in when `counter` is its next counter (recovery, tests)."""
        if not 0 < counter < 1 << counter_bits or counter.bit_count() > max_one_bits:
            raise CryptoError(f"DUKPT counter {counter:#x} is not a counter a device can reach")
        registers: list[bytes | None] = []
        for j in range(counter_bits):
            value = (counter >> (j + 1) << (j + 1)) | (1 << j)
            usable = value >= counter and value.bit_count() <= max_one_bits
            registers.append(chain_derive(derive, initial_key, value, counter_bits) if usable else None)
        return cls(derive, registers, counter, counter_bits, max_one_bits)

    @property
    def counter(self) -> int:
        """The counter the next `take()` will use."""
        return self._counter

    @property
    def exhausted(self) -> bool:
        return self._counter >= 1 << self._bits

    @property
    def registers(self) -> tuple[bytes | None, ...]:
        """The registers as they are now, position 0 first (None: empty), to be saved with `counter`."""
        return tuple(self._registers)

    def take(self) -> tuple[int, bytes]:
        """Use the next counter: its number and its key; the state moves on."""
        if self.exhausted:
            raise KeyExhaustedError(
                f"DUKPT counter exhausted after {self._bits} bits: load a new initial key"
            )
        counter = self._counter
        position = lowest_set_bit(counter)
        key = self._registers[position]
        if key is None:
            raise CryptoError(f"DUKPT register {position} is empty at counter {counter:#x}")
        if counter.bit_count() < self._max_one_bits:
            for j in reversed(range(position)):
                self._registers[j] = self._derive(key, counter | 1 << j)
            self._counter = counter + 1
        else:
            self._counter = counter + (1 << position)
        self._registers[position] = None
        return counter, key
