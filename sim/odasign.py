"""EMV RSA data formats the issuer and the card produce (EMV Book 2).

Pure functions: issuer and ICC public key certificates (Book 2 tables 6 and
14), signed static application data (table 7), signed dynamic application
data for DDA and CDA (tables 17 and 22), the static data to be authenticated
(Book 3 10.3), the CA key checksum, and the raw RSA the card uses to sign and
to decipher an enciphered PIN. Recovery format: header 6A, trailer BC, SHA-1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from sim.errors import PkiError

__all__ = [
    "HEADER",
    "TRAILER",
    "PublicKeyCertificate",
    "ca_key_checksum",
    "cda_dynamic_data",
    "exponent_bytes",
    "icc_certificate",
    "issuer_certificate",
    "issuer_identifier",
    "modulus_bytes",
    "rsa_private_raw",
    "rsa_public_raw",
    "sha1",
    "signed_dynamic_data",
    "signed_static_data",
    "static_data_to_authenticate",
]

HEADER = 0x6A
TRAILER = 0xBC
PAD = 0xBB
HASH_SHA1 = 0x01
PK_ALGO_RSA = 0x01
FORMAT_ISSUER_CERT = 0x02
FORMAT_SSAD = 0x03
FORMAT_ICC_CERT = 0x04
FORMAT_SDAD = 0x05


def sha1(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - EMV Book 2 mandates SHA-1
    digest.update(data)
    return digest.finalize()


def modulus_bytes(numbers: rsa.RSAPublicNumbers) -> bytes:
    return numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")


def exponent_bytes(numbers: rsa.RSAPublicNumbers) -> bytes:
    return numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")


def rsa_private_raw(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """Textbook RSA with the private key (CRT), output as long as the modulus."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    size = (n.bit_length() + 7) // 8
    m = int.from_bytes(block, "big")
    if len(block) != size or m >= n:
        raise PkiError(f"block of {len(block)} bytes does not fit a {size}-byte modulus")
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def rsa_public_raw(numbers: rsa.RSAPublicNumbers, block: bytes) -> bytes:
    size = (numbers.n.bit_length() + 7) // 8
    value = int.from_bytes(block, "big")
    if len(block) != size or value >= numbers.n:
        raise PkiError(f"block of {len(block)} bytes does not fit a {size}-byte modulus")
    return pow(value, numbers.e, numbers.n).to_bytes(size, "big")


def _seal(key: rsa.RSAPrivateKey, body: bytes, hashed_extra: bytes) -> bytes:
    """6A || body || SHA-1(body || extra) || BC, signed with `key`."""
    return rsa_private_raw(key, bytes([HEADER]) + body + sha1(body + hashed_extra) + bytes([TRAILER]))


def _key_size(key: rsa.RSAPrivateKey) -> int:
    return (key.key_size + 7) // 8


@dataclass(frozen=True)
class PublicKeyCertificate:
    certificate: bytes
    remainder: bytes
    exponent: bytes


def _bcd_pan(pan: str, length: int) -> bytes:
    digits = pan + "F" * (2 * length - len(pan))
    if len(digits) != 2 * length or not pan.isdigit():
        raise PkiError(f"PAN of {len(pan)} digits does not fit {length} bytes")
    return bytes.fromhex(digits)


def issuer_identifier(pan: str, digits: int = 6) -> bytes:
    """Leftmost 3-8 PAN digits padded with F to 4 bytes (Book 2 table 6)."""
    if not 3 <= digits <= 8:
        raise PkiError(f"issuer identifier of {digits} digits; EMV allows 3 to 8")
    return _bcd_pan(pan[:digits], 4)


def _split_modulus(modulus: bytes, room: int) -> tuple[bytes, bytes]:
    if len(modulus) <= room:
        return modulus + bytes([PAD]) * (room - len(modulus)), b""
    return modulus[:room], modulus[room:]


def issuer_certificate(
    ca_key: rsa.RSAPrivateKey,
    issuer_public: rsa.RSAPublicNumbers,
    issuer_id: bytes,
    expiry_mmyy: bytes,
    serial: bytes,
) -> PublicKeyCertificate:
    """Issuer Public Key Certificate (format 02) signed by the CA."""
    n_ca = _key_size(ca_key)
    modulus, exponent = modulus_bytes(issuer_public), exponent_bytes(issuer_public)
    if len(modulus) > n_ca:
        raise PkiError(f"issuer modulus of {len(modulus)} bytes is longer than the CA's {n_ca}")
    leftmost, remainder = _split_modulus(modulus, n_ca - 36)
    body = (
        bytes([FORMAT_ISSUER_CERT])
        + _fixed(issuer_id, 4, "issuer identifier")
        + _fixed(expiry_mmyy, 2, "expiry")
        + _fixed(serial, 3, "serial number")
        + bytes([HASH_SHA1, PK_ALGO_RSA, len(modulus), len(exponent)])
        + leftmost
    )
    return PublicKeyCertificate(_seal(ca_key, body, remainder + exponent), remainder, exponent)


