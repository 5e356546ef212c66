"""Command APDU encodings (EMV Book 3 6.5, Book 1 11.3) and response parsing.

Expected bytes come from published traces: [JER] javaemvreader ExampleOutput,
[PBOC] javashuo.com PBOC trace, [SO1] Stack Overflow q. 30919084, [AHF] the
LinkedIn "Read Application Data" article, [ZK] t.zoukankan.com/utank-p-10006063
(EMV command list: GET DATA '80 CA 9F 17', GENERATE AC P1 00/40/80).
"""

from __future__ import annotations

import pytest

from firmware.emv import apdu
from firmware.errors import ApduError
from tests.emv_fakes import h


def test_select_pse_as_in_javaemvreader_with_le() -> None:
    # [JER] prints "00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31" (T=0, no Le);
    # [SO1] sends the same with Le 00, as EMV case 4 commands carry it.
    command = apdu.select_by_name(b"1PAY.SYS.DDF01")
    assert command.encode() == h("00 A4 04 00 0E 31 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00")
    assert command.case == 4


def test_select_aid_and_next_occurrence() -> None:
    # [SO1] "SELECT ADF: 00 A4 04 00 07 A0 00 00 00 03 20 10 00"
    assert apdu.select_by_name(h("A0000000032010")).encode() == h("00 A4 04 00 07 A0 00 00 00 03 20 10 00")
    assert apdu.select_by_name(h("A0000000032010"), next_occurrence=True).encode() == h(
        "00 A4 04 02 07 A0 00 00 00 03 20 10 00"
    )


@pytest.mark.parametrize(
    ("sfi", "record", "expected"),
    [
        (2, 1, "00 B2 01 14 00"),  # [JER] record 1 of SFI 2
        (2, 2, "00 B2 02 14 00"),  # [JER]
        (1, 1, "00 B2 01 0C 00"),  # [PBOC], [AHF]
        (30, 255, "00 B2 FF F4 00"),
    ],
)
def test_read_record(sfi: int, record: int, expected: str) -> None:
    assert apdu.read_record(sfi, record).encode() == h(expected)


@pytest.mark.parametrize(("sfi", "record"), [(0, 1), (31, 1), (1, 0), (1, 256)])
def test_read_record_out_of_range(sfi: int, record: int) -> None:
    with pytest.raises(ApduError):
        apdu.read_record(sfi, record)


def test_gpo_without_pdol() -> None:
    # [SO1] "GET PROCESSING OPTIONS: 80 A8 00 00 02 83 00 00"
    assert apdu.get_processing_options(b"").encode() == h("80 A8 00 00 02 83 00 00")


def test_gpo_with_pdol_data_and_long_template() -> None:
    data = h("36004000 000000001000 000000000000 0156 0000000000 0156 250601 00 11223344")
    assert apdu.get_processing_options(data).encode() == h("80 A8 00 00 23 83 21") + data + h("00")
    long = bytes(200)
    assert apdu.get_processing_options(long).encode()[:8] == h("80 A8 00 00 CB 83 81 C8")
    with pytest.raises(ApduError):
        apdu.get_processing_options(bytes(253))


def test_get_data_pin_try_counter_and_atc() -> None:
    # [ZK] "Get Data For PIN Try Counter: 80 CA 9F 17 00"
    assert apdu.get_data(0x9F17).encode() == h("80 CA 9F 17 00")
    assert apdu.get_data(0x9F36).encode() == h("80 CA 9F 36 00")


def test_get_challenge_verify_internal_external_authenticate() -> None:
    assert apdu.get_challenge().encode() == h("00 84 00 00 00")
    pin_block = h("24 12 34 FF FF FF FF FF")
    verify = apdu.verify(pin_block)
    assert verify.encode() == h("00 20 00 80 08") + pin_block
    assert verify.case == 3
    assert apdu.verify(bytes(128), apdu.PIN_ENCIPHERED).encode()[:5] == h("00 20 00 88 80")
    assert apdu.internal_authenticate(h("01020304")).encode() == h("00 88 00 00 04 01 02 03 04 00")
    issuer_auth = h("1122334455667788 3030")
    assert apdu.external_authenticate(issuer_auth).encode() == h("00 82 00 00 0A") + issuer_auth
    with pytest.raises(ApduError):
        apdu.external_authenticate(bytes(7))


@pytest.mark.parametrize(
    ("p1", "expected_p1"),
    [
        (apdu.CRYPTOGRAM_AAC, 0x00),
        (apdu.CRYPTOGRAM_TC, 0x40),
        (apdu.CRYPTOGRAM_ARQC, 0x80),
        (apdu.CRYPTOGRAM_ARQC | apdu.CDA_REQUESTED, 0x90),
    ],
)
def test_generate_ac_reference_control(p1: int, expected_p1: int) -> None:
    cdol = bytes(29)
    assert apdu.generate_ac(p1, cdol).encode() == bytes([0x80, 0xAE, expected_p1, 0x00, 29]) + cdol + h("00")


def test_generate_ac_refuses_rfu_bits() -> None:
    with pytest.raises(ApduError):
        apdu.generate_ac(0xC0, bytes(4))
    with pytest.raises(ApduError):
        apdu.generate_ac(0x81, bytes(4))


def test_get_response_le() -> None:
    # [PBOC] "61 28" answered by "00 C0 00 00 28"
    assert apdu.get_response(0x28).encode() == h("00 C0 00 00 28")
    assert apdu.get_response(0x00).encode() == h("00 C0 00 00 00")


def test_command_refuses_oversized_data_and_bad_bytes() -> None:
    with pytest.raises(ApduError):
        apdu.Command("X", 0x00, 0xB0, 0, 0, bytes(256))
    with pytest.raises(ApduError):
        apdu.Command("X", 0x100, 0xB0, 0, 0)
    with pytest.raises(ApduError):
        apdu.select_by_name(b"")


def test_response_from_bytes() -> None:
    response = apdu.Response.from_bytes(h("6F 00 90 00"))
    assert (response.data, response.sw1, response.sw2, response.sw, response.ok) == (
        h("6F00"),
        0x90,
        0,
        0x9000,
        True,
    )
    assert apdu.Response.from_bytes(h("6A 82")).data == b""
    assert apdu.Response.from_bytes(h("6A82")).encode() == h("6A82")


@pytest.mark.parametrize("raw", [b"", h("90")])
def test_too_short_response_is_an_apdu_error(raw: bytes) -> None:
    with pytest.raises(ApduError):
        apdu.Response.from_bytes(raw)


@pytest.mark.parametrize(
    ("sw", "words"),
    [
        (0x9000, "normal"),
        (0x6A82, "not found"),
        (0x6A83, "record not found"),
        (0x6985, "conditions of use"),
        (0x6283, "invalidated"),
        (0x6A81, "not supported"),
        (0x6128, "40 response bytes"),
        (0x6C27, "39 bytes"),
        (0x63C2, "2"),
        (0x1234, "unknown"),
    ],
)
def test_status_word_meanings(sw: int, words: str) -> None:
    assert words in apdu.describe_sw(sw)
