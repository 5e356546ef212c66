"""Key check values against published values.

TDES/AES KCVs: the key check values printed with the TR-31:2018 Annex A.7
examples, the ANSI X9.143:2021 8.1 example (5-byte AES KCV) and Thales
payShield-generated blocks, as collected in openemv/tr31's test suite.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.errors import CryptoError
from firmware.keys.kcv import kcv_aes, kcv_ed25519, kcv_for, kcv_hex, kcv_tdes

TDES_KCVS = [
    ("F039121BEC83D26B169BDCD5B22AAF8F", "CB9DEA"),  # TR-31:2018 A.7.2.1
    ("3F419E1CB7079442AA37474C2EFBF8B8", "57C409"),  # TR-31:2018 A.7.2.2
    ("EDB380DD340BC2620247D445F5B8D678", "F4B08D"),  # TR-31:2018 A.7.3.1
    ("E8BC63E5479455E26577F715D587FE68", "9A4212"),  # TR-31:2018 A.7.3.2
    ("5DB50B454F8389ADCE573BE50861F2BF", "5C9405"),  # payShield 10k K0 block
    ("1FA1F7CEC798D91545DA8AE0C7796BD9", "FF5087"),  # payShield 10k B0 (TDES) in a D block
]

AES_KCVS = [
    ("3F419E1CB7079442AA37474C2EFBF8B8", "08793E"),  # TR-31:2018 A.7.4
    ("3F419E1CB7079442AA37474C2EFBF8B8", "08793E25AB"),  # X9.143:2021 8.1 (5 bytes)
    ("BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC", "0A00E3"),  # payShield D0
]


@pytest.mark.parametrize(("key", "kcv"), TDES_KCVS)
def test_tdes_kcv_matches_published(key: str, kcv: str) -> None:
    assert kcv_tdes(bytes.fromhex(key)).hex().upper() == kcv
    assert kcv_hex("tdes", bytes.fromhex(key)) == kcv


@pytest.mark.parametrize(("key", "kcv"), AES_KCVS)
def test_aes_kcv_matches_published(key: str, kcv: str) -> None:
    assert kcv_aes(bytes.fromhex(key), len(kcv) // 2).hex().upper() == kcv


def test_single_length_des_kcv_is_the_double_length_kcv_of_kk() -> None:
    # A single-length key K behaves as double-length K||K (TDES EDE degenerates to DES).
    key = bytes.fromhex("C24A8FB57AA20123")
    assert kcv_tdes(key, 4) == kcv_tdes(key + key, 4)
    assert kcv_tdes(key, 4) != kcv_tdes(key + bytes(8), 4)


def test_ed25519_check_value_is_sha256_of_public_key() -> None:
    private = bytes(range(32))
    public = (
        Ed25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert kcv_ed25519(private) == hashlib.sha256(public).digest()[:3]
    assert kcv_for("ed25519", private) == kcv_ed25519(private)


@pytest.mark.parametrize(
    ("kind", "key", "length"),
    [("tdes", bytes(7), 3), ("aes", bytes(15), 3), ("tdes", bytes(16), 9), ("rsa", bytes(16), 3)],
)
def test_bad_kcv_requests_raise_crypto_error(kind: str, key: bytes, length: int) -> None:
    with pytest.raises(CryptoError):
        kcv_for(kind, key, length)
