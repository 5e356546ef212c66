"""The store's filter of clear card data: hex, base64 and TLV looked into, Unicode digits, PAN and
PIN field names; and random data (sealed PANs, field 55, signatures) not refused by chance."""

from __future__ import annotations

import base64
import random

import pytest

from firmware.errors import SensitiveDataError
from firmware.host.spec import pack
from firmware.store.sensitive import check_storable, luhn_valid

PAN = "6225880123456783"  # Luhn-valid 16 digits
PAN19 = "6212345678901234569"
TRACK2 = f"{PAN}D30122011234567890"


def _message(**fields: str) -> bytes:
    base = {"t": "0200", "3": "000000", "4": "000000006000", "11": "000123", "25": "00"}
    base.update({"41": "TERM0001", "42": "MERCHANT0000001", "49": "156"})
    return pack({**base, **fields})


def _tlv(tag: str, value: bytes) -> bytes:
    return bytes.fromhex(tag) + bytes([len(value)]) + value


FIELD55 = bytes.fromhex(
    "9F2608A1B2C3D4E5F607189F2701809F101307010103A0B800010A0100000000000000000000950500000000009A03250817"
)
BCD_PAN = bytes.fromhex(PAN)
BCD_TRACK2 = bytes.fromhex(TRACK2 + "F" * (len(TRACK2) % 2))


def test_the_vectors_are_what_they_say() -> None:
    assert luhn_valid(PAN) and luhn_valid(PAN19)


LEAKS = {
    "iso 8583 hex, field 2": _message(**{"2": PAN}).hex(),
    "iso 8583 hex, field 2 of 19": _message(**{"2": PAN19}).hex().upper(),
    "iso 8583 hex, field 35": _message(**{"35": TRACK2}).hex(),
    "iso 8583 base64, field 2 and 35": base64.b64encode(_message(**{"2": PAN, "35": TRACK2})).decode(),
    "iso 8583 base64, field 35 only": base64.b64encode(_message(**{"35": TRACK2})).decode(),
    "emv tlv hex, 5A": (FIELD55 + _tlv("5A", BCD_PAN)).hex(),
    "emv tlv hex, 57": (_tlv("57", BCD_TRACK2) + FIELD55).hex(),
    "emv tlv base64, 5A": base64.b64encode(FIELD55 + _tlv("5A", BCD_PAN)).decode(),
    "emv tlv base64, 57 inside 70": base64.b64encode(_tlv("70", _tlv("57", BCD_TRACK2))).decode(),
    "emv tlv urlsafe base64, 9F6B": base64.urlsafe_b64encode(_tlv("9F6B", BCD_TRACK2) + b"\xfb\xff").decode(),
    "bcd track 2 hex": BCD_TRACK2.hex(),
    "bcd pan with length, hex": (b"\x16" + BCD_PAN).hex(),
    "base64 of text": base64.b64encode(f"card {PAN} exp 3012".encode()).decode(),
    "hex of ascii track 2": f";{PAN}=30122011234?".encode().hex(),
    "pan with dots": "6225.8801.2345.6783",
    "pan with slashes": "6225/8801/2345/6783",
    "amex layout": "3714-496353-98431",
    "19 digits, 4-4-4-4-3": "6212 3456 7890 1234 569",
    "pan with dots in text": "paid with 6225.8801.2345.6783 today",
    "pan with spaces in text": "card 6225 8801 2345 6783 refunded",
    "full-width digits": "６２２５８８０１２３４５６７８３",
    "full-width digits with spaces": "６２２５ ８８０１ ２３４５ ６７８３",
    "arabic-indic digits": "٦٢٢٥٨٨٠١٢٣٤٥٦٧٨٣",
    "field 2 written out": "16" + PAN,
}


@pytest.mark.parametrize("value", LEAKS.values(), ids=LEAKS.keys())
def test_clear_card_data_in_any_encoding_is_refused(value: str) -> None:
    with pytest.raises(SensitiveDataError) as caught:
        check_storable({"request": {"payload": value}}, "queue")
    assert caught.value.field == "queue.request.payload"
    assert value not in str(caught.value)


NAMES = [
    "pin",
    "pin_data",
    "clear_pin",
    "clearPin",
    "PIN-block",
    "pinBlock",
    "encrypted_pin",
    "cvv_value",
    "cvv2",
    "CVC2",
    "card_security_code",
    "securityCode",
    "track2",
    "track_2",
    "track2_equivalent_data",
    "Track1Data",
    "trk2",
    "magstripe",
    "icvv",
    "pin_field",
]


@pytest.mark.parametrize("name", NAMES)
def test_fields_named_like_pin_track_or_security_code_are_refused(name: str) -> None:
    with pytest.raises(SensitiveDataError, match="named like"):
        check_storable({name: "x"}, "doc")


KEPT = [
    {"order": "A1001", "amount": 6000, "trace": 123, "rrn": "000000123456", "auth_code": "A1B2C3"},
    {"contact": "+86 138 0013 8000", "name": "张伟", "reason": "客户退货"},
    {"time": "2025-08-17 10:11:12", "date": "2025.08.17", "ip": "192.168.100.200"},
    {"order": "O20251203-111457-3456", "stamp": "20251203.111457.3456", "path": "2025/12/03/111457/34"},
    {"pan_masked": "622588******6788", "last4": "6788", "pan_sequence_number": 1},
    {"shipping": "tracking 12 parcels", "opinion": "good", "mapping": "pinyin", "pinyin": "zhang wei"},
    {"cvm_result": "online_pin"},
    {"icc": base64.b64encode(FIELD55).decode(), "mac": "1A2B3C4D5E6F7A8B"},
]


@pytest.mark.parametrize("document", KEPT)
def test_ordinary_records_are_kept(document: dict[str, object]) -> None:
    check_storable(document, "doc")


def _false_refusals(values: list[str]) -> list[str]:
    refused = []
    for value in values:
        try:
            check_storable({"value": value}, "doc")
        except SensitiveDataError:
            refused.append(value)
    return refused


# Realistic sizes: a hash (32 bytes), a sealed PAN (12-byte nonce + 16..19 PAN bytes + 16-byte tag),
# a signature (64), field 55 (100..255). (Eight random bytes written as hex are all digits and
# Luhn-valid once in 20,000: that is a PAN as it is written, and refused; keep those in base64.)
SIZES = (32, 44, 47, 64, 100, 180, 255)


@pytest.mark.parametrize("encoding", ["hex", "HEX", "base64"])
def test_random_data_is_not_refused_by_chance(encoding: str) -> None:
    """100,000 values in all; bench/bench_sensitive.py measures 100,000 of each encoding and more."""
    rng = random.Random(f"sensitive-{encoding}")
    values = []
    for index in range(100_000 // 3 + 1):
        data = rng.randbytes(SIZES[index % len(SIZES)])
        text = base64.b64encode(data).decode() if encoding == "base64" else data.hex()
        values.append(text.upper() if encoding == "HEX" else text)
    assert _false_refusals(values) == []


def test_the_old_filter_refused_random_hex_about_one_and_a_half_percent() -> None:
    """Why hex digit runs are not read as PANs any more: random hex holds Luhn-valid runs often."""
    import re

    rng = random.Random("runs")
    run = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
    hits = sum(
        any(luhn_valid(m.group()) for m in run.finditer(rng.randbytes(64).hex())) for _ in range(20_000)
    )
    assert 0.005 < hits / 20_000 < 0.03
