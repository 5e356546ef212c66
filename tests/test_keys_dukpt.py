"""DUKPT against the published tables.

TDES: ANSI X9.24-1:2009 Annex A.4 (A.4.2 initial sequence, A.4.3 rollover
sequence): transaction keys and PIN blocks as transcribed in openemv/dukpt's
test suite; PIN/MAC variant keys for further counters from the DUKPT2000
verify table of an independent Python implementation; MAC and data
variants for counters 1..5 from moov-io/dukpt's A.4.2 table.
AES: ANSI X9.24-3:2017 Annex B and the X9 supplement test vectors, as
transcribed in openemv/dukpt and paysec-dukpt's test suites.
(psec and pyemv implement no DUKPT, so no library cross-check is possible.)
The vectors themselves are in tests/dukpt_vectors.py.
"""

from __future__ import annotations

import hashlib
import math

import pytest

from firmware.errors import CryptoError, KeyExhaustedError
from firmware.keys import dukpt_aes, dukpt_tdes
from firmware.keys.blockcipher import tdes_encrypt_cbc
from firmware.keys.dukpt import AesDukptTerminal, KeyType, KeyUsage, TdesDukptTerminal
from firmware.keys.dukpt_registers import FutureKeyRegisters, chain_derive
from firmware.keys.mac import retail_mac_x919
from firmware.keys.pinblock import encrypt_pin_block
from tests.dukpt_vectors import (
    AES_ALL_USAGES_COUNTER_1,
    AES_BDK,
    AES_DERIVATION_KEYS,
    AES_IK,
    AES_LAST_COUNTERS,
    AES_WORKING_KEYS,
    BDK,
    IKID,
    IKSN,
    INITIAL_SEQUENCE,
    IPEK,
    MAC_DATA_TABLE,
    PAN,
    PIN,
    ROLLOVER_SEQUENCE,
    VARIANT_TABLE,
    no_rng,
)


def test_tdes_ipek() -> None:
    assert dukpt_tdes.derive_ipek(BDK, IKSN) == IPEK
    assert dukpt_tdes.derive_ipek(BDK, bytes.fromhex("FFFF9876543210E00123")) == IPEK  # counter ignored


def test_tdes_terminal_initial_sequence() -> None:
    terminal = TdesDukptTerminal.load_initial_key(IPEK, IKSN)
    assert terminal.next_ksn.hex().upper() == "FFFF9876543210E00001"
    for ksn, key, epb in INITIAL_SEQUENCE:
        tx = terminal.next_transaction()
        assert tx.ksn.hex().upper() == ksn
        assert tx.transaction_key.hex().upper() == key
        assert encrypt_pin_block(tx.pin_key(), PIN, PAN, 0, no_rng).hex().upper() == epb


@pytest.mark.parametrize(("ksn", "key", "epb"), INITIAL_SEQUENCE + ROLLOVER_SEQUENCE)
def test_tdes_host_side_transaction_keys(ksn: str, key: str, epb: str) -> None:
    transaction_key = dukpt_tdes.derive_transaction_key(IPEK, bytes.fromhex(ksn))
    assert transaction_key.hex().upper() == key
    pin_key = dukpt_tdes.pin_key(transaction_key)
    assert encrypt_pin_block(pin_key, PIN, PAN, 0, no_rng).hex().upper() == epb


def test_tdes_terminal_rollover_sequence_skips_counters_with_too_many_one_bits() -> None:
    terminal = TdesDukptTerminal.at_counter(IPEK, bytes.fromhex(ROLLOVER_SEQUENCE[0][0]))
    for ksn, key, epb in ROLLOVER_SEQUENCE:
        tx = terminal.next_transaction()
        assert (tx.ksn.hex().upper(), tx.transaction_key.hex().upper()) == (ksn, key)
        assert encrypt_pin_block(tx.pin_key(), PIN, PAN, 0, no_rng).hex().upper() == epb