def icc_certificate(
    issuer_key: rsa.RSAPrivateKey,
    icc_public: rsa.RSAPublicNumbers,
    pan: str,
    expiry_mmyy: bytes,
    serial: bytes,
    static_data: bytes,
) -> PublicKeyCertificate:
    """ICC Public Key Certificate (format 04), covering the static data to be authenticated."""
    n_i = _key_size(issuer_key)
    modulus, exponent = modulus_bytes(icc_public), exponent_bytes(icc_public)
    if len(modulus) > n_i:
        raise PkiError(f"ICC modulus of {len(modulus)} bytes is longer than the issuer's {n_i}")
    leftmost, remainder = _split_modulus(modulus, n_i - 42)
    body = (
        bytes([FORMAT_ICC_CERT])
        + _bcd_pan(pan, 10)
        + _fixed(expiry_mmyy, 2, "expiry")
        + _fixed(serial, 3, "serial number")
        + bytes([HASH_SHA1, PK_ALGO_RSA, len(modulus), len(exponent)])
        + leftmost
    )
    return PublicKeyCertificate(
        _seal(issuer_key, body, remainder + exponent + static_data), remainder, exponent
    )


def signed_static_data(issuer_key: rsa.RSAPrivateKey, dac: bytes, static_data: bytes) -> bytes:
    """Signed Static Application Data (format 03, tag 93) with the Data Authentication Code."""
    n_i = _key_size(issuer_key)
    body = bytes([FORMAT_SSAD, HASH_SHA1]) + _fixed(dac, 2, "DAC") + bytes([PAD]) * (n_i - 26)
    return _seal(issuer_key, body, static_data)


def signed_dynamic_data(
    icc_key: rsa.RSAPrivateKey, icc_dynamic_data: bytes, terminal_dynamic_data: bytes
) -> bytes:
    """Signed Dynamic Application Data (format 05, tag 9F4B); the terminal data is hashed, not sent."""
    n_ic = _key_size(icc_key)
    pad = n_ic - len(icc_dynamic_data) - 25
    if pad < 0:
        raise PkiError(f"{len(icc_dynamic_data)} bytes of ICC dynamic data do not fit a {n_ic}-byte key")
    body = bytes([FORMAT_SDAD, HASH_SHA1, len(icc_dynamic_data)]) + icc_dynamic_data + bytes([PAD]) * pad
    return _seal(icc_key, body, terminal_dynamic_data)


def cda_dynamic_data(icc_dynamic_number: bytes, cid: int, ac: bytes, transaction_data_hash: bytes) -> bytes:
    """ICC Dynamic Data for CDA (Book 2 table 17)."""
    if not 2 <= len(icc_dynamic_number) <= 8:
        raise PkiError(f"ICC dynamic number of {len(icc_dynamic_number)} bytes; EMV allows 2 to 8")
    return (
        bytes([len(icc_dynamic_number)])
        + icc_dynamic_number
        + bytes([cid])
        + _fixed(ac, 8, "application cryptogram")
        + _fixed(transaction_data_hash, 20, "transaction data hash code")
    )


def static_data_to_authenticate(
    oda_records: Iterable[tuple[int, bytes]], aip: bytes, sda_tag_list: bytes | None
) -> bytes:
    """Book 3 10.3: records of SFI 1-10 without their 70 template, others whole; then the AIP if listed.

    `oda_records` are (SFI, record as read) in AFL order. A record of SFI 1-10
    must be a '70' template of short or 81/82 length form.
    """
    parts: list[bytes] = []
    for sfi, record in oda_records:
        if sfi <= 10:
            parts.append(_template_value(record, sfi))
        else:
            parts.append(record)
    if sda_tag_list is not None:
        if sda_tag_list != b"\x82":
            raise PkiError(f"SDA tag list {sda_tag_list.hex().upper()}: EMV allows only '82' (AIP)")
        parts.append(aip)
    return b"".join(parts)


def _template_value(record: bytes, sfi: int) -> bytes:
    if len(record) < 2 or record[0] != 0x70:
        raise PkiError(f"record of SFI {sfi} is not a '70' template")
    first = record[1]
    if first < 0x80:
        start, length = 2, first
    elif first == 0x81:
        start, length = 3, record[2]
    elif first == 0x82:
        start, length = 4, int.from_bytes(record[2:4], "big")
    else:
        raise PkiError(f"record of SFI {sfi} has length form {first:02X}")
    if start + length != len(record):
        raise PkiError(f"record of SFI {sfi}: template length {length} does not match the record")
    return record[start:]


def ca_key_checksum(rid: bytes, index: int, numbers: rsa.RSAPublicNumbers) -> bytes:
    """Certification Authority Public Key Check Sum: SHA-1(RID || index || modulus || exponent)."""
    return sha1(rid + bytes([index]) + modulus_bytes(numbers) + exponent_bytes(numbers))


def _fixed(value: bytes, length: int, name: str) -> bytes:
    if len(value) != length:
        raise PkiError(f"{name} must be {length} bytes, got {len(value)}")
    return value
