"""Sign-on working keys: field 62 layouts, decryption under the TMK, KCV checks, all-or-nothing."""

from __future__ import annotations

import os
from pathlib import Path

import psec
import pytest

import firmware.keys.working_keys as working_keys_module
from firmware.errors import (
    CryptoError,
    KeyStoreError,
    MessageFieldError,
    MessageFormatError,
    VerificationError,
)
from firmware.keys.device import provision_device_key
from firmware.keys.store import KeyStore
from firmware.keys.working_keys import install_working_keys, parse_unionpay_field62

# Published (CSDN "MAC算法演示"): TMK, and the TAK (MAK) under it and in clear.
TMK = bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923")
MAK_UNDER_TMK = bytes.fromhex("96D605EA176B7E9E")
MAK = bytes.fromhex("C24A8FB57AA20123")
PIK = bytes.fromhex("F039121BEC83D26B169BDCD5B22AAF8F")
TDK = bytes.fromhex("3F419E1CB7079442AA37474C2EFBF8B8")


def host_encrypt(key: bytes) -> bytes:
    """What the host does, with psec: TDES-ECB under the TMK."""
    return bytes(psec.des.encrypt_tdes_ecb(TMK, key))


def host_kcv(key: bytes, length: int = 4) -> bytes:
    return bytes(psec.des.generate_kcv(key if len(key) != 8 else key * 2, length))


def field62(with_tdk: bool = False, mak_kcv: bytes | None = None) -> bytes:
    data = host_encrypt(PIK) + host_kcv(PIK)
    data += MAK_UNDER_TMK + bytes(8) + (mak_kcv if mak_kcv is not None else host_kcv(MAK))
    if with_tdk:
        data += host_encrypt(TDK) + host_kcv(TDK)
    return data


def install_legacy(store: KeyStore, keys: dict[str, tuple[bytes, bytes]]) -> None:
    """UnionPay's own layouts carry a single-length MAK: accepted only in the legacy mode."""
    install_working_keys(store, keys, allow_single_des=True)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    key_store = KeyStore(tmp_path / "keys", provision_device_key(tmp_path / "device.key", os.urandom))
    key_store.put("TMK", TMK, "tdes", 1)
    return key_store


def test_published_mak_decrypts_under_the_tmk(store: KeyStore) -> None:
    install_legacy(store, parse_unionpay_field62(field62()))
    assert store.get("MAK") == MAK
    assert store.get("PIK") == PIK
    assert "TDK" not in store


def test_sixty_byte_field_installs_the_track_key(store: KeyStore) -> None:
    keys = parse_unionpay_field62(field62(with_tdk=True))
    assert set(keys) == {"PIK", "MAK", "TDK"}
    install_legacy(store, keys)
    assert store.get("TDK") == TDK


def test_twenty_four_byte_single_length_layout(store: KeyStore) -> None:
    single_pik = bytes.fromhex("0123456789ABCDEF")
    data = host_encrypt(single_pik) + host_kcv(single_pik) + MAK_UNDER_TMK + host_kcv(MAK)
    keys = parse_unionpay_field62(data)
    assert keys["MAK"] == (MAK_UNDER_TMK, host_kcv(MAK))
    install_legacy(store, keys)
    assert store.get("PIK") == single_pik and store.get("MAK") == MAK


def test_double_length_mak_is_kept_whole() -> None:
    mak16 = bytes(range(1, 17))
    data = host_encrypt(PIK) + host_kcv(PIK) + host_encrypt(mak16) + host_kcv(mak16)
    assert parse_unionpay_field62(data)["MAK"][0] == host_encrypt(mak16)


def test_versions_count_up(store: KeyStore) -> None:
    install_legacy(store, parse_unionpay_field62(field62()))
    install_legacy(store, parse_unionpay_field62(field62()))
    assert {i.name: i.version for i in store.list()} == {"MAK": 2, "PIK": 2, "TMK": 1}


def test_wrong_kcv_keeps_the_old_keys(store: KeyStore) -> None:
    old_pik, old_mak = bytes.fromhex("1111111111111111" * 2), bytes.fromhex("2222222222222222")
    store.put("PIK", old_pik, "tdes", 7)
    store.put("MAK", old_mak, "tdes", 7)
    before = store.path.read_bytes()
    with pytest.raises(VerificationError, match="working key MAK"):
        install_legacy(store, parse_unionpay_field62(field62(mak_kcv=b"\x00\x00\x00\x00")))
    assert store.path.read_bytes() == before
    assert store.get("PIK") == old_pik and store.get("MAK") == old_mak
    assert store.info("PIK").version == 7



def test_wrong_kcv_error_names_the_key_but_not_the_computed_check_value(store: KeyStore) -> None:
    forged_pik = bytes(range(16))  # an attacker's ciphertext: its clear key is unknown to them
    sent_kcv = b"\x00\x00\x00\x00"
    computed = host_kcv(bytes(psec.des.decrypt_tdes_ecb(TMK, forged_pik)))
    with pytest.raises(VerificationError, match="working key PIK") as caught:
        install_legacy(store, {"PIK": (forged_pik, sent_kcv)})
    text = str(caught.value).upper()
    assert computed.hex().upper() not in text and computed[:3].hex().upper() not in text
    assert "PIK" not in store