@pytest.mark.parametrize(("ksn", "pin_key", "mac_key", "epb"), VARIANT_TABLE)
def test_tdes_pin_and_mac_variants(ksn: str, pin_key: str, mac_key: str, epb: str) -> None:
    transaction_key = dukpt_tdes.derive_transaction_key(IPEK, bytes.fromhex(ksn))
    assert dukpt_tdes.pin_key(transaction_key).hex().upper() == pin_key
    assert dukpt_tdes.mac_request_key(transaction_key).hex().upper() == mac_key
    assert encrypt_pin_block(bytes.fromhex(pin_key), PIN, PAN, 0, no_rng).hex().upper() == epb


@pytest.mark.parametrize(("ksn", "data_req", "data_resp", "mac_req", "mac_resp"), MAC_DATA_TABLE)
def test_tdes_mac_and_data_variants(
    ksn: str, data_req: str, data_resp: str, mac_req: str, mac_resp: str
) -> None:
    keys = dukpt_tdes.TdesTransactionKeys(
        bytes.fromhex(ksn), dukpt_tdes.derive_transaction_key(IPEK, bytes.fromhex(ksn))
    )
    data = b"4012345678909D987"
    padded = data + bytes(-len(data) % 8)
    assert tdes_encrypt_cbc(keys.data_request_key(), bytes(8), padded).hex().upper() == data_req
    assert tdes_encrypt_cbc(keys.data_response_key(), bytes(8), padded).hex().upper() == data_resp
    assert retail_mac_x919(keys.mac_request_key(), data).hex().upper() == mac_req
    assert retail_mac_x919(keys.mac_response_key(), data).hex().upper() == mac_resp


def test_tdes_terminal_agrees_with_host_for_the_first_thousand_counters() -> None:
    terminal = TdesDukptTerminal.load_initial_key(IPEK, IKSN)
    for _ in range(1000):
        tx = terminal.next_transaction()
        assert tx.transaction_key == dukpt_tdes.derive_transaction_key(IPEK, tx.ksn)
        assert tx.counter.bit_count() <= 10


def test_tdes_exhaustion_after_the_last_counter() -> None:
    last = dukpt_tdes.ksn_with_counter(IKSN, 0x1FF800)  # bits 11..20: ten one bits, the last usable counter
    terminal = TdesDukptTerminal.at_counter(IPEK, last)
    tx = terminal.next_transaction()
    assert tx.ksn == last and tx.transaction_key == dukpt_tdes.derive_transaction_key(IPEK, last)
    assert terminal.exhausted
    with pytest.raises(KeyExhaustedError, match="exhausted"):
        terminal.next_transaction()


def test_tdes_device_uses_1048575_counters_then_is_exhausted() -> None:
    # X9.24-1: a 21-bit counter, at most 10 one bits: 1,048,575 keys, the last at 0x1FF800. The
    # project's register stepping with its TDES parameters, keys left out (a no-op derivation).
    registers = FutureKeyRegisters.load_initial_key(
        lambda key, counter: b"", b"", dukpt_tdes.COUNTER_BITS, dukpt_tdes.MAX_ONE_BITS
    )
    used = 0
    last = 0
    while not registers.exhausted:
        last, _ = registers.take()
        used += 1
    assert (used, last) == (1_048_575, 0x1FF800)
    assert used == sum(math.comb(21, k) for k in range(1, 11))


def test_tdes_rejects_bad_lengths() -> None:
    with pytest.raises(CryptoError):
        dukpt_tdes.derive_ipek(BDK[:8], IKSN)
    with pytest.raises(CryptoError):
        dukpt_tdes.derive_transaction_key(IPEK, IKSN[:9])
    with pytest.raises(CryptoError):
        TdesDukptTerminal.at_counter(IPEK, dukpt_tdes.ksn_with_counter(IKSN, 0x7FF))  # 11 one bits


def test_transaction_keys_repr_shows_no_key() -> None:
    tx = TdesDukptTerminal.load_initial_key(IPEK, IKSN).next_transaction()
    assert tx.transaction_key.hex().upper() not in repr(tx).upper()


