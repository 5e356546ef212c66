"""The simulated card, one instruction at a time: status words, selection, GPO, GET DATA, VERIFY."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sim import pki, tlv
from sim.card import Card, load_profile_card

PSE = b"1PAY.SYS.DDF01"
VISA = bytes.fromhex("A0000000031010")
MASTERCARD = bytes.fromhex("A0000000041010")
UNIONPAY_DEBIT = bytes.fromhex("A000000333010101")
UNIONPAY_CREDIT = bytes.fromhex("A000000333010102")


def counting_rng() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


def card(profile: str) -> Card:
    result = load_profile_card(profile, rng=counting_rng())
    result.power_on()
    return result


def send(target: Card, apdu: str | bytes) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    response = target.transmit(raw)
    return response[:-2], int.from_bytes(response[-2:], "big")


def select(target: Card, name: bytes, p2: int = 0) -> tuple[bytes, int]:
    return send(target, bytes([0x00, 0xA4, 0x04, p2, len(name)]) + name + b"\x00")


def gpo(target: Card, pdol_data: bytes = b"") -> tuple[bytes, int]:
    body = tlv.encode(0x83, pdol_data)
    return send(target, bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00")


def read_record(target: Card, sfi: int, number: int) -> tuple[bytes, int]:
    return send(target, bytes([0x00, 0xB2, number, (sfi << 3) | 4, 0x00]))


def get_data(target: Card, tag: int) -> bytes:
    data, sw = send(target, bytes([0x80, 0xCA, tag >> 8, tag & 0xFF, 0x00]))
    assert sw == 0x9000
    return tlv.parse_to_dict(data)[tag]


def pin_block(pin: str) -> bytes:
    digits = f"2{len(pin):X}{pin}"
    return bytes.fromhex(digits + "F" * (16 - len(digits)))


def verify_plain(target: Card, pin: str) -> int:
    return send(target, bytes([0x00, 0x20, 0x00, 0x80, 0x08]) + pin_block(pin))[1]


# --- the one place that turns errors into status words ----------------------------------------


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("A0A404000E315041592E5359532E444446303100", 0x6E00),  # unknown class
        ("000E000000", 0x6D00),  # unknown instruction
        ("80A404000E315041592E5359532E444446303100", 0x6E00),  # SELECT is CLA 00, not 80
        ("00A8000002830000", 0x6E00),  # GET PROCESSING OPTIONS is CLA 80
        ("00A404", 0x6700),  # no full header
        ("00A404000E315041", 0x6700),  # Lc says 14, 3 bytes follow
        ("00A4000002A00000", 0x6A86),  # SELECT by file id: not supported
        ("00A40400", 0x6700),  # SELECT without a name
    ],
)
def test_status_words_for_malformed_commands(apdu: str, sw: int) -> None:
    assert send(card("visa-credit"), apdu) == (b"", sw)


# --- SELECT and the PSE ---------------------------------------------------------------------------


def test_select_pse_then_read_its_directory() -> None:
    target = card("visa-credit")
    fci, sw = select(target, PSE)
    assert sw == 0x9000
    assert tlv.find(fci, 0x84) == PSE
    assert tlv.find(fci, 0x88) == b"\x01"
    record, sw = read_record(target, 1, 1)
    assert sw == 0x9000 and record[0] == 0x70
    entry = tlv.find(record, 0x61)
    assert entry is not None
    assert tlv.find(entry, 0x4F) == VISA
    assert tlv.find(entry, 0x50) == b"VISA CREDIT"
    assert tlv.find(entry, 0x87) == b"\x01"
    assert read_record(target, 1, 2) == (b"", 0x6A83)
    assert read_record(target, 2, 1) == (b"", 0x6A82)


def test_multi_app_directory_lists_both_with_cardholder_confirmation() -> None:
    target = card("multi-app")
    select(target, PSE)
    entries = []
    for number in itertools.count(1):
        record, sw = read_record(target, 1, number)
        if sw == 0x6A83:
            break
        entries += [value for tag, value in tlv.parse(tlv.parse(record)[0][1]) if tag == 0x61]
    assert [tlv.find(entry, 0x4F) for entry in entries] == [UNIONPAY_DEBIT, UNIONPAY_CREDIT]
    priorities = [tlv.find(entry, 0x87) for entry in entries]
    assert priorities == [b"\x81", b"\x82"]  # b8: cardholder confirmation required


def test_partial_name_selects_first_then_next_occurrence() -> None:
    target = card("multi-app")
    fci, sw = select(target, bytes.fromhex("A000000333"))
    assert sw == 0x9000 and tlv.find(fci, 0x84) == UNIONPAY_DEBIT
    fci, sw = select(target, bytes.fromhex("A000000333"), p2=0x02)
    assert sw == 0x9000 and tlv.find(fci, 0x84) == UNIONPAY_CREDIT
    assert select(target, bytes.fromhex("A000000333"), p2=0x02) == (b"", 0x6A82)
    fci, sw = select(target, bytes.fromhex("A000000333"))  # P2 00 starts over
    assert tlv.find(fci, 0x84) == UNIONPAY_DEBIT


def test_partial_pse_name_and_full_aid() -> None:
    target = card("visa-credit")
    fci, sw = select(target, b"1PAY")
    assert sw == 0x9000 and tlv.find(fci, 0x84) == PSE
    fci, sw = select(target, VISA)
    assert sw == 0x9000 and tlv.find(fci, 0x84) == VISA
    assert tlv.find(fci, 0x50) == b"VISA CREDIT"
    assert select(target, bytes.fromhex("A0000000039999")) == (b"", 0x6A82)


def test_no_pse_card_answers_6a82_but_selects_by_aid() -> None:
    target = card("no-pse")
    assert select(target, PSE) == (b"", 0x6A82)
    assert select(target, VISA)[1] == 0x9000


def test_blocked_application_is_selected_with_6283_and_refuses_gpo() -> None:
    target = card("blocked")
    fci, sw = select(target, MASTERCARD)
    assert sw == 0x6283
    assert tlv.find(fci, 0x84) == MASTERCARD
    assert gpo(target) == (b"", 0x6985)


# --- READ RECORD ----------------------------------------------------------------------------------


def test_read_record_status_words() -> None:
    target = card("visa-credit")
    assert read_record(target, 1, 1) == (b"", 0x6A82)  # nothing selected
    select(target, VISA)
    record, sw = read_record(target, 2, 1)
    assert sw == 0x9000 and tlv.find(record, 0x5A) == bytes.fromhex("4761739001010010")
    assert read_record(target, 2, 9) == (b"", 0x6A83)
    assert read_record(target, 9, 1) == (b"", 0x6A82)
    assert send(target, "00B2010800") == (b"", 0x6A86)  # P2 low bits must be 100
    assert send(target, "00B2000C00") == (b"", 0x6A86)  # record 0
    assert send(target, "00B2010C0100") == (b"", 0x6700)  # READ RECORD carries no data


# --- GET PROCESSING OPTIONS -------------------------------------------------------------------------


def test_gpo_format_1_and_the_atc() -> None:
    target = card("visa-credit")
    select(target, VISA)
    atc = int.from_bytes(get_data(target, 0x9F36), "big")
    data, sw = gpo(target)
    assert sw == 0x9000
    [(tag, value)] = tlv.parse(data)
    assert tag == 0x80
    assert value[:2] == bytes.fromhex("3C00")  # AIP: DDA, CVM, TRM, issuer authentication
    assert len(value[2:]) % 4 == 0 and value[2:]
    assert int.from_bytes(get_data(target, 0x9F36), "big") == atc + 1
    assert gpo(target) == (b"", 0x6985)  # once per selection


def test_gpo_format_2() -> None:
    target = card("mastercard-credit")
    select(target, MASTERCARD)
    data, sw = gpo(target)
    assert sw == 0x9000 and data[0] == 0x77
    assert tlv.find(data, 0x82) == bytes.fromhex("3900")
    afl = tlv.find(data, 0x94)
    assert afl is not None and len(afl) % 4 == 0


def test_gpo_checks_the_pdol_data_length() -> None:
    target = card("unionpay-debit")  # PDOL 9F7A01 9F0206 5F2A02: 9 bytes
    select_t0(target, UNIONPAY_DEBIT)
    assert gpo(target, bytes(8)) == (b"", 0x6700)
    assert send(target, "80A80000020000") == (b"", 0x6700)  # not an '83' object
    sw = gpo(target, bytes(9))[1]
    assert sw >> 8 == 0x61  # T=0: the answer waits for GET RESPONSE


def test_gpo_needs_a_selected_application() -> None:
    target = card("visa-credit")
    assert gpo(target) == (b"", 0x6985)
    select(target, PSE)
    assert gpo(target) == (b"", 0x6985)
    select(target, VISA)
    assert send(target, "80A8010002830000") == (b"", 0x6A86)


# --- GET DATA, GET CHALLENGE ---------------------------------------------------------------------------


def test_get_data_objects() -> None:
    target = card("unionpay-debit")
    select_t0(target, UNIONPAY_DEBIT)
    assert send_t0(target, "80CA9F3600") == (bytes.fromhex("9F36020005"), 0x9000)
    assert send_t0(target, "80CA9F1300") == (bytes.fromhex("9F13020004"), 0x9000)
    assert send_t0(target, "80CA9F1700") == (bytes.fromhex("9F170103"), 0x9000)
    log_format, sw = send_t0(target, "80CA9F4F00")
    assert sw == 0x9000
    assert tlv.parse_to_dict(log_format)[0x9F4F] == bytes.fromhex(
        "9A039F21039F02069F03069F1A025F2A029F4E149C019F3602"
    )
    assert send_t0(target, "80CA9F7900") == (bytes.fromhex("9F7906000000010000"), 0x9000)
    assert send(target, "80CA9F5000") == (b"", 0x6A88)


def test_get_data_without_an_application() -> None:
    assert send(card("visa-credit"), "80CA9F3600") == (b"", 0x6A88)


def test_get_challenge_draws_from_the_given_rng() -> None:
    target = card("visa-credit")
    first, sw = send(target, "0084000000")
    assert sw == 0x9000 and first == bytes(range(1, 9))
    second, _ = send(target, "0084000000")
    assert second == bytes(range(9, 17))
    assert send(target, "0084000100")[1] == 0x6A86


# --- VERIFY -------------------------------------------------------------------------------------------


def test_plaintext_pin_counts_tries_and_blocks() -> None:
    target = card("mastercard-credit")
    select(target, MASTERCARD)
    assert verify_plain(target, "4315") == 0x6985  # before GPO
    gpo(target)
    assert verify_plain(target, "4315") == 0x9000
    assert verify_plain(target, "1111") == 0x63C2
    assert get_data(target, 0x9F17) == b"\x02"
    assert verify_plain(target, "4315") == 0x9000  # a right PIN resets the counter
    assert get_data(target, 0x9F17) == b"\x03"
    assert [verify_plain(target, "0000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert verify_plain(target, "4315") == 0x6983  # blocked, even with the right PIN
    assert get_data(target, 0x9F17) == b"\x00"


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("0020008008 1F1234FFFFFFFFFF", 0x6A80),  # control nibble not 2
        ("0020008008 2412A4FFFFFFFFFF", 0x6A80),  # not a digit
        ("0020008008 2312345FFFFFFFFF", 0x6A80),  # 3 digits
        ("0020008007 241234FFFFFFFF", 0x6700),
        ("0020008108 241234FFFFFFFFFF", 0x6A86),
    ],
)
def test_malformed_verify(apdu: str, sw: int) -> None:
    target = card("visa-credit")
    select(target, VISA)
    gpo(target)
    assert send(target, apdu) == (b"", sw)
    assert get_data(target, 0x9F17) == b"\x03"  # none of these costs a try


def icc_public_key(profile: str, aid: bytes) -> rsa.RSAPublicNumbers:
    return pki.load_private_key(pki.icc_key_path(profile, aid)).public_key().public_numbers()


def encipher_pin(key: rsa.RSAPublicNumbers, pin: str, challenge: bytes, header: int = 0x7F) -> bytes:
    """Book 2 7.1, terminal side: 7F || PIN block || ICC challenge || padding, raw RSA with pow."""
    size = (key.n.bit_length() + 7) // 8
    block = bytes([header]) + pin_block(pin) + challenge
    block += bytes((i * 7 + 3) & 0xFF for i in range(size - len(block)))
    return pow(int.from_bytes(block, "big"), key.e, key.n).to_bytes(size, "big")


def verify_enciphered(target: Card, data: bytes) -> int:
    return send(target, bytes([0x00, 0x20, 0x00, 0x88, len(data)]) + data)[1]


def test_enciphered_pin_with_the_icc_key() -> None:
    target = card("visa-credit")
    key = icc_public_key("visa-credit", VISA)
    select(target, VISA)
    gpo(target)
    assert verify_enciphered(target, encipher_pin(key, "1234", bytes(8))) == 0x6985  # no GET CHALLENGE
    challenge, _ = send(target, "0084000000")
    assert verify_enciphered(target, encipher_pin(key, "1234", challenge)) == 0x9000
    challenge, _ = send(target, "0084000000")
    assert verify_enciphered(target, encipher_pin(key, "4321", challenge)) == 0x63C2
    challenge, _ = send(target, "0084000000")
    assert verify_enciphered(target, encipher_pin(key, "1234", bytes(8))) == 0x6A80  # stale challenge
    challenge, _ = send(target, "0084000000")
    assert verify_enciphered(target, encipher_pin(key, "1234", challenge, header=0x7E)) == 0x6A80
    challenge, _ = send(target, "0084000000")
    assert verify_enciphered(target, encipher_pin(key, "1234", challenge)[1:]) == 0x6700
    assert get_data(target, 0x9F17) == b"\x02"


def test_internal_authenticate_needs_dda() -> None:
    sda = card("expired")
    select(sda, VISA)
    assert send(sda, "008800000411223344 00") == (b"", 0x6D00)
    dda = card("visa-credit")
    select(dda, VISA)
    assert send(dda, "0088000000") == (b"", 0x6700)
    data, sw = send(dda, "008800000411223344 00")
    assert sw == 0x9000 and data[:3] == bytes.fromhex("808180")  # format 1: '80' with 128 bytes


# --- T=0 style -------------------------------------------------------------------------------------------


def send_t0(target: Card, apdu: str | bytes) -> tuple[bytes, int]:
    """What a T=0 terminal transport does: follow 61xx with GET RESPONSE, repeat on 6Cxx."""
    raw = bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu
    data, sw = send(target, raw)
    if sw >> 8 == 0x6C:
        data, sw = send(target, raw[:4] + bytes([sw & 0xFF]))
    if sw >> 8 == 0x61:
        data, sw = send(target, bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
    return data, sw


def select_t0(target: Card, name: bytes) -> tuple[bytes, int]:
    return send_t0(target, bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00")


def test_t0_profile_answers_61xx_and_6cxx() -> None:
    target = card("unionpay-debit")
    raw_select = bytes([0x00, 0xA4, 0x04, 0x00, 14]) + PSE + b"\x00"
    data, sw = send(target, raw_select)
    assert data == b"" and sw >> 8 == 0x61
    fci, sw = send(target, bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
    assert sw == 0x9000 and tlv.find(fci, 0x84) == PSE
    data, sw = read_record(target, 1, 1)  # Le '00' is wrong for a T=0 card
    assert data == b"" and sw >> 8 == 0x6C
    record, sw = send(target, bytes([0x00, 0xB2, 0x01, 0x0C, sw & 0xFF]))
    assert sw == 0x9000 and tlv.find(record, 0x4F) == UNIONPAY_DEBIT
    assert send(target, "00C0000010") == (b"", 0x6985)  # nothing waiting


def test_t1_profile_does_not_know_get_response() -> None:
    assert send(card("visa-credit"), "00C0000010") == (b"", 0x6D00)


def test_power_cycle_forgets_the_transaction_but_not_the_counters() -> None:
    target = card("visa-credit")
    select(target, VISA)
    gpo(target)
    verify_plain(target, "9999")
    atc = get_data(target, 0x9F36)
    target.power_off()
    target.power_on()
    assert gpo(target) == (b"", 0x6985)  # nothing selected any more
    select(target, VISA)
    assert get_data(target, 0x9F36) == atc
    assert get_data(target, 0x9F17) == b"\x02"


def test_forced_status_word_fault() -> None:
    from sim.profile import load_profile, profile_from_dict, read_profile_json

    raw = read_profile_json("visa-credit")
    raw["faults"] = {"status_words": {"A8": "6A81"}}
    faulty = Card(profile_from_dict("visa-credit", raw), rng=counting_rng())
    faulty.power_on()
    select(faulty, VISA)
    assert gpo(faulty) == (b"", 0x6A81)
    assert load_profile("visa-credit").faults.status_words == ()
