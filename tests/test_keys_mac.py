"""MAC profiles against published vectors and against psec as an independent implementation."""

from __future__ import annotations

import psec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import ConfigError, CryptoError, VerificationError
from firmware.keys.mac import (
    MacProfile,
    aes_cmac,
    compute_mac,
    retail_mac_x919,
    unionpay_ecb_mac,
    verify_mac,
)

# ISO/IEC 9797-1:2011 Annex B.4: MAC algorithm 3, padding method 1, m = 32 bits.
X919_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@pytest.mark.parametrize(
    ("text", "mac32"),
    [(b"Now is the time for all ", "A1C72E74"), (b"Now is the time for it", "2E2B1428")],
)
def test_x919_iso9797_annex_b4(text: bytes, mac32: str) -> None:
    assert retail_mac_x919(X919_KEY, text)[:4].hex().upper() == mac32


def test_x919_dukpt_request_mac_from_x924_annex_a() -> None:
    # X9.24-1:2009 A.4.2, KSN FFFF9876543210E00001: MAC request key = transaction key
    # XOR 000000000000FF00 000000000000FF00, data "4012345678909D987" (moov-io/dukpt's table).
    key = bytes.fromhex("042666B49184CFA368DE9628D0397BC9")
    mac_key = bytes(a ^ b for a, b in zip(key, bytes.fromhex("000000000000FF00" * 2), strict=True))
    assert retail_mac_x919(mac_key, b"4012345678909D987").hex().upper() == "9CCC78173FC4FB64"


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), data=st.binary(min_size=1, max_size=200))
def test_x919_matches_psec(key: bytes, data: bytes) -> None:
    expected = psec.mac.generate_retail_mac(key[:8], key[8:], data, padding=1)
    assert retail_mac_x919(key, data) == expected


def test_x919_empty_data_is_one_zero_block() -> None:
    assert retail_mac_x919(X919_KEY, b"") == retail_mac_x919(X919_KEY, bytes(8))


# RFC 4493 section 4 / NIST SP 800-38B D.1 (AES-128).
RFC4493_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
RFC4493_MESSAGE = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    ("length", "tag"),
    [
        (0, "bb1d6929e95937287fa37d129b756746"),
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
        (40, "dfa66747de9ae63030ca32611497c827"),
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),
    ],
)
def test_aes_cmac_rfc4493(length: int, tag: str) -> None:
    assert aes_cmac(RFC4493_KEY, RFC4493_MESSAGE[:length]).hex() == tag
    assert compute_mac(MacProfile.AES_CMAC, RFC4493_KEY, RFC4493_MESSAGE[:length]).hex() == tag[:16]


# UnionPay ECB MAC. A worked example published on CSDN (zhu244912654, "MAC算法演示") gives the
# message, TMK, the TAK under TMK and in clear, and the running XOR of its first four blocks
# ("^M4"); its final MAC is not in the copy we could read.
UNIONPAY_MESSAGE = bytes.fromhex(
    "0200302004C020C0981100000000000000005100183402100006324392260009942820D13121011200843931"
    "36363838303134303030303030303030303030303031313536ACF46E73838A82F92600000000000000000822000001"
)
UNIONPAY_TAK = bytes.fromhex("C24A8FB57AA20123")

# cnblogs q/128930: a whole packed 0200 (2-byte length, TPDU 5, header 6, message, MAC as the
# last 8 bytes), its TAK, and the MAC the poster's host computed over it: "B3A092AE".
PUBLISHED_FRAME = bytes.fromhex(
    "007F600003000060321032007202003020048000C08015000000000000001234"
    "0000020300993030303030303031393532373138313832323137383735313536"
    "00192600000100060000000000435F0112323834343132333435363738393031"
    "3233345F03063136303033365F04063230303832365C02303142334130393241"
    "45"
)
PUBLISHED_FRAME_TAK = bytes.fromhex("0723C80DB5F4CD3D0723C80DB5F4CD3D")