# ----- the shared register machinery, exhaustively on a small counter ----------------------


def toy_derive(parent: bytes, counter: int) -> bytes:
    return hashlib.sha256(parent + counter.to_bytes(4, "big")).digest()


@pytest.mark.parametrize(("bits", "max_ones"), [(8, 3), (6, 6), (10, 4)])
def test_registers_visit_every_allowed_counter_once_in_order(bits: int, max_ones: int) -> None:
    registers = FutureKeyRegisters.load_initial_key(toy_derive, b"initial", bits, max_ones)
    seen = []
    while not registers.exhausted:
        counter, key = registers.take()
        assert key == chain_derive(toy_derive, b"initial", counter, bits)
        seen.append(counter)
    assert seen == [c for c in range(1, 1 << bits) if c.bit_count() <= max_ones]
    with pytest.raises(KeyExhaustedError):
        registers.take()


def test_registers_at_counter_continues_like_the_stepping_device() -> None:
    stepping = FutureKeyRegisters.load_initial_key(toy_derive, b"k", 9, 4)
    for _ in range(100):
        stepping.take()
    resumed = FutureKeyRegisters.at_counter(toy_derive, b"k", stepping.counter, 9, 4)
    while not stepping.exhausted:
        assert stepping.take() == resumed.take()
    assert resumed.exhausted


def test_aes_initial_key_and_derivation_data_layout() -> None:
    assert dukpt_aes.derive_initial_key(AES_BDK, IKID) == AES_IK
    initial = dukpt_aes.derivation_data(KeyUsage.KEY_DERIVATION_INITIAL_KEY, KeyType.AES128, IKID, None)
    assert initial.hex().upper() == "01018001000200801234567890123456"
    pin = dukpt_aes.derivation_data(KeyUsage.PIN_ENCRYPTION, KeyType.AES128, IKID, 1)
    assert pin.hex().upper() == "01011000000200809012345600000001"
    update = dukpt_aes.derivation_data(KeyUsage.KEY_ENCRYPTION, KeyType.AES256, IKID, 0xFFFFFFFF)
    assert update.hex().upper() == "0101000200040100" + "90123456FFFFFFFF"


def test_aes_terminal_first_eight_counters() -> None:
    terminal = AesDukptTerminal.load_initial_key(AES_IK, IKID)
    for counter, derivation_key in enumerate(AES_DERIVATION_KEYS, start=1):
        tx = terminal.next_transaction()
        assert tx.ksn.hex().upper() == f"1234567890123456{counter:08X}"
        assert tx.derivation_key.hex().upper() == derivation_key


@pytest.mark.parametrize(("counter", "pin", "mac", "data"), AES_WORKING_KEYS)
def test_aes_host_side_working_keys(counter: int, pin: str, mac: str, data: str) -> None:
    for usage, expected in [
        (KeyUsage.PIN_ENCRYPTION, pin),
        (KeyUsage.MAC_GENERATION, mac),
        (KeyUsage.DATA_ENCRYPT, data),
    ]:
        assert dukpt_aes.derive_working_key(AES_IK, IKID, counter, usage).hex().upper() == expected


@pytest.mark.parametrize(("counter", "pin", "mac", "data"), [v for v in AES_WORKING_KEYS if v[0] != 0x1FFFF])
def test_aes_terminal_working_keys(counter: int, pin: str, mac: str, data: str) -> None:
    tx = AesDukptTerminal.at_counter(AES_IK, IKID, counter).next_transaction()
    assert tx.counter == counter
    assert tx.working_key(KeyUsage.PIN_ENCRYPTION).hex().upper() == pin
    assert tx.working_key(KeyUsage.MAC_GENERATION).hex().upper() == mac
    assert tx.working_key(KeyUsage.DATA_ENCRYPT).hex().upper() == data


