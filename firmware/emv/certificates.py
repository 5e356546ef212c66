"""Recovery and checking of the RSA-signed blocks of offline data authentication (EMV Book 2).

Pure functions over bytes. Every function returns either what it recovered
or an `OdaFailure` naming the stage and the check that failed; nothing here
raises for bad card data, because a card that fails a check is an outcome.

The blocks and the checks, each in the order of the book:

| block (tag) | recovered with | format | table | checks |
|---|---|---|---|---|
| Issuer PK certificate (90) | CA public key | 02 | Book 2 table 6 | 5.3 steps 1-12 |
| Signed Static Application Data (93) | issuer key | 03 | table 7 | 5.4 steps 1-8 |
| ICC PK certificate (9F46) | issuer key | 04 | table 14 | 6.4 steps 1-11 |
| Signed Dynamic Application Data (9F4B), DDA | ICC key | 05 | table 17 | 6.5.2 steps 1-8 |
| Signed Dynamic Application Data (9F4B), CDA | ICC key | 05 | tables 17, 19 | 6.6.2 steps 1-7 |

Every recovered block is: header '6A', format, fields, hash result (20
bytes, SHA-1 over everything from the format byte to the end of the
fields, followed by data that travels outside the block), trailer 'BC'.
"""

from __future__ import annotations

import calendar
import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from firmware.emv.capk import HASH_SHA1, KEY_RSA, CaPublicKey

__all__ = [
    "HEADER",
    "TRAILER",
    "CdaDynamicData",
    "Check",
    "OdaFailure",
    "RecoveredKey",
    "Stage",
    "certificate_expiry",
    "cn_digits",
    "recover_icc_key",
    "recover_issuer_key",
    "rsa_recover",
    "verify_cda_signature",
    "verify_dda_signature",
    "verify_signed_static_data",
]

HEADER = 0x6A
TRAILER = 0xBC
PAD = 0xBB
_HASH_LENGTH = 20

FORMAT_ISSUER_CERTIFICATE = 0x02
FORMAT_SIGNED_STATIC_DATA = 0x03
FORMAT_ICC_CERTIFICATE = 0x04
FORMAT_SIGNED_DYNAMIC_DATA = 0x05

# Fixed overhead of each block: header, fixed fields, hash, trailer (Book 2 tables 6, 14).
_ISSUER_CERTIFICATE_OVERHEAD = 36
_ICC_CERTIFICATE_OVERHEAD = 42


class Stage(enum.Enum):
    """Which part of offline data authentication failed."""

    CA_KEY = "CA public key"
    CARD_DATA = "card data"
    STATIC_DATA = "static data to be authenticated"
    ISSUER_CERTIFICATE = "issuer public key certificate"
    ICC_CERTIFICATE = "ICC public key certificate"
    SIGNED_STATIC_DATA = "signed static application data"
    DDOL = "dynamic data object list"
    INTERNAL_AUTHENTICATE = "INTERNAL AUTHENTICATE"
    SIGNED_DYNAMIC_DATA = "signed dynamic application data"
    GENERATE_AC = "GENERATE AC response"


class Check(enum.Enum):
    """The check that failed."""

    MISSING = "data object missing"
    NOT_HELD = "CA public key not held by the terminal"
    LENGTH = "length does not match the key modulus"
    NOT_BELOW_MODULUS = "value not below the key modulus"
    TRAILER = "recovered data trailer is not BC"
    HEADER = "recovered data header is not 6A"
    FORMAT = "wrong certificate or signed data format"
    HASH_ALGORITHM = "hash algorithm indicator is not 01 (SHA-1)"
    HASH = "hash result does not match"
    ISSUER_IDENTIFIER = "issuer identifier does not match the PAN"
    PAN = "certificate PAN does not match the application PAN"
    DATE = "certificate expiration date is not a valid MMYY"
    EXPIRED = "certificate expired"
    REVOKED = "certificate serial number is on the revocation list"
    KEY_ALGORITHM = "public key algorithm indicator is not 01 (RSA)"
    KEY_LENGTH = "public key length field is inconsistent"
    REMAINDER = "public key remainder has the wrong length"
    RECORD_TEMPLATE = "record read for offline data authentication is not coded as tag 70"
    TAG_LIST = "static data authentication tag list holds a tag other than 82"
    NO_DDOL = "neither the card nor the terminal has a DDOL"
    NO_UNPREDICTABLE_NUMBER = "the DDOL does not ask for the unpredictable number 9F37"
    STATUS_WORD = "the card refused the command"
    MALFORMED = "response is not well-formed"
    DYNAMIC_DATA = "ICC dynamic data field is inconsistent"
    CRYPTOGRAM_INFORMATION = "CID in the signature differs from the CID returned"
    TRANSACTION_DATA_HASH = "transaction data hash code does not match"