def unionpay_reference(key: bytes, data: bytes) -> bytes:
    """The textual algorithm run on psec's primitives (pad_iso_1, xor, TDES ECB)."""
    padded = psec.mac.pad_iso_1(data, 8)
    folded = bytes(8)
    for offset in range(0, len(padded), 8):
        folded = psec.tools.xor(folded, padded[offset : offset + 8])
    expanded = folded.hex().upper().encode()
    key24 = key * 3 if len(key) == 8 else key + key[:8]
    first = psec.des.encrypt_tdes_ecb(key24, expanded[:8])
    second = psec.des.encrypt_tdes_ecb(key24, psec.tools.xor(first, expanded[8:]))
    return second.hex().upper().encode()[:8]


def test_unionpay_published_frame_mac() -> None:
    mac_block = PUBLISHED_FRAME[2 + 5 + 6 : -8]  # from the message type to the end of field 63
    assert unionpay_ecb_mac(PUBLISHED_FRAME_TAK, mac_block) == PUBLISHED_FRAME[-8:] == b"B3A092AE"
    assert compute_mac(MacProfile.UNIONPAY_ECB, PUBLISHED_FRAME_TAK[:8], mac_block) == b"B3A092AE"  # K = K'


def test_unionpay_published_example_steps() -> None:
    tak = psec.des.decrypt_tdes_ecb(
        bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923"), bytes.fromhex("96D605EA176B7E9E")
    )
    assert tak == UNIONPAY_TAK  # the published clear TAK
    # The MAC depends on the data only through the XOR of its blocks: the first four blocks must
    # give the MAC of the one block the example publishes as their running XOR ("^M4").
    of_published_m4 = unionpay_ecb_mac(UNIONPAY_TAK, bytes.fromhex("9A1753638ED222D9"))
    assert unionpay_ecb_mac(UNIONPAY_TAK, UNIONPAY_MESSAGE[:32]) == of_published_m4
    assert unionpay_ecb_mac(UNIONPAY_TAK, UNIONPAY_MESSAGE[:24]) != of_published_m4


def test_unionpay_whole_example_agrees_with_the_psec_built_reference() -> None:
    # A cross-check only: "8A9E91B8" is what the psec-built reference gives, not a published value.
    mac = unionpay_ecb_mac(UNIONPAY_TAK, UNIONPAY_MESSAGE)
    assert mac == unionpay_reference(UNIONPAY_TAK, UNIONPAY_MESSAGE) == b"8A9E91B8"
    assert compute_mac(MacProfile.UNIONPAY_ECB, UNIONPAY_TAK, UNIONPAY_MESSAGE) == mac


@settings(max_examples=40, deadline=None)
@given(
    key=st.one_of(st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16)),
    data=st.binary(max_size=120),
)
def test_unionpay_matches_psec_reference(key: bytes, data: bytes) -> None:
    mac = unionpay_ecb_mac(key, data)
    assert mac == unionpay_reference(key, data)
    assert len(mac) == 8 and all(c in b"0123456789ABCDEF" for c in mac)


def test_unionpay_single_length_equals_double_length_kk() -> None:
    assert unionpay_ecb_mac(UNIONPAY_TAK, b"abc") == unionpay_ecb_mac(UNIONPAY_TAK * 2, b"abc")


@pytest.mark.parametrize("profile", list(MacProfile))
def test_verify_accepts_own_mac_and_rejects_any_change(profile: MacProfile) -> None:
    key = bytes(range(16))
    data = b"0200 sale 000000012345"
    mac = compute_mac(profile, key, data)
    assert len(mac) == 8
    verify_mac(profile, key, data, mac)
    with pytest.raises(VerificationError, match=profile):
        verify_mac(profile, key, data + b"0", mac)
    with pytest.raises(VerificationError):
        verify_mac(profile, key, data, mac[:-1] + bytes([mac[-1] ^ 1]))
    with pytest.raises(VerificationError):
        verify_mac(profile, key, data, mac[:4])


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown MAC profile"):
        compute_mac("md5", bytes(16), b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("profile", "key_length"), [(MacProfile.UNIONPAY_ECB, 24), (MacProfile.X919, 8), (MacProfile.AES_CMAC, 8)]
)
def test_wrong_key_length_is_a_crypto_error(profile: MacProfile, key_length: int) -> None:
    with pytest.raises(CryptoError):
        compute_mac(profile, bytes(key_length), b"x")