def test_aes_terminal_never_uses_a_counter_with_seventeen_one_bits() -> None:
    terminal = AesDukptTerminal.at_counter(AES_IK, IKID, 0x1FFFE)
    assert terminal.next_transaction().counter == 0x1FFFE
    assert terminal.next_transaction().counter == 0x20000  # 0x1FFFF has 17 one bits
    with pytest.raises(CryptoError):
        AesDukptTerminal.at_counter(AES_IK, IKID, 0x1FFFF)


@pytest.mark.parametrize(("usage", "expected"), AES_ALL_USAGES_COUNTER_1)
def test_aes_every_usage_at_counter_1(usage: KeyUsage, expected: str) -> None:
    tx = AesDukptTerminal.load_initial_key(AES_IK, IKID).next_transaction()
    assert tx.working_key(usage).hex().upper() == expected


def test_aes_last_counters_then_exhaustion() -> None:
    terminal = AesDukptTerminal.at_counter(AES_IK, IKID, AES_LAST_COUNTERS[0][0])
    for counter, derivation_key in AES_LAST_COUNTERS:
        tx = terminal.next_transaction()
        assert (tx.counter, tx.derivation_key.hex().upper()) == (counter, derivation_key)
    assert terminal.exhausted
    with pytest.raises(KeyExhaustedError):
        terminal.next_transaction()


def test_aes_update_key_at_counter_ffffffff() -> None:
    derivation = dukpt_aes.derive_intermediate_key(AES_IK, IKID, 0xFFFFFFFF)
    assert derivation.hex().upper() == "36C6EBBCC0536FC91C1D50660D4F82AE"
    kek = dukpt_aes.derive_working_key(AES_IK, IKID, 0xFFFFFFFF, KeyUsage.KEY_ENCRYPTION)
    assert kek.hex().upper() == "9A9770AEE1ACD1B13473D0463A1883B9"


def test_aes256_bdk_vectors() -> None:
    ik = dukpt_aes.derive_initial_key(AES_BDK * 2, IKID)
    assert ik.hex().upper() == "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F"
    tx = AesDukptTerminal.load_initial_key(ik, IKID).next_transaction()
    expected_256 = {
        KeyUsage.PIN_ENCRYPTION: "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502",
        KeyUsage.MAC_GENERATION: "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549",
        KeyUsage.DATA_ENCRYPT: "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58",
    }
    expected_128 = {
        KeyUsage.PIN_ENCRYPTION: "09C9C432966811D6B2C3336BAC1B1202",
        KeyUsage.MAC_GENERATION: "F04A1FABD4176E15490CEC82E217A96D",
        KeyUsage.DATA_ENCRYPT: "616D59AE91F8CC7016F89FDA29605FA4",
    }
    for usage, key in expected_256.items():
        assert tx.working_key(usage, KeyType.AES256).hex().upper() == key
    for usage, key in expected_128.items():
        assert tx.working_key(usage, KeyType.AES128).hex().upper() == key


def test_aes_terminal_agrees_with_host_side() -> None:
    terminal = AesDukptTerminal.load_initial_key(AES_IK, IKID)
    for _ in range(300):
        tx = terminal.next_transaction()
        assert tx.derivation_key == dukpt_aes.derive_intermediate_key(AES_IK, IKID, tx.counter)


def test_aes_refuses_working_key_stronger_than_derivation_key_and_bad_inputs() -> None:
    tx = AesDukptTerminal.load_initial_key(AES_IK, IKID).next_transaction()
    with pytest.raises(CryptoError, match="stronger"):
        tx.working_key(KeyUsage.PIN_ENCRYPTION, KeyType.AES256)
    with pytest.raises(CryptoError):
        tx.working_key(KeyUsage.KEY_DERIVATION)
    with pytest.raises(CryptoError):
        dukpt_aes.derive_initial_key(AES_BDK[:10], IKID)
    with pytest.raises(CryptoError):
        dukpt_aes.derive_initial_key(AES_BDK, IKID[:7])
