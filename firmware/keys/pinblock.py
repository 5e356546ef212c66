"""ISO 9564-1 PIN blocks: formats 0 and 3 (TDES, 8 bytes) and 4 (AES, 16 bytes).

Format 0: PIN field `0 N P..P F..F` XOR PAN field `0000` + the 12 rightmost PAN
digits before the check digit. Format 3: as format 0, fill digits random
from A..F. Format 4: PIN field `4 N P..P A..A` + 8 random bytes; PAN field
`M` (PAN length - 12) + PAN (left-zero-padded to 12 digits) + zeros; the
block is E(E(PIN field) XOR PAN field).

PIN blocks exist only in memory; error messages never carry PIN or PAN digits.
"""

from __future__ import annotations

from collections.abc import Callable

from firmware.errors import CryptoError
from firmware.keys.blockcipher import (
    aes_decrypt_ecb,
    aes_encrypt_ecb,
    tdes_decrypt_ecb,
    tdes_encrypt_ecb,
    xor,
)
from firmware.randomness import Rng

__all__ = [
    "PIN_BLOCK_FORMATS",
    "decode_format0",
    "decode_format3",
    "decode_format4_pin_field",
    "decrypt_pin_block",
    "encode_format0",
    "encode_format3",
    "encode_format4_pan_field",
    "encode_format4_pin_field",
    "encrypt_pin_block",
]

PIN_BLOCK_FORMATS = (0, 3, 4)


def _check_pin(pin: str) -> None:
    if not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise CryptoError(f"PIN must be 4 to 12 digits (got {len(pin)} characters)")


def _check_pan(pan: str, minimum: int) -> None:
    if not (minimum <= len(pan) <= 19 and pan.isascii() and pan.isdigit()):
        raise CryptoError(f"PAN must be {minimum} to 19 digits (got {len(pan)} characters)")


def _pan_field_tdes(pan: str) -> bytes:
    _check_pan(pan, 13)
    return bytes.fromhex("0000" + pan[-13:-1])


def _random_fill_af(count: int, rng: Rng) -> str:
    """`count` nibbles uniformly from A..F (rejection sampling keeps it unbiased)."""
    fill: list[str] = []
    for _ in range(32):
        for byte in rng(count):
            if byte < 252 and len(fill) < count:
                fill.append("ABCDEF"[byte % 6])
        if len(fill) == count:
            return "".join(fill)
    raise CryptoError("random source keeps returning unusable bytes for PIN block fill")


def _pin_field(control: str, pin: str, fill: str) -> bytes:
    return bytes.fromhex(f"{control}{len(pin):X}{pin}{fill}")


def encode_format0(pin: str, pan: str) -> bytes:
    _check_pin(pin)
    return xor(_pin_field("0", pin, "F" * (14 - len(pin))), _pan_field_tdes(pan))


def encode_format3(pin: str, pan: str, rng: Rng) -> bytes:
    _check_pin(pin)
    return xor(_pin_field("3", pin, _random_fill_af(14 - len(pin), rng)), _pan_field_tdes(pan))


def _decode_pin_field(field: str, control: str, fill_ok: Callable[[str], bool]) -> str:
    if field[0] != control:
        raise CryptoError(f"PIN block is not ISO format {control}: control nibble {field[0]}")
    length = int(field[1], 16)
    if not 4 <= length <= 12:
        raise CryptoError(f"PIN block format {control}: PIN length nibble {length} outside 4..12")
    pin = field[2 : 2 + length]
    if not pin.isdigit():
        raise CryptoError(f"PIN block format {control}: PIN digits are not all decimal")
    if not fill_ok(field[2 + length : 16]):
        raise CryptoError(f"PIN block format {control}: fill digits are wrong")
    return pin


def decode_format0(block: bytes, pan: str) -> str:
    if len(block) != 8:
        raise CryptoError(f"format 0 PIN block must be 8 bytes, got {len(block)}")
    field = xor(block, _pan_field_tdes(pan)).hex().upper()
    return _decode_pin_field(field, "0", lambda fill: set(fill) <= {"F"})


def decode_format3(block: bytes, pan: str) -> str:
    if len(block) != 8:
        raise CryptoError(f"format 3 PIN block must be 8 bytes, got {len(block)}")
    field = xor(block, _pan_field_tdes(pan)).hex().upper()
    return _decode_pin_field(field, "3", lambda fill: set(fill) <= set("ABCDEF"))


def encode_format4_pin_field(pin: str, rng: Rng) -> bytes:
    _check_pin(pin)
    random_half = rng(8)
    if len(random_half) != 8:
        raise CryptoError("random source returned too few bytes for a format 4 PIN field")
    return _pin_field("4", pin, "A" * (14 - len(pin))) + random_half


def encode_format4_pan_field(pan: str) -> bytes:
    _check_pan(pan, 1)
    return bytes.fromhex(f"{max(0, len(pan) - 12)}{pan.rjust(12, '0')}".ljust(32, "0"))


def decode_format4_pin_field(field: bytes) -> str:
    if len(field) != 16:
        raise CryptoError(f"format 4 PIN field must be 16 bytes, got {len(field)}")
    return _decode_pin_field(field.hex().upper(), "4", lambda fill: set(fill) <= {"A"})


def encrypt_pin_block(pik: bytes, pin: str, pan: str, fmt: int, rng: Rng) -> bytes:
    """The PIN block of `fmt` (0, 3: TDES under PIK; 4: AES under PIK) for `pin` bound to `pan`."""
    if fmt == 0:
        return tdes_encrypt_ecb(pik, encode_format0(pin, pan))
    if fmt == 3:
        return tdes_encrypt_ecb(pik, encode_format3(pin, pan, rng))
    if fmt == 4:
        intermediate = aes_encrypt_ecb(pik, encode_format4_pin_field(pin, rng))
        return aes_encrypt_ecb(pik, xor(intermediate, encode_format4_pan_field(pan)))
    raise CryptoError(f"PIN block format {fmt} is not supported (0, 3 or 4)")


def decrypt_pin_block(pik: bytes, block: bytes, pan: str, fmt: int) -> str:
    """The PIN inside an encrypted PIN block (the host side; used by the simulator and tests)."""
    if fmt == 0:
        return decode_format0(tdes_decrypt_ecb(pik, block), pan)
    if fmt == 3:
        return decode_format3(tdes_decrypt_ecb(pik, block), pan)
    if fmt == 4:
        if len(block) != 16:
            raise CryptoError(f"format 4 PIN block must be 16 bytes, got {len(block)}")
        intermediate = xor(aes_decrypt_ecb(pik, block), encode_format4_pan_field(pan))
        return decode_format4_pin_field(aes_decrypt_ecb(pik, intermediate))
    raise CryptoError(f"PIN block format {fmt} is not supported (0, 3 or 4)")
