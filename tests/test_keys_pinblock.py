"""ISO 9564-1 PIN blocks against published vectors and psec (an independent implementation)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import psec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import CryptoError
from firmware.keys.pinblock import (
    decode_format0,
    decode_format3,
    decode_format4_pin_field,
    decrypt_pin_block,
    encode_format0,
    encode_format3,
    encode_format4_pan_field,
    encode_format4_pin_field,
    encrypt_pin_block,
)

PAN_FIELD_5555 = bytes.fromhex("0000555555123456")


def fixed_rng(value: int) -> Callable[[int], bytes]:
    return lambda n: bytes([value]) * n


def pin_field(block: bytes) -> str:
    return bytes(a ^ b for a, b in zip(block, PAN_FIELD_5555, strict=True)).hex().upper()


def test_format0_x924_annex_a_clear_block() -> None:
    # ANSI X9.24-1:2009 A.4: PIN 1234, PAN 4012345678909 -> clear PIN block 041274EDCBA9876F.
    assert encode_format0("1234", "4012345678909").hex().upper() == "041274EDCBA9876F"
    assert decode_format0(bytes.fromhex("041274EDCBA9876F"), "4012345678909") == "1234"


@pytest.mark.parametrize(
    ("pin", "block"),
    [
        ("1234", "041261AAAAEDCBA9"),
        ("123456789", "091261032D8DCBA9"),
        ("1234567890", "0A1261032D82CBA9"),
        ("123456789012", "0C1261032D8226A9"),
    ],
)
def test_format0_psec_vectors(pin: str, block: str) -> None:
    assert encode_format0(pin, "5555555551234567").hex().upper() == block
    assert decode_format0(bytes.fromhex(block), "5555555551234567") == pin


@pytest.mark.parametrize(
    ("pin", "block"),
    [("1234", "341261AAAAEDCBA9"), ("123456789", "391261032D8DCBA9"), ("123456789012", "3C1261032D8226A9")],
)
def test_format3_psec_decode_vectors(pin: str, block: str) -> None:
    assert decode_format3(bytes.fromhex(block), "5555555551234567") == pin


def test_format3_fill_is_random_a_to_f_and_decodes() -> None:
    counter = itertools.count()
    block = encode_format3("1234", "5555555551234567", lambda n: bytes(next(counter) % 256 for _ in range(n)))
    field = pin_field(block)
    assert field.startswith("341234")
    assert set(field[6:]) <= set("ABCDEF") and len(set(field[6:])) > 1
    assert decode_format3(block, "5555555551234567") == "1234"


def test_format3_rejection_sampling_skips_biased_bytes() -> None:
    values = iter([255, 252, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])

    def rng(n: int) -> bytes:
        return bytes(next(values) for _ in range(n))

    field = pin_field(encode_format3("123456789012", "5555555551234567", rng))
    assert field[-2:] == "AB"  # 255 and 252 were skipped


def test_broken_rng_does_not_hang() -> None:
    with pytest.raises(CryptoError, match="random source"):
        encode_format3("1234", "5555555551234567", fixed_rng(0xFF))


def test_format4_pan_and_pin_fields() -> None:
    assert encode_format4_pan_field("112233445566778899").hex().upper() == "61122334455667788990000000000000"
    assert encode_format4_pan_field("1").hex().upper() == "00000000000010000000000000000000"
    field = encode_format4_pin_field("1234", fixed_rng(0x5A))
    assert field.hex().upper() == "441234AAAAAAAAAA" + "5A" * 8
    assert decode_format4_pin_field(field) == "1234"


def test_format4_ep2_published_vector_decrypts() -> None:
    # ep2 - eft/pos 2000 Security Specification 8.0.0, 8.4 "PIN Encryption".
    key = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
    block = bytes.fromhex("CC17F65586BFD0953010226C4FC5B3CA")
    assert decrypt_pin_block(key, block, "432198765432109870", 4) == "1234"


def test_format4_deterministic_vector() -> None:
    # psec's and paysec's shared vector: random half all FF.
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    block = encrypt_pin_block(key, "1234", "1234567890123456789", 4, fixed_rng(0xFF))
    assert block.hex().upper() == "28B41FDDD29B743E93124BD8E32D921E"


def test_format4_short_pan_vector() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert decrypt_pin_block(key, bytes.fromhex("39B69B1B91FE05D48F7EF0D68EB2CBD6"), "1", 4) == "123456"


@settings(max_examples=30, deadline=None)
@given(
    pin=st.text("0123456789", min_size=4, max_size=12),
    pan=st.text("0123456789", min_size=13, max_size=19),
    key=st.binary(min_size=16, max_size=16),
    seed=st.binary(min_size=8, max_size=8),
)
def test_format4_psec_deciphers_our_blocks(pin: str, pan: str, key: bytes, seed: bytes) -> None:
    block = encrypt_pin_block(key, pin, pan, 4, lambda n: seed[:n])
    assert psec.pinblock.decipher_pinblock_iso_4(key, block, pan) == pin
    assert decrypt_pin_block(key, block, pan, 4) == pin


@settings(max_examples=30, deadline=None)
@given(
    pin=st.text("0123456789", min_size=4, max_size=12),
    pan=st.text("0123456789", min_size=13, max_size=19),
)
def test_format0_and_3_match_psec(pin: str, pan: str) -> None:
    assert decode_format0(psec.pinblock.encode_pinblock_iso_0(pin, pan), pan) == pin
    assert psec.pinblock.decode_pinblock_iso_0(encode_format0(pin, pan), pan) == pin
    ours3 = encode_format3(pin, pan, lambda n: bytes(range(n)))
    assert psec.pinblock.decode_pinblock_iso_3(ours3, pan) == pin


@pytest.mark.parametrize("fmt", [0, 3, 4])
def test_encrypt_decrypt_roundtrip(fmt: int) -> None:
    key = bytes(range(16))
    block = encrypt_pin_block(key, "987654", "6222021234567890123", fmt, lambda n: bytes(range(7, 7 + n)))
    assert len(block) == (16 if fmt == 4 else 8)
    assert decrypt_pin_block(key, block, "6222021234567890123", fmt) == "987654"


@pytest.mark.parametrize(
    ("pin", "pan", "fmt"),
    [
        ("123", "5555555551234567", 0),
        ("12a4", "5555555551234567", 0),
        ("1234", "555555555123", 0),
        ("1234", "55555555512345678901", 4),
        ("1234", "5555555551234567", 1),
    ],
)
def test_bad_input_errors_carry_no_digits(pin: str, pan: str, fmt: int) -> None:
    with pytest.raises(CryptoError) as caught:
        encrypt_pin_block(bytes(16), pin, pan, fmt, lambda n: bytes(n))
    message = str(caught.value)
    assert pin not in message and pan not in message


def test_wrong_pan_or_format_does_not_decode() -> None:
    key = bytes(range(16))
    block = encrypt_pin_block(key, "1234", "4012345678909", 0, lambda n: bytes(n))
    with pytest.raises(CryptoError):
        decrypt_pin_block(key, block, "4012345678909", 3)
    with pytest.raises(CryptoError):
        decrypt_pin_block(key, bytes(16), "4012345678909", 4)