def test_a_sign_on_replaces_the_whole_working_key_set(store: KeyStore) -> None:
    install_legacy(store, parse_unionpay_field62(field62(with_tdk=True), "004"))
    assert {i.name for i in store.list()} == {"TMK", "PIK", "MAK", "TDK"}
    install_legacy(store, parse_unionpay_field62(field62(), "003"))  # this session has no TDK
    assert {i.name: i.version for i in store.list()} == {"TMK": 1, "PIK": 2, "MAK": 2}
    assert store.get("MAK") == MAK and store.get("PIK") == PIK



def test_a_tmk_loaded_during_the_sign_on_gets_no_keys_decrypted_under_the_old_one(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_decrypt = working_keys_module._decrypt_and_check

    def decrypt_while_a_new_tmk_is_loaded(tmk: bytes, name: str, encrypted: bytes, kcv: bytes) -> bytes:
        store.put("TMK", bytes(range(16)), "tdes", 2)
        return real_decrypt(tmk, name, encrypted, kcv)

    monkeypatch.setattr(working_keys_module, "_decrypt_and_check", decrypt_while_a_new_tmk_is_loaded)
    with pytest.raises(KeyStoreError, match="TMK changed"):
        install_legacy(store, parse_unionpay_field62(field62()))
    assert {info.name for info in store.list()} == {"TMK"}

@pytest.mark.parametrize(
    ("scheme", "with_tdk"), [("003", True), ("004", False), ("001", False), ("001", True)]
)
def test_field62_length_must_be_the_one_of_the_requested_code(scheme: str, with_tdk: bool) -> None:
    with pytest.raises(MessageFieldError, match=f"for a {scheme} sign-on") as caught:
        parse_unionpay_field62(field62(with_tdk), scheme)
    assert caught.value.field == "62"


def test_field62_of_the_requested_length_parses() -> None:
    assert set(parse_unionpay_field62(field62(), "003")) == {"PIK", "MAK"}
    assert set(parse_unionpay_field62(field62(with_tdk=True), "004")) == {"PIK", "MAK", "TDK"}
    with pytest.raises(MessageFieldError):
        parse_unionpay_field62(field62(), "005")

def test_three_byte_kcv_is_accepted(store: KeyStore) -> None:
    install_legacy(store, {"MAK": (MAK_UNDER_TMK, host_kcv(MAK, 3))})
    assert store.get("MAK") == MAK


def test_without_tmk_says_what_to_do(tmp_path: Path) -> None:
    empty = KeyStore(tmp_path / "keys", provision_device_key(tmp_path / "device.key", os.urandom))
    with pytest.raises(KeyStoreError, match="load-tmk"):
        install_legacy(empty, parse_unionpay_field62(field62()))


@pytest.mark.parametrize("names", [{"TMK"}, {"PIK", "KEK"}])
def test_only_working_keys_may_be_installed(store: KeyStore, names: set[str]) -> None:
    with pytest.raises(CryptoError, match="may not install"):
        install_legacy(store, {name: (MAK_UNDER_TMK, host_kcv(MAK)) for name in names})
    assert store.get("TMK") == TMK


@pytest.mark.parametrize("length", [0, 20, 23, 41, 59, 61])
def test_bad_field62_length(length: int) -> None:
    with pytest.raises(MessageFormatError, match="field 62"):
        parse_unionpay_field62(bytes(length))


def test_bad_key_and_kcv_lengths(store: KeyStore) -> None:
    with pytest.raises(CryptoError, match="8 or 16"):
        install_legacy(store, {"MAK": (MAK_UNDER_TMK[:7], host_kcv(MAK))})
    with pytest.raises(CryptoError, match="checkvalue"):
        install_legacy(store, {"MAK": (MAK_UNDER_TMK, b"\x01\x02")})
    with pytest.raises(CryptoError, match="no working keys"):
        install_legacy(store, {})


def test_single_des_working_keys_are_refused_without_the_legacy_mode(store: KeyStore) -> None:
    with pytest.raises(CryptoError, match="MAK is single-length"):
        install_working_keys(store, parse_unionpay_field62(field62()))
    assert "MAK" not in store and "PIK" not in store


def test_equal_halves_are_single_des_and_refused(store: KeyStore) -> None:
    weak = PIK[:8] * 2
    with pytest.raises(CryptoError, match=r"PIK .*equal"):
        install_working_keys(store, {"PIK": (host_encrypt(weak), host_kcv(weak))})
    parity_only = bytes([PIK[0] ^ 1]) + PIK[1:8] + PIK[:8]  # halves that differ in a parity bit only
    with pytest.raises(CryptoError, match="equal"):
        install_working_keys(store, {"PIK": (host_encrypt(parity_only), host_kcv(parity_only))})
    install_working_keys(store, {"PIK": (host_encrypt(PIK), host_kcv(PIK))})  # a real double-length key
    assert store.get("PIK") == PIK