@dataclass(frozen=True)
class OdaFailure:
    """Why offline data authentication failed: where, which check, and a sentence for the log."""

    stage: Stage
    check: Check
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.stage.value}: {self.check.value}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class RecoveredKey:
    """An issuer or ICC public key recovered from its certificate."""

    modulus: bytes
    exponent: bytes
    expiry: date
    serial: bytes
    owner: bytes  # issuer identifier (issuer certificate) or PAN (ICC certificate), as certified
    hash_algorithm: int = HASH_SHA1
    key_algorithm: int = KEY_RSA

    @property
    def length(self) -> int:
        return len(self.modulus)


@dataclass(frozen=True)
class CdaDynamicData:
    """ICC dynamic data of a CDA signature (Book 2 table 19)."""

    icc_dynamic_number: bytes
    cryptogram_information_data: int
    application_cryptogram: bytes
    transaction_data_hash_code: bytes


def rsa_recover(modulus: bytes, exponent: bytes, block: bytes) -> bytes | None:
    """Apply the public key: block ^ e mod n. None when the block cannot be a signature for it."""
    if len(block) != len(modulus) or not modulus:
        return None
    value = int.from_bytes(block, "big")
    n = int.from_bytes(modulus, "big")
    if value >= n:
        return None
    return pow(value, int.from_bytes(exponent, "big"), n).to_bytes(len(modulus), "big")


def cn_digits(data: bytes) -> str | None:
    """The digits of a 'cn' field with its trailing F padding removed; None if not digits then F's."""
    text = data.hex().upper().rstrip("F")
    return text if text.isdigit() else None


def certificate_expiry(mmyy: bytes) -> date | None:
    """Last day of the month of a MMYY certificate expiration date (YY 00-49 is 20YY, 50-99 is 19YY)."""
    text = mmyy.hex()
    if len(mmyy) != 2 or not text.isdigit():
        return None
    month, year = int(text[:2]), int(text[2:])
    if not 1 <= month <= 12:
        return None
    year += 2000 if year < 50 else 1900
    return date(year, month, calendar.monthrange(year, month)[1])


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def _open_block(
    stage: Stage,
    modulus: bytes,
    exponent: bytes,
    block: bytes,
    expected_format: int,
    minimum_length: int,
) -> bytes | OdaFailure:
    """Steps common to every block: length, recovery, trailer, header, format."""
    if len(block) != len(modulus):
        return OdaFailure(stage, Check.LENGTH, f"{len(block)} bytes for a {len(modulus)}-byte key")
    if len(block) < minimum_length:
        return OdaFailure(stage, Check.LENGTH, f"{len(block)} bytes, at least {minimum_length} needed")
    recovered = rsa_recover(modulus, exponent, block)
    if recovered is None:
        return OdaFailure(stage, Check.NOT_BELOW_MODULUS)
    if recovered[-1] != TRAILER:
        return OdaFailure(stage, Check.TRAILER, f"trailer {recovered[-1]:02X}")
    if recovered[0] != HEADER:
        return OdaFailure(stage, Check.HEADER, f"header {recovered[0]:02X}")
    if recovered[1] != expected_format:
        return OdaFailure(stage, Check.FORMAT, f"format {recovered[1]:02X}, expected {expected_format:02X}")
    return recovered


