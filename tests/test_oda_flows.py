"""SDA, DDA and CDA over certificates this test builds field by field from EMV Book 2's tables.

The builder below lays out each block as the book's table gives it
(issuer certificate: table 6, signed static data: table 7, ICC certificate:
table 14, signed dynamic data: tables 17 and 19), hashes with hashlib and
signs with textbook RSA using `cryptography` private keys. It shares no code
with the terminal. Each negative test changes one field and expects one
specific failure (stage and check) and one specific set of TVR bits,
without an exception.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.emv import oda
from firmware.emv.capk import CapkStore, CaPublicKey, Revocation
from firmware.emv.certificates import Check, Stage
from firmware.emv.tvr import Tsi, TsiBit, Tvr, TvrBit
from firmware.errors import CardDataError, ConfigError, StatusWordError

TODAY = date(2026, 6, 1)
RID = bytes.fromhex("A000000999")
AID = RID + bytes.fromhex("1010")
PAN = bytes.fromhex("4761739001010010")
ISSUER_ID = bytes.fromhex("476173FF")
UN = bytes.fromhex("1A2B3C4D")
AIP = bytes.fromhex("7900")  # SDA, DDA, cardholder verification, risk management, CDA


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def modulus_of(key: rsa.RSAPrivateKey) -> bytes:
    n = key.public_key().public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def exponent_of(key: rsa.RSAPrivateKey) -> bytes:
    e = key.public_key().public_numbers().e
    return e.to_bytes((e.bit_length() + 7) // 8, "big")


def sign(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    assert len(block) == len(modulus_of(key)) and int.from_bytes(block, "big") < n
    return pow(int.from_bytes(block, "big"), numbers.d, n).to_bytes(len(block), "big")


def seal(
    key: rsa.RSAPrivateKey,
    body: bytes,
    hashed_after: bytes,
    header: int = 0x6A,
    trailer: int = 0xBC,
) -> bytes:
    """header || body || SHA-1(body || data outside the block) || trailer, signed."""
    return sign(key, bytes([header]) + body + sha1(body + hashed_after) + bytes([trailer]))


def split_key(modulus: bytes, room: int) -> tuple[bytes, bytes]:
    """(leftmost digits padded with BB, remainder) for a key field of `room` bytes."""
    if len(modulus) <= room:
        return modulus + b"\xbb" * (room - len(modulus)), b""
    return modulus[:room], modulus[room:]


@dataclass(frozen=True)
class IssuerCertificateFields:
    """Book 2 table 6, one attribute per row."""

    header: int = 0x6A
    certificate_format: int = 0x02
    issuer_identifier: bytes = ISSUER_ID
    expiration: bytes = bytes.fromhex("1230")
    serial: bytes = bytes.fromhex("0A0B0C")
    hash_algorithm: int = 0x01
    key_algorithm: int = 0x01
    key_length: int | None = None  # None: the real length
    trailer: int = 0xBC
    signed_remainder: bytes | None = None  # None: the real remainder


def issuer_certificate(
    ca: rsa.RSAPrivateKey, issuer: rsa.RSAPrivateKey, f: IssuerCertificateFields
) -> tuple[bytes, bytes]:
    modulus, exponent = modulus_of(issuer), exponent_of(issuer)
    leftmost, remainder = split_key(modulus, len(modulus_of(ca)) - 36)
    body = (
        bytes([f.certificate_format])
        + f.issuer_identifier
        + f.expiration
        + f.serial
        + bytes([f.hash_algorithm, f.key_algorithm])
        + bytes([f.key_length if f.key_length is not None else len(modulus), len(exponent)])
        + leftmost
    )
    signed_remainder = remainder if f.signed_remainder is None else f.signed_remainder
    return seal(ca, body, signed_remainder + exponent, f.header, f.trailer), signed_remainder


@dataclass(frozen=True)
class IccCertificateFields:
    """Book 2 table 14, one attribute per row."""

    header: int = 0x6A
    certificate_format: int = 0x04
    pan: bytes = PAN + b"\xff\xff"
    expiration: bytes = bytes.fromhex("1229")
    serial: bytes = bytes.fromhex("000001")
    hash_algorithm: int = 0x01
    key_algorithm: int = 0x01
    trailer: int = 0xBC


def icc_certificate(
    issuer: rsa.RSAPrivateKey, icc: rsa.RSAPrivateKey, static_data: bytes, f: IccCertificateFields
) -> tuple[bytes, bytes]:
    modulus, exponent = modulus_of(icc), exponent_of(icc)
    leftmost, remainder = split_key(modulus, len(modulus_of(issuer)) - 42)
    body = (
        bytes([f.certificate_format])
        + f.pan
        + f.expiration
        + f.serial
        + bytes([f.hash_algorithm, f.key_algorithm, len(modulus), len(exponent)])
        + leftmost
    )
    return seal(issuer, body, remainder + exponent + static_data, f.header, f.trailer), remainder


def signed_static_data(
    issuer: rsa.RSAPrivateKey,
    static_data: bytes,
    dac: bytes = b"\xda\xc1",
    data_format: int = 0x03,
    hash_algorithm: int = 0x01,
) -> bytes:
    """Book 2 table 7."""
    pad = b"\xbb" * (len(modulus_of(issuer)) - 26)
    return seal(issuer, bytes([data_format, hash_algorithm]) + dac + pad, static_data)


def signed_dynamic_data(icc: rsa.RSAPrivateKey, dynamic: bytes, terminal_data: bytes) -> bytes:
    """Book 2 table 17."""
    pad = b"\xbb" * (len(modulus_of(icc)) - len(dynamic) - 25)
    return seal(icc, bytes([0x05, 0x01, len(dynamic)]) + dynamic + pad, terminal_data)


def tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    length = bytes([len(value)]) if len(value) < 0x80 else bytes([0x81, len(value)])
    return tag_bytes + length + value


# Records as a card would return them; AFL: SFI 1 records 1-2 (both for ODA), SFI 2 record 1
# (not for ODA), SFI 11 record 1 (for ODA, so included whole).
RECORD_1_1 = tlv(
    0x70,
    tlv(0x5F24, bytes.fromhex("291231")) + tlv(0x5A, PAN) + tlv(0x5F34, b"\x01") + tlv(0x9F4A, b"\x82"),
)
RECORD_1_2 = tlv(0x70, tlv(0x8E, bytes.fromhex("000000000000000042031E031F00")) + tlv(0x9F07, b"\xff\x00"))
RECORD_2_1 = tlv(0x70, tlv(0x5F28, b"\x01\x56"))
RECORD_11_1 = tlv(0x70, tlv(0x9F08, b"\x00\x02"))
AFL = bytes.fromhex("080102021001010058010101")
RECORDS = {(1, 1): RECORD_1_1, (1, 2): RECORD_1_2, (2, 1): RECORD_2_1, (11, 1): RECORD_11_1}
# What Book 3 10.3 says the static data is, spelled out by hand.
STATIC_DATA = RECORD_1_1[2:] + RECORD_1_2[2:] + RECORD_11_1 + AIP


@dataclass(frozen=True)
class Pki:
    ca: rsa.RSAPrivateKey
    issuer: rsa.RSAPrivateKey
    icc: rsa.RSAPrivateKey
    ca_index: int

    def ca_public_key(self, expiry: date = date(2099, 12, 31)) -> CaPublicKey:
        modulus, exponent = modulus_of(self.ca), exponent_of(self.ca)
        return CaPublicKey(
            rid=RID,
            index=self.ca_index,
            modulus=modulus,
            exponent=exponent,
            expiry=expiry,
            checksum=sha1(RID + bytes([self.ca_index]) + modulus + exponent),
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    """Issuer key needs a remainder under the CA (144 > 176-36); ICC key one under the issuer."""
    return Pki(
        ca=rsa.generate_private_key(public_exponent=3, key_size=1408),
        issuer=rsa.generate_private_key(public_exponent=3, key_size=1152),
        icc=rsa.generate_private_key(public_exponent=65537, key_size=1024),
        ca_index=0x01,
    )


@pytest.fixture(scope="module")
def roomy_pki() -> Pki:
    """Both keys fit their certificates (176 <= 248-36, 128 <= 176-42): no remainders, BB padding."""
    return Pki(
        ca=rsa.generate_private_key(public_exponent=3, key_size=1984),
        issuer=rsa.generate_private_key(public_exponent=3, key_size=1408),
        icc=rsa.generate_private_key(public_exponent=3, key_size=1024),
        ca_index=0x02,
    )


@dataclass(frozen=True)
class Card:
    """The card data one test starts from; tests change one field."""

    pki: Pki
    issuer_fields: IssuerCertificateFields = field(default_factory=IssuerCertificateFields)
    icc_fields: IccCertificateFields = field(default_factory=IccCertificateFields)
    signed_static: bytes = STATIC_DATA
    ddol: bytes | None = bytes.fromhex("9F3704")

    def data(self) -> dict[int, bytes]:
        return dict(_card_data(self))


@functools.cache
def _card_data(card: Card) -> dict[int, bytes]:
    """Signing is the slow part; each distinct card is built once."""
    keys = card.pki
    issuer_cert, issuer_remainder = issuer_certificate(keys.ca, keys.issuer, card.issuer_fields)
    icc_cert, icc_remainder = icc_certificate(keys.issuer, keys.icc, card.signed_static, card.icc_fields)
    data = {
        0x4F: AID,
        0x5A: PAN,
        0x8F: bytes([keys.ca_index]),
        0x90: issuer_cert,
        0x9F32: exponent_of(keys.issuer),
        0x93: signed_static_data(keys.issuer, card.signed_static),
        0x9F46: icc_cert,
        0x9F47: exponent_of(keys.icc),
    }
    if issuer_remainder:
        data[0x92] = issuer_remainder
    if icc_remainder:
        data[0x9F48] = icc_remainder
    if card.ddol is not None:
        data[0x9F49] = card.ddol
    return data


def store(pki: Pki, revoked: tuple[bytes, ...] = ()) -> CapkStore:
    return CapkStore.of([pki.ca_public_key()], [Revocation(RID, pki.ca_index, serial) for serial in revoked])


def static() -> oda.StaticData:
    return oda.build_static_data(AFL, RECORDS, AIP, b"\x82")


def bits(*flags: TvrBit) -> bytes:
    value = 0
    for flag in flags:
        value |= flag
    return value.to_bytes(5, "big")


class InternalAuthenticate:
    """A card answering INTERNAL AUTHENTICATE: signs table 17 over what the terminal sent."""

    def __init__(
        self,
        icc: rsa.RSAPrivateKey,
        idn: bytes = bytes.fromhex("0102030405060708"),
        fmt: int = 0x80,
        signed_over: bytes | None = None,
    ) -> None:
        self.icc, self.idn, self.fmt, self.signed_over = icc, idn, fmt, signed_over
        self.sent: list[bytes] = []

    def __call__(self, ddol_data: bytes) -> bytes:
        self.sent.append(ddol_data)
        signature = signed_dynamic_data(
            self.icc,
            bytes([len(self.idn)]) + self.idn,
            ddol_data if self.signed_over is None else self.signed_over,
        )
        if self.fmt == 0x80:
            return tlv(0x80, signature)
        return tlv(0x77, tlv(0x9F4B, signature))


# --- method selection (Book 3 10.3) -------------------------------------------


@pytest.mark.parametrize(
    ("aip", "capabilities", "expected"),
    [
        ("7900", "E0F8C8", oda.OdaMethod.CDA),
        ("7900", "E0F8C0", oda.OdaMethod.DDA),
        ("7900", "E0F880", oda.OdaMethod.SDA),
        ("7900", "E0F808", oda.OdaMethod.CDA),
        ("7900", "E0F800", oda.OdaMethod.NONE),
        ("6000", "E0F8C8", oda.OdaMethod.DDA),
        ("4000", "E0F8C8", oda.OdaMethod.SDA),
        ("4000", "E0F848", oda.OdaMethod.NONE),
        ("0100", "E0F888", oda.OdaMethod.CDA),
        ("1800", "E0F8C8", oda.OdaMethod.NONE),
    ],
)
def test_select_method(aip: str, capabilities: str, expected: oda.OdaMethod) -> None:
    assert oda.select_method(bytes.fromhex(aip), bytes.fromhex(capabilities)) is expected


def test_select_method_refuses_wrong_lengths() -> None:
    with pytest.raises(CardDataError):
        oda.select_method(b"\x79", bytes.fromhex("E0F8C8"))
    with pytest.raises(ConfigError):
        oda.select_method(AIP, bytes.fromhex("E0F8"))


def test_not_performed_sets_its_bit() -> None:
    tvr = Tvr()
    oda.record_not_performed(tvr)
    assert tvr.to_bytes() == bits(TvrBit.OFFLINE_DATA_AUTH_NOT_PERFORMED)


# --- static data to be authenticated ------------------------------------------


def test_static_data_follows_book_3() -> None:
    built = static()
    assert built.failure is None
    assert built.data == STATIC_DATA


def test_static_data_without_tag_list_has_no_aip() -> None:
    assert oda.build_static_data(AFL, RECORDS, AIP, None).data == STATIC_DATA[: -len(AIP)]


def test_static_data_long_template() -> None:
    content = tlv(0x9F08, b"\x00\x02") * 50
    records = dict(RECORDS) | {(1, 1): b"\x70\x81" + bytes([len(content)]) + content}
    assert oda.build_static_data(bytes.fromhex("08010101"), records, AIP, None).data == content


@pytest.mark.parametrize(
    ("records", "tag_list", "check"),
    [
        (RECORDS | {(1, 2): tlv(0x77, RECORD_1_2[2:])}, b"\x82", Check.RECORD_TEMPLATE),
        (RECORDS | {(1, 2): RECORD_1_2 + b"\x9f"}, b"\x82", Check.RECORD_TEMPLATE),
        (RECORDS | {(1, 2): RECORD_1_2[:-1]}, b"\x82", Check.RECORD_TEMPLATE),
        (RECORDS, b"\x82\x9f\x37", Check.TAG_LIST),
        (RECORDS, b"\x5a", Check.TAG_LIST),
    ],
    ids=["not-70", "trailing-byte", "truncated", "extra-tag", "other-tag"],
)
def test_static_data_failures(records: dict[tuple[int, int], bytes], tag_list: bytes, check: Check) -> None:
    built = oda.build_static_data(AFL, records, AIP, tag_list)
    assert built.failure is not None
    assert (built.failure.stage, built.failure.check) == (Stage.STATIC_DATA, check)


@pytest.mark.parametrize(
    "record", [tlv(0x77, b"\x01"), bytes.fromhex("DF0103AABBCC"), RECORD_11_1 + b"\x9f", RECORD_11_1[:-1]],
    ids=["77-template", "bare-object", "trailing-byte", "truncated"],
)
def test_a_not_70_record_of_sfi_11_fails_oda(record: bytes) -> None:
    # Book 3 10.3 (Bulletin 12): records read for ODA not coded '70' -> ODA performed and failed, any SFI
    built = oda.build_static_data(AFL, RECORDS | {(11, 1): record}, AIP, None)
    assert built.failure is not None
    assert (built.failure.stage, built.failure.check) == (Stage.STATIC_DATA, Check.RECORD_TEMPLATE)
    assert "SFI 11 record 1" in built.failure.detail


def test_static_data_failure_fails_the_method(pki: Pki) -> None:
    bad = oda.build_static_data(AFL, RECORDS | {(1, 2): tlv(0x77, b"")}, AIP, b"\x82")
    tvr = Tvr()
    result = oda.perform_sda(store(pki), Card(pki).data(), bad, tvr, TODAY)
    assert result.failure is not None and result.failure.check is Check.RECORD_TEMPLATE
    assert tvr.to_bytes() == bits(TvrBit.SDA_FAILED, TvrBit.SDA_SELECTED)


@pytest.mark.parametrize("afl", ["", "080101", "00010101", "08000101", "08020101", "08010103", "F8010101"])
def test_malformed_afl_raises(afl: str) -> None:
    with pytest.raises(CardDataError):
        oda.build_static_data(bytes.fromhex(afl), RECORDS, AIP, None)


def test_unread_flagged_record_raises() -> None:
    with pytest.raises(CardDataError, match="SFI 1"):
        oda.build_static_data(AFL, {(1, 1): RECORD_1_1}, AIP, None)


# --- SDA ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["remainders", "roomy"])
def test_sda_passes(which: str, pki: Pki, roomy_pki: Pki) -> None:
    keys = pki if which == "remainders" else roomy_pki
    card = Card(keys).data()
    assert (0x92 in card) == (which == "remainders")
    tvr, tsi = Tvr(), Tsi()
    result = oda.perform_sda(store(keys), card, static(), tvr, TODAY, tsi=tsi)
    assert result.failure is None, str(result.failure)
    assert result.ok
    assert result.data_objects == {0x9F45: b"\xda\xc1"}
    assert result.issuer_key is not None
    assert result.issuer_key.modulus == modulus_of(keys.issuer)
    assert result.issuer_key.exponent == exponent_of(keys.issuer)
    assert result.issuer_key.expiry == date(2030, 12, 31)
    assert result.issuer_key.serial == bytes.fromhex("0A0B0C")
    assert tvr.to_bytes() == bits(TvrBit.SDA_SELECTED)
    assert result.tvr_bits == TvrBit.SDA_SELECTED
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in tsi


def sda_outcome(
    keys: Pki,
    card: dict[int, bytes],
    capks: CapkStore | None = None,
    static_data: oda.StaticData | bytes | None = None,
    day: date = TODAY,
) -> tuple[oda.OdaResult, Tvr]:
    tvr = Tvr()
    result = oda.perform_sda(
        capks or store(keys), card, static() if static_data is None else static_data, tvr, day
    )
    return result, tvr


SDA_FAIL = bits(TvrBit.SDA_FAILED, TvrBit.SDA_SELECTED)
SDA_MISSING = bits(TvrBit.SDA_FAILED, TvrBit.ICC_DATA_MISSING, TvrBit.SDA_SELECTED)


def test_sda_tampered_record_byte(pki: Pki) -> None:
    records = dict(RECORDS)
    tampered = bytearray(RECORD_1_2)
    tampered[-1] ^= 0x01
    records[(1, 2)] = bytes(tampered)
    result, tvr = sda_outcome(
        pki, Card(pki).data(), static_data=oda.build_static_data(AFL, records, AIP, b"\x82")
    )
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.SIGNED_STATIC_DATA, Check.HASH)
    assert tvr.to_bytes() == SDA_FAIL
    assert result.issuer_key is not None  # the issuer certificate itself was fine


def test_sda_tampered_aip(pki: Pki) -> None:
    built = oda.build_static_data(AFL, RECORDS, bytes.fromhex("7800"), b"\x82")
    result, tvr = sda_outcome(pki, Card(pki).data(), static_data=built)
    assert result.failure is not None and result.failure.check is Check.HASH
    assert tvr.to_bytes() == SDA_FAIL


@pytest.mark.parametrize(
    ("fields", "stage", "check"),
    [
        (IssuerCertificateFields(expiration=bytes.fromhex("0526")), Stage.ISSUER_CERTIFICATE, Check.EXPIRED),
        (IssuerCertificateFields(expiration=bytes.fromhex("1326")), Stage.ISSUER_CERTIFICATE, Check.DATE),
        (IssuerCertificateFields(expiration=bytes.fromhex("0A26")), Stage.ISSUER_CERTIFICATE, Check.DATE),
        (IssuerCertificateFields(trailer=0xBD), Stage.ISSUER_CERTIFICATE, Check.TRAILER),
        (IssuerCertificateFields(header=0x6B), Stage.ISSUER_CERTIFICATE, Check.HEADER),
        (IssuerCertificateFields(certificate_format=0x04), Stage.ISSUER_CERTIFICATE, Check.FORMAT),
        (IssuerCertificateFields(hash_algorithm=0x02), Stage.ISSUER_CERTIFICATE, Check.HASH_ALGORITHM),
        (IssuerCertificateFields(key_algorithm=0x02), Stage.ISSUER_CERTIFICATE, Check.KEY_ALGORITHM),
        (
            IssuerCertificateFields(issuer_identifier=bytes.fromhex("476174FF")),
            Stage.ISSUER_CERTIFICATE,
            Check.ISSUER_IDENTIFIER,
        ),
        (
            IssuerCertificateFields(issuer_identifier=bytes.fromhex("47FFFFFF")),
            Stage.ISSUER_CERTIFICATE,
            Check.ISSUER_IDENTIFIER,
        ),
        (
            IssuerCertificateFields(issuer_identifier=bytes.fromhex("47F173FF")),
            Stage.ISSUER_CERTIFICATE,
            Check.ISSUER_IDENTIFIER,
        ),
        (
            IssuerCertificateFields(issuer_identifier=bytes.fromhex("47617390")),
            Stage.ISSUER_CERTIFICATE,
            None,
        ),
        (IssuerCertificateFields(key_length=0), Stage.ISSUER_CERTIFICATE, Check.KEY_LENGTH),
    ],
    ids=[
        "expired",
        "month-13",
        "not-bcd",
        "trailer",
        "header",
        "format",
        "hash-algorithm",
        "key-algorithm",
        "other-issuer",
        "two-digits",
        "f-inside",
        "eight-digits-ok",
        "key-length-0",
    ],
)
def test_sda_issuer_certificate_checks(
    pki: Pki, fields: IssuerCertificateFields, stage: Stage, check: Check | None
) -> None:
    card = Card(pki, issuer_fields=fields)
    result, tvr = sda_outcome(pki, card.data())
    if check is None:
        assert result.failure is None, str(result.failure)
        return
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (stage, check)
    assert tvr.to_bytes() == SDA_FAIL


def test_sda_issuer_certificate_expires_at_the_end_of_its_month(pki: Pki) -> None:
    card = Card(pki, issuer_fields=IssuerCertificateFields(expiration=bytes.fromhex("0626"))).data()
    assert sda_outcome(pki, card, day=date(2026, 6, 30))[0].ok
    assert sda_outcome(pki, card, day=date(2026, 7, 1))[0].failure is not None


def test_sda_revoked_issuer_certificate(pki: Pki) -> None:
    result, tvr = sda_outcome(pki, Card(pki).data(), capks=store(pki, revoked=(bytes.fromhex("0A0B0C"),)))
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ISSUER_CERTIFICATE, Check.REVOKED)
    assert tvr.to_bytes() == SDA_FAIL
    other_serial = store(pki, revoked=(bytes.fromhex("0A0B0D"),))
    assert sda_outcome(pki, Card(pki).data(), capks=other_serial)[0].ok


def test_sda_wrong_ca_index_means_key_missing(pki: Pki) -> None:
    card = Card(pki).data() | {0x8F: b"\x09"}
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.CA_KEY, Check.NOT_HELD)
    assert tvr.to_bytes() == SDA_FAIL


def test_sda_other_rid_means_key_missing(pki: Pki) -> None:
    card = Card(pki).data() | {0x4F: bytes.fromhex("A0000000031010")}
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None and result.failure.check is Check.NOT_HELD
    assert tvr.to_bytes() == SDA_FAIL
    assert oda.perform_sda(store(pki), card, static(), Tvr(), TODAY, rid=RID).ok


def test_sda_withdrawn_ca_key(pki: Pki) -> None:
    withdrawn = CapkStore.of([pki.ca_public_key(expiry=date(2026, 5, 31))])
    result, tvr = sda_outcome(pki, Card(pki).data(), capks=withdrawn)
    assert result.failure is not None and result.failure.check is Check.NOT_HELD
    assert tvr.to_bytes() == SDA_FAIL


@pytest.mark.parametrize("tag", [0x8F, 0x90, 0x9F32, 0x93, 0x5A, 0x92])
def test_sda_missing_data_object(pki: Pki, tag: int) -> None:
    card = Card(pki).data()
    del card[tag]
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.CARD_DATA, Check.MISSING)
    assert tvr.to_bytes() == SDA_MISSING


def test_sda_without_aid_is_missing_data(pki: Pki) -> None:
    card = Card(pki).data()
    del card[0x4F]
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None and result.failure.check is Check.MISSING
    assert tvr.to_bytes() == SDA_MISSING
    assert sda_outcome(pki, card | {0x84: AID})[0].ok


def test_sda_remainder_of_wrong_length_signed_by_the_ca(pki: Pki) -> None:
    remainder = modulus_of(pki.issuer)[len(modulus_of(pki.ca)) - 36 :]
    card = Card(pki, issuer_fields=IssuerCertificateFields(signed_remainder=remainder[:-1])).data()
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ISSUER_CERTIFICATE, Check.REMAINDER)
    assert tvr.to_bytes() == SDA_FAIL


def test_sda_changed_remainder_or_exponent_breaks_the_hash(pki: Pki) -> None:
    card = Card(pki).data()
    for change in ({0x92: card[0x92][:-1] + b"\x00"}, {0x9F32: b"\x01\x00\x01"}):
        result, tvr = sda_outcome(pki, card | change)
        assert result.failure is not None
        assert (result.failure.stage, result.failure.check) == (Stage.ISSUER_CERTIFICATE, Check.HASH)
        assert tvr.to_bytes() == SDA_FAIL


@pytest.mark.parametrize(
    ("mangle", "check"),
    [
        (lambda cert: cert[:-1], Check.LENGTH),
        (lambda cert: cert + b"\x00", Check.LENGTH),
        (lambda cert: b"", Check.MISSING),
        (lambda cert: b"\xff" * len(cert), Check.NOT_BELOW_MODULUS),
        (lambda cert: cert[:10] + bytes([cert[10] ^ 1]) + cert[11:], None),
    ],
    ids=["truncated", "too-long", "empty", "above-modulus", "bit-flip"],
)
def test_sda_malformed_issuer_certificate(pki: Pki, mangle: object, check: Check | None) -> None:
    card = Card(pki).data()
    assert callable(mangle)
    card[0x90] = mangle(card[0x90])
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None
    if check is not None:
        assert result.failure.check is check
    assert TvrBit.SDA_FAILED in tvr


@pytest.mark.parametrize(
    ("ssad", "check"),
    [
        ({"data_format": 0x05}, Check.FORMAT),
        ({"hash_algorithm": 0x02}, Check.HASH_ALGORITHM),
    ],
)
def test_sda_signed_static_data_fields(pki: Pki, ssad: dict[str, int], check: Check) -> None:
    card = Card(pki).data()
    card[0x93] = signed_static_data(pki.issuer, STATIC_DATA, **ssad)  # type: ignore[arg-type]
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.SIGNED_STATIC_DATA, check)
    assert tvr.to_bytes() == SDA_FAIL


def test_sda_signed_static_data_by_another_key(pki: Pki, roomy_pki: Pki) -> None:
    card = Card(pki).data()
    card[0x93] = signed_static_data(roomy_pki.issuer, STATIC_DATA)
    result, tvr = sda_outcome(pki, card)
    assert result.failure is not None and result.failure.stage is Stage.SIGNED_STATIC_DATA
    assert tvr.to_bytes() == SDA_FAIL


def test_sda_malformed_ca_index(pki: Pki) -> None:
    result, tvr = sda_outcome(pki, Card(pki).data() | {0x8F: b"\x01\x01"})
    assert result.failure is not None and result.failure.stage is Stage.CA_KEY
    assert tvr.to_bytes() == SDA_FAIL


# --- DDA ------------------------------------------------------------------------


def dda_outcome(
    keys: Pki,
    card: dict[int, bytes],
    answer: InternalAuthenticate | None = None,
    static_data: oda.StaticData | None = None,
    day: date = TODAY,
    default_ddol: bytes | None = None,
) -> tuple[oda.OdaResult, Tvr, InternalAuthenticate]:
    tvr = Tvr()
    answer = answer or InternalAuthenticate(keys.icc)
    result = oda.perform_dda(
        store(keys), card, static_data or static(), answer, {0x9F37: UN}, tvr, day, default_ddol=default_ddol
    )
    return result, tvr, answer


@pytest.mark.parametrize("which", ["remainders", "roomy"])
@pytest.mark.parametrize("response_format", [0x80, 0x77], ids=["format-1", "format-2"])
def test_dda_passes(which: str, response_format: int, pki: Pki, roomy_pki: Pki) -> None:
    keys = pki if which == "remainders" else roomy_pki
    card = Card(keys).data()
    assert (0x9F48 in card) == (which == "remainders")
    tvr, tsi = Tvr(), Tsi()
    answer = InternalAuthenticate(keys.icc, fmt=response_format)
    result = oda.perform_dda(store(keys), card, static(), answer, {0x9F37: UN}, tvr, TODAY, tsi=tsi)
    assert result.failure is None, str(result.failure)
    assert answer.sent == [UN]
    assert result.data_objects == {0x9F4C: bytes.fromhex("0102030405060708")}
    assert result.icc_key is not None
    assert result.icc_key.modulus == modulus_of(keys.icc)
    assert result.icc_key.exponent == exponent_of(keys.icc)
    assert result.icc_key.expiry == date(2029, 12, 31)
    assert tvr.to_bytes() == bytes(5)
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in tsi


def test_dda_ddol_with_more_than_the_unpredictable_number(pki: Pki) -> None:
    card = Card(pki, ddol=bytes.fromhex("9F02069F37049F1A025F2403")).data()
    tvr = Tvr()
    answer = InternalAuthenticate(pki.icc)
    source = {0x9F37: UN, 0x9F02: bytes.fromhex("000000001000"), 0x9F1A: b"\x01\x56"}
    result = oda.perform_dda(store(pki), card, static(), answer, source, tvr, TODAY)
    assert result.ok, str(result.failure)
    # 9F02 and 9F1A from the terminal, 5F24 (3 bytes) taken from the card data
    assert answer.sent == [bytes.fromhex("000000001000") + UN + b"\x01\x56" + bytes(3)]


def test_dda_default_ddol_when_card_has_none(pki: Pki) -> None:
    card = Card(pki, ddol=None).data()
    result, tvr, answer = dda_outcome(pki, card, default_ddol=bytes.fromhex("9F3704"))
    assert result.ok
    assert answer.sent == [UN]
    result, tvr, answer = dda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.DDOL, Check.NO_DDOL)
    assert answer.sent == []
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_ddol_without_unpredictable_number(pki: Pki) -> None:
    result, tvr, answer = dda_outcome(pki, Card(pki, ddol=bytes.fromhex("9F0206")).data())
    assert result.failure is not None and result.failure.check is Check.NO_UNPREDICTABLE_NUMBER
    assert answer.sent == []
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_malformed_ddol(pki: Pki) -> None:
    result, tvr, _ = dda_outcome(pki, Card(pki, ddol=bytes.fromhex("9F")).data())
    assert result.failure is not None and (result.failure.stage, result.failure.check) == (
        Stage.DDOL,
        Check.MALFORMED,
    )
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_terminal_without_unpredictable_number_is_a_configuration_error(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="9F37"):
        oda.perform_dda(
            store(pki), Card(pki).data(), static(), InternalAuthenticate(pki.icc), {}, Tvr(), TODAY
        )


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        (IccCertificateFields(pan=bytes.fromhex("4761739001010011FFFF")), Check.PAN),
        (IccCertificateFields(pan=bytes.fromhex("476173900101001FFFFF")), Check.PAN),
        (IccCertificateFields(expiration=bytes.fromhex("0526")), Check.EXPIRED),
        (IccCertificateFields(expiration=bytes.fromhex("0026")), Check.DATE),
        (IccCertificateFields(certificate_format=0x02), Check.FORMAT),
        (IccCertificateFields(header=0x00), Check.HEADER),
        (IccCertificateFields(trailer=0x00), Check.TRAILER),
        (IccCertificateFields(hash_algorithm=0x00), Check.HASH_ALGORITHM),
        (IccCertificateFields(key_algorithm=0x03), Check.KEY_ALGORITHM),
    ],
    ids=[
        "other-pan",
        "shorter-pan",
        "expired",
        "month-0",
        "format",
        "header",
        "trailer",
        "hash-algorithm",
        "key-algorithm",
    ],
)
def test_dda_icc_certificate_checks(pki: Pki, fields: IccCertificateFields, check: Check) -> None:
    result, tvr, answer = dda_outcome(pki, Card(pki, icc_fields=fields).data())
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ICC_CERTIFICATE, check)
    assert answer.sent == []  # no INTERNAL AUTHENTICATE after a failed certificate
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_tampered_static_data(pki: Pki) -> None:
    card = Card(pki, signed_static=STATIC_DATA[:-1] + b"\x01").data()
    result, tvr, _ = dda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.ICC_CERTIFICATE, Check.HASH)
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


@pytest.mark.parametrize("tag", [0x9F46, 0x9F47, 0x9F48, 0x90, 0x8F])
def test_dda_missing_data_object(pki: Pki, tag: int) -> None:
    card = Card(pki).data()
    del card[tag]
    result, tvr, answer = dda_outcome(pki, card)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.CARD_DATA, Check.MISSING)
    assert answer.sent == []
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED, TvrBit.ICC_DATA_MISSING)


def test_dda_signature_over_other_data(pki: Pki) -> None:
    answer = InternalAuthenticate(pki.icc, signed_over=b"\x00\x00\x00\x00")
    result, tvr, _ = dda_outcome(pki, Card(pki).data(), answer)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.SIGNED_DYNAMIC_DATA, Check.HASH)
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_signature_by_another_card(pki: Pki, roomy_pki: Pki) -> None:
    result, tvr, _ = dda_outcome(pki, Card(pki).data(), InternalAuthenticate(roomy_pki.icc))
    assert result.failure is not None and result.failure.stage is Stage.SIGNED_DYNAMIC_DATA
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


@pytest.mark.parametrize("idn", [b"\x01", bytes(9)])
def test_dda_dynamic_number_of_wrong_length(pki: Pki, idn: bytes) -> None:
    result, tvr, _ = dda_outcome(pki, Card(pki).data(), InternalAuthenticate(pki.icc, idn=idn))
    assert result.failure is not None and result.failure.check is Check.DYNAMIC_DATA
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


class FixedAnswer(InternalAuthenticate):
    def __init__(self, response: bytes) -> None:
        self.response = response
        self.sent = []

    def __call__(self, ddol_data: bytes) -> bytes:
        self.sent.append(ddol_data)
        return self.response


@pytest.mark.parametrize(
    ("response", "check"),
    [
        (b"", Check.MALFORMED),
        (b"\x80\x05\x01", Check.MALFORMED),
        (tlv(0x77, tlv(0x9F4C, b"\x01\x02")), Check.MISSING),
        (tlv(0x9F4B, b"\x01"), Check.MALFORMED),
        (tlv(0x80, b"\x01" * 20), Check.LENGTH),
    ],
    ids=["empty", "truncated", "no-9F4B", "bare-9F4B", "short-signature"],
)
def test_dda_bad_internal_authenticate_response(pki: Pki, response: bytes, check: Check) -> None:
    result, tvr, _ = dda_outcome(pki, Card(pki).data(), FixedAnswer(response))
    assert result.failure is not None and result.failure.check is check
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


def test_dda_status_word(pki: Pki) -> None:
    def refuse(ddol_data: bytes) -> bytes:
        raise StatusWordError("INTERNAL AUTHENTICATE", 0x6A81)

    tvr = Tvr()
    result = oda.perform_dda(store(pki), Card(pki).data(), static(), refuse, {0x9F37: UN}, tvr, TODAY)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == (Stage.INTERNAL_AUTHENTICATE, Check.STATUS_WORD)
    assert "6A81" in str(result.failure)
    assert tvr.to_bytes() == bits(TvrBit.DDA_FAILED)


# --- CDA ------------------------------------------------------------------------

PDOL_DATA = bytes.fromhex("0000000010000156")
CDOL1_DATA = bytes.fromhex("00000000100000000000000001560000000000015626060100") + UN
CDOL2_DATA = bytes.fromhex("3030") + bytes(5) + UN
AC = bytes.fromhex("1122334455667788")
IDN = bytes.fromhex("A1A2A3A4")


def cda_response(
    icc: rsa.RSAPrivateKey,
    pdol_data: bytes,
    cdol_data: bytes,
    *,
    cid: int = 0x40,
    signed_cid: int | None = None,
    un: bytes = UN,
    atc: bytes = b"\x00\x2a",
    iad: bytes = bytes.fromhex("06010A03A00000"),
    hashed_atc: bytes | None = None,
) -> bytes:
    """A GENERATE AC answer in format 2 with a CDA signature (Book 2 tables 17 and 19, 6.6.1)."""
    cid_tlv = tlv(0x9F27, bytes([cid]))
    iad_tlv = tlv(0x9F10, iad)
    hashed = pdol_data + cdol_data + cid_tlv + tlv(0x9F36, hashed_atc or atc) + iad_tlv
    dynamic = bytes([len(IDN)]) + IDN + bytes([cid if signed_cid is None else signed_cid]) + AC + sha1(hashed)
    signature = signed_dynamic_data(icc, dynamic, un)
    return tlv(0x77, cid_tlv + tlv(0x9F36, atc) + tlv(0x9F4B, signature) + iad_tlv)


@pytest.fixture(scope="module")
def icc_key(pki: Pki) -> oda.RecoveredKey:
    prepared = oda.prepare_cda(store(pki), Card(pki).data(), static(), Tvr(), TODAY)
    assert prepared.icc_key is not None, str(prepared.failure)
    return prepared.icc_key


def test_cda_first_generate_ac_passes(pki: Pki, icc_key: oda.RecoveredKey) -> None:
    tvr = Tvr()
    result = oda.verify_cda(
        icc_key, cda_response(pki.icc, PDOL_DATA, CDOL1_DATA), PDOL_DATA, CDOL1_DATA, UN, tvr=tvr
    )
    assert result, str(result.failure)
    assert result.application_cryptogram == AC
    assert result.cryptogram_information_data == 0x40
    assert result.icc_dynamic_number == IDN
    assert result.data_objects == {0x9F26: AC, 0x9F27: b"\x40", 0x9F4C: IDN}
    assert tvr.to_bytes() == bytes(5)


def test_cda_second_generate_ac_hashes_both_cdol_data(pki: Pki, icc_key: oda.RecoveredKey) -> None:
    both = CDOL1_DATA + CDOL2_DATA
    response = cda_response(pki.icc, b"", both, cid=0x40)
    assert oda.verify_cda(icc_key, response, b"", both, UN)
    assert not oda.verify_cda(icc_key, response, b"", CDOL2_DATA, UN)


def test_cda_hashes_objects_as_received(pki: Pki, icc_key: oda.RecoveredKey) -> None:
    """A card may code a short length in the long form; the hash covers the bytes it sent."""
    cid_tlv, atc_tlv = tlv(0x9F27, b"\x80"), b"\x9f\x36\x81\x02\x00\x07"
    dynamic = bytes([len(IDN)]) + IDN + b"\x80" + AC + sha1(CDOL1_DATA + cid_tlv + atc_tlv)
    response = tlv(0x77, cid_tlv + atc_tlv + tlv(0x9F4B, signed_dynamic_data(pki.icc, dynamic, UN)))
    assert oda.verify_cda(icc_key, response, b"", CDOL1_DATA, UN)


def test_cda_prepare_sets_tsi_and_no_tvr(pki: Pki) -> None:
    tvr, tsi = Tvr(), Tsi()
    prepared = oda.prepare_cda(store(pki), Card(pki).data(), static(), tvr, TODAY, tsi=tsi)
    assert prepared.ok and prepared.method is oda.OdaMethod.CDA
    assert tvr.to_bytes() == bytes(5)
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in tsi


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"hashed_atc": b"\x00\x2b"}, (Stage.GENERATE_AC, Check.TRANSACTION_DATA_HASH)),
        ({"signed_cid": 0x80}, (Stage.GENERATE_AC, Check.CRYPTOGRAM_INFORMATION)),
        ({"un": b"\x00\x00\x00\x00"}, (Stage.SIGNED_DYNAMIC_DATA, Check.HASH)),
    ],
    ids=["response-changed", "cid-differs", "other-unpredictable-number"],
)
def test_cda_failures(
    pki: Pki, icc_key: oda.RecoveredKey, change: dict[str, object], expected: tuple[Stage, Check]
) -> None:
    tvr = Tvr()
    response = cda_response(pki.icc, PDOL_DATA, CDOL1_DATA, **change)  # type: ignore[arg-type]
    result = oda.verify_cda(icc_key, response, PDOL_DATA, CDOL1_DATA, UN, tvr=tvr)
    assert not result
    assert result.failure is not None
    assert (result.failure.stage, result.failure.check) == expected
    assert result.tvr_bits == TvrBit.CDA_FAILED
    assert tvr.to_bytes() == bits(TvrBit.CDA_FAILED)


def test_cda_pdol_data_is_part_of_the_hash(pki: Pki, icc_key: oda.RecoveredKey) -> None:
    response = cda_response(pki.icc, PDOL_DATA, CDOL1_DATA)
    result = oda.verify_cda(icc_key, response, b"", CDOL1_DATA, UN)
    assert result.failure is not None and result.failure.check is Check.TRANSACTION_DATA_HASH


@pytest.mark.parametrize(
    ("response", "check"),
    [
        (tlv(0x80, b"\x40\x00\x2a" + AC), Check.FORMAT),
        (tlv(0x77, tlv(0x9F27, b"\x40") + tlv(0x9F36, b"\x00\x01")), Check.MISSING),
        (tlv(0x77, tlv(0x9F36, b"\x00\x01") + tlv(0x9F4B, b"\x00" * 128)), Check.MISSING),
        (b"\x77\x05\x9f\x27\x01", Check.MALFORMED),
        (b"", Check.MALFORMED),
    ],
    ids=["format-1", "no-signature", "no-cid", "truncated", "empty"],
)
def test_cda_malformed_responses(icc_key: oda.RecoveredKey, response: bytes, check: Check) -> None:
    tvr = Tvr()
    result = oda.verify_cda(icc_key, response, b"", CDOL1_DATA, UN, tvr=tvr)
    assert result.failure is not None and result.failure.check is check
    assert tvr.to_bytes() == bits(TvrBit.CDA_FAILED)


def test_cda_key_recovery_failures(pki: Pki) -> None:
    tvr = Tvr()
    card = Card(pki, icc_fields=IccCertificateFields(pan=bytes.fromhex("5761739001010010FFFF"))).data()
    result = oda.prepare_cda(store(pki), card, static(), tvr, TODAY)
    assert result.failure is not None and result.failure.check is Check.PAN
    assert result.icc_key is None
    assert tvr.to_bytes() == bits(TvrBit.CDA_FAILED)
    card = Card(pki).data()
    del card[0x9F46]
    tvr = Tvr()
    result = oda.prepare_cda(store(pki), card, static(), tvr, TODAY)
    assert tvr.to_bytes() == bits(TvrBit.CDA_FAILED, TvrBit.ICC_DATA_MISSING)


# --- the key for an enciphered PIN (Book 2 7.1) ----------------------------------


@pytest.fixture(scope="module")
def pin_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def with_pin_certificate(pki: Pki, pin_rsa: rsa.RSAPrivateKey) -> dict[int, bytes]:
    """The card with an ICC PIN Encipherment Public Key certificate (table 14 layout, no static data)."""
    certificate, remainder = icc_certificate(pki.issuer, pin_rsa, b"", IccCertificateFields())
    data = Card(pki).data() | {0x9F2D: certificate, 0x9F2E: exponent_of(pin_rsa)}
    if remainder:
        data[0x9F2F] = remainder
    return data


def test_pin_key_is_the_icc_key_that_oda_recovered(pki: Pki) -> None:
    prepared = oda.prepare_cda(store(pki), Card(pki).data(), static(), Tvr(), TODAY)
    key = oda.recover_pin_key(store(pki), Card(pki).data(), static(), TODAY, known=prepared)
    assert key is prepared.icc_key


def test_pin_key_is_recovered_without_oda(pki: Pki) -> None:
    key = oda.recover_pin_key(store(pki), Card(pki).data(), static(), TODAY)
    assert key is not None and key.modulus == modulus_of(pki.icc) and key.exponent == exponent_of(pki.icc)
    # after SDA the issuer key is reused and the ICC key recovered over the same static data
    sda = oda.perform_sda(store(pki), Card(pki).data(), static(), Tvr(), TODAY)
    assert sda.ok and sda.icc_key is None
    after_sda = oda.recover_pin_key(CapkStore.of([]), Card(pki).data(), static(), TODAY, known=sda)
    assert after_sda is not None and after_sda.modulus == modulus_of(pki.icc)


def test_pin_key_prefers_the_pin_encipherment_key(pki: Pki, pin_rsa: rsa.RSAPrivateKey) -> None:
    card = with_pin_certificate(pki, pin_rsa)
    prepared = oda.prepare_cda(store(pki), card, static(), Tvr(), TODAY)
    for known in (prepared, None):
        key = oda.recover_pin_key(store(pki), card, static(), TODAY, known=known)
        assert key is not None and key.modulus == modulus_of(pin_rsa) and key.exponent == exponent_of(pin_rsa)
    # the PIN key certificate covers no static data: a card whose static data fails still has it
    failed_static = oda.StaticData(b"", oda.OdaFailure(Stage.STATIC_DATA, Check.TAG_LIST))
    assert oda.recover_pin_key(store(pki), card, failed_static, TODAY) is not None


def test_no_pin_key_is_none_and_sets_nothing(pki: Pki) -> None:
    card = Card(pki).data()
    assert oda.recover_pin_key(CapkStore.of([]), card, static(), TODAY) is None  # CA key not held
    assert oda.recover_pin_key(store(pki), card, oda.StaticData(b"other records"), TODAY) is None
    no_icc_certificate = {tag: value for tag, value in card.items() if tag != 0x9F46}
    assert oda.recover_pin_key(store(pki), no_icc_certificate, static(), TODAY) is None
    # a failed ODA result is no reason to fail differently: the same checks fail the same way
    sign = InternalAuthenticate(pki.icc)
    failed = oda.perform_dda(store(pki), card, b"other", sign, {0x9F37: UN}, Tvr(), TODAY)
    assert not failed.ok and oda.recover_pin_key(store(pki), card, b"other", TODAY, known=failed) is None


# --- robustness: card data of any shape is an outcome, never an exception --------

DATA_TAGS = [0x8F, 0x90, 0x92, 0x9F32, 0x93, 0x9F46, 0x9F47, 0x9F48, 0x9F49, 0x5A]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tag=st.sampled_from(DATA_TAGS), value=st.binary(max_size=260))
def test_any_single_data_object_gives_an_outcome(pki: Pki, tag: int, value: bytes) -> None:
    card = Card(pki).data() | {tag: value}
    for result in (
        oda.perform_sda(store(pki), card, static(), Tvr(), TODAY),
        oda.perform_dda(
            store(pki), card, static(), InternalAuthenticate(pki.icc), {0x9F37: UN}, Tvr(), TODAY
        ),
        oda.prepare_cda(store(pki), card, static(), Tvr(), TODAY),
    ):
        assert result.ok == (
            result.tvr_bits & (TvrBit.SDA_FAILED | TvrBit.DDA_FAILED | TvrBit.CDA_FAILED) == 0
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0, max_value=175), flip=st.integers(min_value=1, max_value=255))
def test_any_changed_certificate_byte_fails(pki: Pki, position: int, flip: int) -> None:
    card = Card(pki).data()
    certificate = bytearray(card[0x90])
    certificate[position] ^= flip
    card[0x90] = bytes(certificate)
    tvr = Tvr()
    result = oda.perform_sda(store(pki), card, static(), tvr, TODAY)
    assert result.failure is not None and result.failure.stage is Stage.ISSUER_CERTIFICATE
    assert TvrBit.SDA_FAILED in tvr


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(response=st.binary(max_size=300))
def test_any_generate_ac_response_gives_an_outcome(icc_key: oda.RecoveredKey, response: bytes) -> None:
    result = oda.verify_cda(icc_key, response, b"", CDOL1_DATA, UN)
    assert not result


def test_results_are_plain_values(pki: Pki) -> None:
    result = oda.perform_sda(store(pki), Card(pki).data(), static(), Tvr(), TODAY)
    assert replace(result, data_objects={}).ok
