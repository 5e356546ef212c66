"""DUKPT against the published tables.

TDES: ANSI X9.24-1:2009 Annex A.4 (A.4.2 initial sequence, A.4.3 rollover
sequence): transaction keys and PIN blocks as transcribed in openemv/dukpt's
test suite; PIN/MAC variant keys for further counters from the DUKPT2000
verify table of an independent Python implementation; MAC and data
variants for counters 1..5 from moov-io/dukpt's A.4.2 table.
AES: ANSI X9.24-3:2017 Annex B and the X9 supplement test vectors, as
transcribed in openemv/dukpt and paysec-dukpt's test suites.
(psec and pyemv implement no DUKPT, so no library cross-check is possible.)
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

# ----- TDES (X9.24-1:2009) ---------------------------------------------------------------

BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IKSN = bytes.fromhex("FFFF9876543210E00000")
IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")
PIN, PAN = "1234", "4012345678909"

# A.4.2 initial sequence: (KSN, transaction key, encrypted PIN block)
INITIAL_SEQUENCE = [
    ("FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "1B9C1845EB993A7A"),
    ("FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "10A01C8D02C69107"),
    ("FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "18DC07B94797B466"),
    ("FFFF9876543210E00004", "279C0F6AEED0BE652B2C733E1383AE91", "0BC79509D5645DF7"),
    ("FFFF9876543210E00005", "5F8DC6D2C845C125508DDC048093B83F", "5BC0AF22AD87B327"),
    ("FFFF9876543210E00006", "5E415CB0BAF9F03CD0C14B63FB62FF43", "A16DF70AE36158D8"),
    ("FFFF9876543210E00007", "0C8F780B7C8B49D0AE84A9EB2A6CE660", "27711C16CB257F8E"),
    ("FFFF9876543210E00008", "27F66D5244FF62E1AA6F6120EDEB4280", "50E55547A5027551"),
    ("FFFF9876543210E00009", "27E31064FDC565698900E2057F658E7E", "536CF7F678ACFC8D"),
    ("FFFF9876543210E0000A", "6CF2500A22507C7CC776CEADC1E33014", "EDABBA23221833FE"),
    ("FFFF9876543210E0000B", "3E8260BA04B2D620C01482B3819A18B7", "2328981C57B4BDBA"),
    ("FFFF9876543210E0000C", "B716E1E11CF53D80726CAEE75C3A624F", "038D03CC926CF286"),
    ("FFFF9876543210E0000D", "E072EDF95340535FB6C581C58FBF2533", "6C8AA97088B62C68"),
    ("FFFF9876543210E0000E", "A80046087F5B8F245AAD95E18429084F", "F17C9E1D72CD4950"),
    ("FFFF9876543210E0000F", "93DD5B956C4878472E453AAEFD32A5AA", "B170F6E7F7F2F64A"),
    ("FFFF9876543210E00010", "59598DCBD9BD94C094165CE453585F57", "D5D9638559EF53D6"),
    ("FFFF9876543210E00011", "2B5F01F4F0CC05EA639D523231BF1BA2", "D544F8CDD292C863"),
    ("FFFF9876543210E00012", "9CF640F279C2AEE615F725EEEAC2CBAF", "7A21BD10F36DC41D"),
    ("FFFF9876543210E00013", "C3DF489FDF1153B4F03DE97C27DC4C2F", "78649BD17D0DFA60"),
    ("FFFF9876543210E00014", "658488507721B3F14737FA93F923CBD2", "7E7E16EA0C31AD56"),
    ("FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "72105C22EBC791E6"),
]

# A.4.3 rollover sequence
ROLLOVER_SEQUENCE = [
    ("FFFF9876543210EFF800", "F9CDFEBF4F5B1D9EB3EC12454527E176", "33365F5CC6F23C35"),
    ("FFFF9876543210EFF801", "5BEE92627E97825C911BF619DF72CA3B", "3A86BF003F835C9D"),
    ("FFFF9876543210EFF802", "64CA2F8AB93F61B01620B00BF77C7301", "3DB977D05C36DF3F"),
    ("FFFF9876543210EFF804", "35A168695B3BA83307E871C42021DD37", "BA83243305712099"),
    ("FFFF9876543210EFF808", "12C380FCB72ED3C26FC6079AF63F4787", "B0DA04AC90A36D85"),
    ("FFFF9876543210EFF810", "D8007C833A1E3C49C6889B97A68C54FF", "2CF02BD9C309EEDA"),
    ("FFFF9876543210EFF820", "A9C9FF9B735FDD49591F296B0BF0FD70", "9D1E2F77AEEE81C6"),
    ("FFFF9876543210EFF840", "0E3E221062CB5E03A384602783A004FA", "40870B0F8BA2011C"),
    ("FFFF9876543210EFF880", "CA8225C587124DFBB87F279C0BE29727", "22E340D6ABB40981"),
    ("FFFF9876543210EFF900", "906AAC1751D4971A144D52C76C6E1F97", "1A4C10AFBA03A430"),
    ("FFFF9876543210EFFA00", "2B9E2CE7C2750337E10B54D2989EA6AF", "849763B43E5F9CFF"),
    ("FFFF9876543210EFFC00", "F9430DF975082491C77BE4EF4FDB91EE", "DEFC6F09F8927B71"),
    ("FFFF9876543210F00000", "AA4D58DB653EC74A48C75F2F047DD2B5", "73EC88AD0AC5830E"),
]

# (KSN, PIN variant key, MAC request variant key, encrypted PIN block)
VARIANT_TABLE = [
    (
        "FFFF9876543210E00001",
        "042666B49184CF5C68DE9628D0397B36",
        "042666B4918430A368DE9628D03984C9",
        "1B9C1845EB993A7A",
    ),
    (
        "FFFF9876543210E10000",
        "2F9A0C0B46ECCBA1F8287A7A071AF54B",
        "2F9A0C0B46EC345EF8287A7A071A0AB4",
        "19776D96D73AF1E2",
    ),
    (
        "FFFF9876543210E20000",
        "DEFDE0EA1043B58D2FA013DE6C4B8F04",
        "DEFDE0EA10434A722FA013DE6C4B70FB",
        "83F14581B8946B2D",
    ),
    (
        "FFFF9876543210E40000",
        "9F59E8536BDB056513C856FCCF9A0981",
        "9F59E8536BDBFA9A13C856FCCF9AF67E",
        "96B3ADCBF9F5219C",
    ),
    (
        "FFFF9876543210E80000",
        "87B9983D9D23047A8D199F5CA0C3DEEC",
        "87B9983D9D23FB858D199F5CA0C32113",
        "1E0F453FD55FCE45",
    ),
]

# moov-io/dukpt A.4.2: (KSN, data request, data response, MAC request, MAC response), data "4012345678909D987"
MAC_DATA_TABLE = [
    (
        "FFFF9876543210E00001",
        "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F",
        "1FCC89AF66222F27B903898BB2BC8589CDBFDE5EC6AFCC25",
        "9CCC78173FC4FB64",
        "20364223C1FF00FA",
    ),
    (
        "FFFF9876543210E00002",
        "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13",
        "5B692A6B1FDD5E25B0DEFAFDE1672E402F8011360CFF3508",
        "F608A9BCA6FFC311",
        "D1FCA6BEF05D24D2",
    ),
    (
        "FFFF9876543210E00003",
        "BD751E65F10E75B6C1D5B1D283496A36C2DE21D993C387A7",
        "345992D4163E4926C927BFD8ABD5D76F087A9CE81D5A27B8",
        "20B59A4FEAC937E3",
        "BAD4CC9CC2AE326C",
    ),
    (
        "FFFF9876543210E00004",
        "1118F50947441BBDA3C8C70220021A12EC31CC473F7215F4",
        "418C7413576C0D1819E785D3807AF32334231FDEC23414DB",
        "C7BFA6CC44161828",
        "1EB08AEECE6FF0C2",
    ),
    (
        "FFFF9876543210E00005",
        "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365",
        "7D4C109E49E83355A556AE949EED359F4404E7A2F0167C00",
        "0202B96339022058",
        "5CBE3E81D1D2A0FB",
    ),
]


def no_rng(size: int) -> bytes:
    raise AssertionError("format 0 needs no randomness")


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


# ----- AES (X9.24-3:2017) ------------------------------------------------------------------

AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
IKID = bytes.fromhex("1234567890123456")
AES_IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")

# Supplement test vectors, AES-128 BDK: intermediate derivation keys for counters 1..8.
AES_DERIVATION_KEYS = [
    "4F21B565BAD9835E112B6465635EAE44",
    "2F34D68DE10F68D38091A73B9E7C437C",
    "031504E530365CF81264238540518318",
    "0EEFC7ADA628BA68878DA9165A8A1887",
    "C2A7AC328A5DA2D6002D62465BFC028B",
    "D30F7D9351DA58448A2F5E92B4EE3B7D",
    "A8253CEED9AC042C54F75D35C8352278",
    "718EE6CF0B27E53D5F7AF99C4D8146A2",
]

# (counter, PIN encryption, MAC generation, data encryption (encrypt)), AES-128 working keys.
AES_WORKING_KEYS = [
    (
        0x00000001,
        "AF8CB133A78F8DC2D1359F18527593FB",
        "A2DC23DE6FDE0824A2BC321E08E4B8B7",
        "A35C412EFD41FDB98B69797C02DCD08F",
    ),
    (
        0x00000002,
        "D30BDC73EC9714B000BEC66BDB7B6D09",
        "484C3B06E8562704528CD5B46FB12FB6",
        "D639514AA33AC43AD9229E433D6D4E5B",
    ),
    (
        0x00000003,
        "7D69F01F3B45449F62C7816ECE723268",
        "A5DF7D9D800CA769766F0C77CA4E6E6C",
        "EF17F6AB45B4820C93A3DCB21BC491AD",
    ),
    (
        0x00000004,
        "91A0588318EC2673214271F70137896E",
        "E6E4679647D8A9057C1FC15537CB4C4E",
        "B3BD44C08BB6BA27C3BB4711D7D70387",
    ),
    (
        0x00000005,
        "35A43BC9EFEB09C756204B57E3FB7D4D",
        "0588185FE1FF8C7E22FAD78C1C61F065",
        "CA02DF6F30B39E14BD0B4A30E460920F",
    ),
    (
        0x00000008,
        "4D9DF3FBEE3448FC3E676D04320A90F5",
        "6FD572E5D59E618875F193484F9178FB",
        "650F34204ABD4E57764D61AC3D266FB1",
    ),
    (
        0x0001FFFE,
        "DDF7E08A84B5478C498D007C743BF762",
        "6D7623AD652734B8FAE1B6E093EACE3D",
        "8E4E5D5E0F01C54F01F4ACA1C8F8EDCE",
    ),
    (
        0x0001FFFF,
        "73BA667D6368A2086E72576DF41A4037",
        "8B543DCF4A31EA3AB47DAD16B8ABD404",
        "D18ACA30B4D63DB61CE474D3F57733D3",
    ),
    (
        0x00020000,
        "AB828BE7B58C7EC5D5ED0D5D320A0C9D",
        "0B59D3D7D93028D97135FB895CACE24E",
        "13361208975755318FE7AE28C9616014",
    ),
]

AES_ALL_USAGES_COUNTER_1 = [
    (KeyUsage.KEY_ENCRYPTION, "36A724B7BEFA5A25F5E7B5782A4554A2"),
    (KeyUsage.PIN_ENCRYPTION, "AF8CB133A78F8DC2D1359F18527593FB"),
    (KeyUsage.MAC_GENERATION, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
    (KeyUsage.MAC_VERIFICATION, "DBB463945B286C07CD3AD82EE96FD9C9"),
    (KeyUsage.MAC_BOTH_WAYS, "85675439D18D7F1158BD8E3EAA3D502B"),
    (KeyUsage.DATA_ENCRYPT, "A35C412EFD41FDB98B69797C02DCD08F"),
    (KeyUsage.DATA_DECRYPT, "16292C6EA8F64C5420A0584BFBC577BE"),
    (KeyUsage.DATA_BOTH_WAYS, "A308E080DD15A1B741F1721BF67DE11C"),
]

# Supplement: the last four counters a device reaches, and their derivation keys.
AES_LAST_COUNTERS = [
    (0xFFFE2000, "48E585B694EB0B18D5C35443E163C0BA"),
    (0xFFFE4000, "396C2C7CA1EA701C03B86B7D41F0C562"),
    (0xFFFE8000, "0387625F189B58AE03EF0E8CCA41105E"),
    (0xFFFF0000, "F6BA59389BD14A9855BE9727E7C52E3C"),
]


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