def _check_hash(stage: Stage, recovered: bytes, algorithm: int, outside: bytes) -> OdaFailure | None:
    """Hash from the format byte to the end of the fields, followed by `outside`."""
    if algorithm != HASH_SHA1:
        return OdaFailure(stage, Check.HASH_ALGORITHM, f"indicator {algorithm:02X}")
    end = len(recovered) - 1 - _HASH_LENGTH
    if _sha1(recovered[1:end] + outside) != recovered[end:-1]:
        return OdaFailure(stage, Check.HASH)
    return None


def _key_modulus(
    stage: Stage,
    key_field: bytes,
    key_length: int,
    remainder: bytes | None,
) -> bytes | OdaFailure:
    """The modulus from the certified leftmost digits and, when the key does not fit, the remainder."""
    if key_length == 0:
        return OdaFailure(stage, Check.KEY_LENGTH, "public key length 0")
    if key_length <= len(key_field):
        return key_field[:key_length]
    missing = key_length - len(key_field)
    if remainder is None or len(remainder) != missing:
        got = 0 if remainder is None else len(remainder)
        return OdaFailure(stage, Check.REMAINDER, f"{got} bytes, {missing} expected")
    return key_field + remainder


def _check_expiry(stage: Stage, mmyy: bytes, today: date) -> date | OdaFailure:
    expiry = certificate_expiry(mmyy)
    if expiry is None:
        return OdaFailure(stage, Check.DATE, f"MMYY {mmyy.hex().upper()}")
    if expiry < today:
        return OdaFailure(stage, Check.EXPIRED, f"expired {expiry.isoformat()}, today {today.isoformat()}")
    return expiry


@dataclass(frozen=True)
class _KeyCertificate:
    """The fields of an issuer or ICC public key certificate (Book 2 tables 6 and 14)."""

    owner: bytes  # issuer identifier (4 bytes) or application PAN (10 bytes)
    expiry_field: bytes
    serial: bytes
    hash_algorithm: int
    key_algorithm: int
    key_length: int
    key_field: bytes  # the leftmost digits of the key, BB-padded when it fits


def _open_key_certificate(
    stage: Stage,
    signer_modulus: bytes,
    signer_exponent: bytes,
    certificate: bytes,
    expected_format: int,
    overhead: int,
    owner_length: int,
    remainder: bytes | None,
    remainder_name: str,
    hashed_after_remainder: bytes,
) -> _KeyCertificate | OdaFailure:
    """Steps shared by both key certificates: open the block, read its fields, check the hash.

    The hash covers the recovered fields, then the key remainder (when
    present), then `hashed_after_remainder` (the exponent, and for the ICC
    certificate the static data to be authenticated).
    """
    opened = _open_block(stage, signer_modulus, signer_exponent, certificate, expected_format, overhead + 1)
    if isinstance(opened, OdaFailure):
        return opened
    expiry_at = 2 + owner_length
    fields = _KeyCertificate(
        owner=opened[2:expiry_at],
        expiry_field=opened[expiry_at : expiry_at + 2],
        serial=opened[expiry_at + 2 : expiry_at + 5],
        hash_algorithm=opened[expiry_at + 5],
        key_algorithm=opened[expiry_at + 6],
        key_length=opened[expiry_at + 7],
        key_field=opened[expiry_at + 9 : len(opened) - 1 - _HASH_LENGTH],
    )
    if fields.key_length > len(fields.key_field) and remainder is None:
        return OdaFailure(Stage.CARD_DATA, Check.MISSING, f"{remainder_name} needed")
    failure = _check_hash(stage, opened, fields.hash_algorithm, (remainder or b"") + hashed_after_remainder)
    if failure:
        return failure
    return fields


def _certified_key(
    stage: Stage, fields: _KeyCertificate, expiry: date, remainder: bytes | None, exponent: bytes
) -> RecoveredKey | OdaFailure:
    """Last steps of both key certificates: the key algorithm, then the key itself."""
    if fields.key_algorithm != KEY_RSA:
        return OdaFailure(stage, Check.KEY_ALGORITHM, f"indicator {fields.key_algorithm:02X}")
    modulus = _key_modulus(stage, fields.key_field, fields.key_length, remainder)
    if isinstance(modulus, OdaFailure):
        return modulus
    return RecoveredKey(
        modulus, exponent, expiry, fields.serial, fields.owner, fields.hash_algorithm, fields.key_algorithm
    )


def recover_issuer_key(
    ca_key: CaPublicKey,
    certificate: bytes,
    remainder: bytes | None,
    exponent: bytes,
    pan: bytes,
    today: date,
    is_revoked: Callable[[bytes], bool] = lambda serial: False,
) -> RecoveredKey | OdaFailure:
    """Book 2 section 5.3: the issuer public key from its certificate (tag 90).

    `remainder` is tag 92 (None when absent), `exponent` tag 9F32, `pan` tag 5A.
    `is_revoked(serial)` answers for (this CA's RID and index, serial).
    """
    stage = Stage.ISSUER_CERTIFICATE
    fields = _open_key_certificate(
        stage,
        ca_key.modulus,
        ca_key.exponent,
        certificate,
        FORMAT_ISSUER_CERTIFICATE,
        _ISSUER_CERTIFICATE_OVERHEAD,
        owner_length=4,
        remainder=remainder,
        remainder_name="issuer public key remainder (92)",
        hashed_after_remainder=exponent,
    )
    if isinstance(fields, OdaFailure):
        return fields
    identifier = cn_digits(fields.owner)
    pan_digits = cn_digits(pan)
    if identifier is None or pan_digits is None or not 3 <= len(identifier) <= 8:
        return OdaFailure(stage, Check.ISSUER_IDENTIFIER, "not 3 to 8 digits padded with F")
    if not pan_digits.startswith(identifier):
        return OdaFailure(stage, Check.ISSUER_IDENTIFIER, "PAN does not begin with the issuer identifier")
    expiry = _check_expiry(stage, fields.expiry_field, today)
    if isinstance(expiry, OdaFailure):
        return expiry
    if is_revoked(fields.serial):
        return OdaFailure(stage, Check.REVOKED, f"{ca_key.name} serial {fields.serial.hex().upper()}")
    return _certified_key(stage, fields, expiry, remainder, exponent)


def recover_icc_key(
    issuer_key: RecoveredKey,
    certificate: bytes,
    remainder: bytes | None,
    exponent: bytes,
    pan: bytes,
    static_data: bytes,
    today: date,
) -> RecoveredKey | OdaFailure:
    """Book 2 section 6.4: the ICC public key from its certificate (tag 9F46).

    `remainder` is tag 9F48 (None when absent), `exponent` tag 9F47, `pan`
    tag 5A; the hash also covers the static data to be authenticated.
    """
    stage = Stage.ICC_CERTIFICATE
    fields = _open_key_certificate(
        stage,
        issuer_key.modulus,
        issuer_key.exponent,
        certificate,
        FORMAT_ICC_CERTIFICATE,
        _ICC_CERTIFICATE_OVERHEAD,
        owner_length=10,
        remainder=remainder,
        remainder_name="ICC public key remainder (9F48)",
        hashed_after_remainder=exponent + static_data,
    )
    if isinstance(fields, OdaFailure):
        return fields
    certified_digits = cn_digits(fields.owner)
    if certified_digits is None or certified_digits != cn_digits(pan):
        return OdaFailure(stage, Check.PAN)
    expiry = _check_expiry(stage, fields.expiry_field, today)
    if isinstance(expiry, OdaFailure):
        return expiry
    return _certified_key(stage, fields, expiry, remainder, exponent)


def _open_signed_data(
    stage: Stage,
    key: RecoveredKey,
    block: bytes,
    expected_format: int,
    minimum_length: int,
    signed_outside: bytes,
) -> bytes | OdaFailure:
    """Signed static or dynamic data (SDA, DDA): open the block, then check its hash.

    The hash algorithm indicator is byte 2 of both formats; the hash covers
    the fields and then `signed_outside` (the static data, or the DDOL data).
    """
    opened = _open_block(stage, key.modulus, key.exponent, block, expected_format, minimum_length)
    if isinstance(opened, OdaFailure):
        return opened
    failure = _check_hash(stage, opened, opened[2], signed_outside)
    if failure:
        return failure
    return opened


def verify_signed_static_data(
    issuer_key: RecoveredKey,
    signed_static_data: bytes,
    static_data: bytes,
) -> bytes | OdaFailure:
    """Book 2 section 5.4: check tag 93; returns the Data Authentication Code (9F45)."""
    opened = _open_signed_data(
        Stage.SIGNED_STATIC_DATA, issuer_key, signed_static_data, FORMAT_SIGNED_STATIC_DATA, 26, static_data
    )
    if isinstance(opened, OdaFailure):
        return opened
    return opened[3:5]


def _dynamic_data(stage: Stage, recovered: bytes) -> bytes | OdaFailure:
    """The ICC Dynamic Data field (Book 2 table 17) of a recovered format 05 block."""
    length = recovered[3]
    end_of_fields = len(recovered) - 1 - _HASH_LENGTH
    if 4 + length > end_of_fields:
        return OdaFailure(stage, Check.DYNAMIC_DATA, f"length {length} runs into the hash")
    dynamic = recovered[4 : 4 + length]
    if not dynamic or not 2 <= dynamic[0] <= 8 or 1 + dynamic[0] > len(dynamic):
        return OdaFailure(stage, Check.DYNAMIC_DATA, "ICC dynamic number length not 2 to 8")
    return dynamic


def verify_dda_signature(
    icc_key: RecoveredKey,
    signed_dynamic_data: bytes,
    ddol_data: bytes,
) -> bytes | OdaFailure:
    """Book 2 section 6.5.2: check the INTERNAL AUTHENTICATE signature; returns the ICC Dynamic Number."""
    stage = Stage.SIGNED_DYNAMIC_DATA
    opened = _open_signed_data(
        stage, icc_key, signed_dynamic_data, FORMAT_SIGNED_DYNAMIC_DATA, 25 + 3, ddol_data
    )
    if isinstance(opened, OdaFailure):
        return opened
    dynamic = _dynamic_data(stage, opened)
    if isinstance(dynamic, OdaFailure):
        return dynamic
    return dynamic[1 : 1 + dynamic[0]]


def verify_cda_signature(
    icc_key: RecoveredKey,
    signed_dynamic_data: bytes,
    unpredictable_number: bytes,
    cryptogram_information_data: int,
) -> CdaDynamicData | OdaFailure:
    """Book 2 section 6.6.2 steps 1-7: check a CDA signature; returns its ICC dynamic data.

    `cryptogram_information_data` is the CID (9F27) the card returned in the
    clear beside the signature (step 5). The caller checks the transaction
    data hash code (step 8), see `firmware.emv.oda.verify_cda`.
    """
    stage = Stage.SIGNED_DYNAMIC_DATA
    opened = _open_block(
        stage,
        icc_key.modulus,
        icc_key.exponent,
        signed_dynamic_data,
        FORMAT_SIGNED_DYNAMIC_DATA,
        25 + 32,
    )
    if isinstance(opened, OdaFailure):
        return opened
    dynamic = _dynamic_data(stage, opened)
    if isinstance(dynamic, OdaFailure):
        return dynamic
    idn_length = dynamic[0]
    if len(dynamic) < 1 + idn_length + 1 + 8 + _HASH_LENGTH:
        return OdaFailure(
            stage, Check.DYNAMIC_DATA, f"{len(dynamic)} bytes cannot hold CID, AC and hash code"
        )
    position = 1 + idn_length
    if dynamic[position] != cryptogram_information_data:
        return OdaFailure(
            Stage.GENERATE_AC,
            Check.CRYPTOGRAM_INFORMATION,
            f"signed {dynamic[position]:02X}, returned {cryptogram_information_data:02X}",
        )
    failure = _check_hash(stage, opened, opened[2], unpredictable_number)
    if failure:
        return failure
    return CdaDynamicData(
        icc_dynamic_number=dynamic[1:position],
        cryptogram_information_data=dynamic[position],
        application_cryptogram=dynamic[position + 1 : position + 9],
        transaction_data_hash_code=dynamic[position + 9 : position + 9 + _HASH_LENGTH],
    )
