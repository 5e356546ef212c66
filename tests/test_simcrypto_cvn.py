"""The per-CVN layer (sim/cvn.py) against pyemv's CVN classes and published values.

Expected values come from pyemv's HSM-checked tests (tests/test_cvn_hsm.py of
github.com/knovichikhin/pyemv), a published PBOC worked example, and pyemv's
CVN classes run live; never from this code's output.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyemv import cvn as pyemv_cvn

from sim import cvn, emvcrypto

h = bytes.fromhex

HSM_KEYS = {
    "imk_ac": "0123456789ABCDEFFEDCBA9876543210",
    "imk_smi": "FEDCBA98765432100123456789ABCDEF",
    "imk_smc": "89ABCDEF0123456776543210FEDCBA98",
}
TERMINAL = {
    0x9F02: h("000000004000"),
    0x9F03: h("000000000000"),
    0x9F1A: h("0124"),
    0x95: h("8000048000"),
    0x5F2A: h("0124"),
    0x9A: h("191105"),
    0x9C: h("01"),
    0x9F37: h("52BF4585"),
}


def config(cvn_number: int, **extra: object) -> cvn.CryptoConfig:
    return cvn.CryptoConfig.from_mapping({"cvn": cvn_number, **HSM_KEYS, **extra})


def test_visa_cvn10_hsm_values() -> None:
    cfg = config(10)
    keys = cvn.derive_card_keys(cfg, "1234567890123456", 0)
    assert [emvcrypto.key_check_value(k, 2).hex().upper() for k in (keys.ac, keys.smi, keys.smc)] == [
        "BAB0",
        "F010",
        "B154",
    ]
    iad = h("06010A03A06010")
    assert cvn.build_iad(cfg, h("03A06010")) == iad
    arqc = cvn.compute_cryptogram(cfg, keys, TERMINAL, h("1800"), 0x1C, iad)
    assert arqc == h("29CCA15AE665FA2E")
    auth = cvn.make_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=0x1C, unpredictable_number=TERMINAL[0x9F37], response_code="00"
    )
    assert auth == h("28993816AFAE4AEB") + b"00"
    smi, smc = cvn.sm_session_keys(cfg, keys, atc=0x1C, arqc=arqc, index=0)
    assert emvcrypto.key_check_value(smi, 2) == h("DB10")
    assert emvcrypto.key_check_value(smc, 2) == h("6D04")
    mac = cvn.script_command_mac(cfg, smi, header=h("8418000008"), atc=0x1C, cryptogram=arqc, data=b"")
    assert mac == h("DB56BA60087CEFD3")
    header = h("8424000218")
    enciphered = cvn.encipher_pin(cfg, keys, smc, "9999", None)
    command = (
        header
        + enciphered
        + cvn.script_command_mac(cfg, smi, header=header, atc=0x1C, cryptogram=arqc, data=enciphered)
    )
    assert command == h("8424000218BB221AF527377A2811D2B6EBC396A9391A965A5CB2CE62DA")
    assert cvn.decipher_pin(cfg, keys, smc, enciphered, None) == "9999"


def test_visa_cvn18_hsm_values() -> None:
    cfg = config(18)
    assert cfg.mk_derivation == "B" and cfg.arpc_method == 2
    keys = cvn.derive_card_keys(cfg, "1234567890123456", 0)
    iad = h("06011203A0B800")
    assert iad[:4] == cvn.build_iad(cfg, h("03A0B800"))[:4]
    arqc = cvn.compute_cryptogram(cfg, keys, TERMINAL, h("1800"), 0x1C, iad)
    assert arqc == h("7A788EA6B8A3E733")
    auth = cvn.make_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=0x1C, unpredictable_number=TERMINAL[0x9F37], response_code="05"
    )
    assert auth == h("9AF514C1") + h("00000000")  # declined: CSU without the approval bit
    smi, smc = cvn.sm_session_keys(cfg, keys, atc=0x1C, arqc=arqc, index=0)
    assert cvn.script_command_mac(cfg, smi, header=h("8418000008"), atc=0x1C, cryptogram=arqc, data=b"") == h(
        "04EDE90BC24CC35E"
    )
    header = h("8424000118")
    enciphered = cvn.encipher_pin(cfg, keys, smc, "9999", "8888")
    command = (
        header
        + enciphered
        + cvn.script_command_mac(cfg, smi, header=header, atc=0x1C, cryptogram=arqc, data=enciphered)
    )
    assert command == h("84240001182EE025E554BCD87E11D2B6EBC396A9390FB94A4E4EC10F41")
    assert cvn.decipher_pin(cfg, keys, smc, enciphered, "8888") == "9999"


def test_pboc_cvn01_published_example() -> None:
    cfg = cvn.CryptoConfig.from_mapping(
        {
            "cvn": 1,
            "imk_ac": "F0C34A8124CEE0A91A0B034AA97D6EAC",
            "imk_smi": "12B1AC4AF070CC35612BFE2D30AB600D",
            "imk_smc": "D30F45EABC12AC3EF56B0C0D7F8654DE",
            "dki": 0,
        }
    )
    keys = cvn.derive_card_keys(cfg, "6228000100001", 1)
    terminal = {
        0x9F02: h("000000000001"),
        0x9F03: h("000000000000"),
        0x9F1A: h("0156"),
        0x95: h("0080046000"),
        0x5F2A: h("0156"),
        0x9A: h("140701"),
        0x9C: h("00"),
        0x9F37: h("1E78EEBC"),
    }
    iad = h("07000103A04002010A010000001000D1F61152")
    assert cvn.iad_cvn(cfg.version, iad) == 1
    assert cvn.build_iad(cfg, h("03A04002")) == iad[:8]
    arqc = cvn.compute_cryptogram(cfg, keys, terminal, h("7D00"), 0x0240, iad)
    assert arqc == h("5D016C91005E7CC2")
    auth = cvn.make_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=0x0240, unpredictable_number=terminal[0x9F37], response_code="01"
    )
    assert auth == h("21415243527CE78F") + b"01"


# --- live agreement with pyemv's CVN classes ------------------------------------------

pans = st.text(alphabet="0123456789", min_size=13, max_size=19)
psns = st.integers(min_value=0, max_value=99)
atcs = st.integers(min_value=0, max_value=0xFFFF)
b = st.binary
terminal_values = st.fixed_dictionaries({tag: b(min_size=n, max_size=n) for tag, n in cvn.TERMINAL_AC_TAGS})
cvr4 = b(min_size=3, max_size=3).map(lambda x: b"\x03" + x)


def _pyemv_card(cls: type, pan: str, psn: int) -> Any:
    imks = [h(HSM_KEYS[name]) for name in ("imk_ac", "imk_smi", "imk_smc")]
    return cls(*imks, pan, f"{psn:02d}")


def _kw(terminal: dict[int, bytes], aip: bytes, atc: int) -> dict[str, bytes]:
    return {
        "tag_9f02": terminal[0x9F02],
        "tag_9f03": terminal[0x9F03],
        "tag_9f1a": terminal[0x9F1A],
        "tag_95": terminal[0x95],
        "tag_5f2a": terminal[0x5F2A],
        "tag_9a": terminal[0x9A],
        "tag_9c": terminal[0x9C],
        "tag_9f37": terminal[0x9F37],
        "tag_82": aip,
        "tag_9f36": atc.to_bytes(2, "big"),
    }


@settings(max_examples=25, deadline=None)
@given(pan=pans, psn=psns, atc=atcs, terminal=terminal_values, aip=b(min_size=2, max_size=2), cvr=cvr4)
def test_visa_cryptograms_agree_with_pyemv(
    pan: str, psn: int, atc: int, terminal: dict[int, bytes], aip: bytes, cvr: bytes
) -> None:
    for number, cls in ((10, pyemv_cvn.VisaCVN10), (18, pyemv_cvn.VisaCVN18)):
        cfg = config(number)
        keys = cvn.derive_card_keys(cfg, pan, psn)
        card = _pyemv_card(cls, pan, psn)
        iad = cvn.build_iad(cfg, cvr)
        mine = cvn.compute_cryptogram(cfg, keys, terminal, aip, atc, iad)
        if number == 10:
            theirs = card.generate_ac(**_kw(terminal, aip, atc), cvr=cvr)
            arpc = card.generate_arpc(mine, b"00")
            assert (
                cvn.make_issuer_authentication_data(
                    cfg, keys, arqc=mine, atc=atc, unpredictable_number=terminal[0x9F37], response_code="00"
                )
                == arpc + b"00"
            )
        else:
            theirs = card.generate_ac(**_kw(terminal, aip, atc), tag_9f10=iad)
            csu = h("00800000")
            arpc = card.generate_arpc(mine, atc.to_bytes(2, "big"), csu)
            assert (
                cvn.make_issuer_authentication_data(
                    cfg, keys, arqc=mine, atc=atc, unpredictable_number=terminal[0x9F37], response_code="00"
                )
                == arpc + csu
            )
        assert mine == theirs
        smi, smc = cvn.sm_session_keys(cfg, keys, atc=atc, arqc=mine, index=3)
        header = h("8424000218")
        enciphered = cvn.encipher_pin(cfg, keys, smc, "2468", None)
        ac_3 = cvn.sm_cryptogram(cfg.version, mine, 3)
        mac = cvn.script_command_mac(cfg, smi, header=header, atc=atc, cryptogram=ac_3, data=enciphered)
        command = header + enciphered + mac
        assert command == card.generate_pin_change_command("2468", mine, atc.to_bytes(2, "big"))


@settings(max_examples=25, deadline=None)
@given(
    pan=pans,
    psn=psns,
    atc=atcs,
    terminal=terminal_values,
    aip=b(min_size=2, max_size=2),
    cvr=b(min_size=6, max_size=6),
    counters=b(min_size=8, max_size=8),
    index=st.integers(0, 5),
)
def test_mchip_cryptograms_agree_with_pyemv(
    pan: str,
    psn: int,
    atc: int,
    terminal: dict[int, bytes],
    aip: bytes,
    cvr: bytes,
    counters: bytes,
    index: int,
) -> None:
    for number, cls in ((16, pyemv_cvn.MasterCardCVN16), (17, pyemv_cvn.MasterCardCVN17)):
        cfg = config(number)
        keys = cvn.derive_card_keys(cfg, pan, psn)
        card = _pyemv_card(cls, pan, psn)
        iad = cvn.build_iad(cfg, cvr, counters)
        assert iad[:2] == bytes([1, number]) and len(iad) == 18
        mine = cvn.compute_cryptogram(cfg, keys, terminal, aip, atc, iad)
        extra = {"cvr": cvr} if number == 16 else {"cvr": cvr, "counters": counters}
        assert mine == card.generate_ac(**_kw(terminal, aip, atc), **extra)
        arpc = card.generate_arpc(mine, b"51")
        assert (
            cvn.make_issuer_authentication_data(
                cfg, keys, arqc=mine, atc=atc, unpredictable_number=terminal[0x9F37], response_code="51"
            )
            == arpc + b"51"
        )
        ac_i = cvn.sm_cryptogram(cfg.version, mine, index)
        assert int.from_bytes(ac_i, "big") == (int.from_bytes(mine, "big") + index) % (1 << 64)
        smi, smc = cvn.sm_session_keys(cfg, keys, atc=atc, arqc=mine, index=index)
        header = h("8424000210")
        enciphered = cvn.encipher_pin(cfg, keys, smc, "97531", None)
        command = (
            header
            + enciphered
            + cvn.script_command_mac(cfg, smi, header=header, atc=atc, cryptogram=ac_i, data=enciphered)
        )
        assert command == card.generate_pin_change_command("97531", ac_i, atc.to_bytes(2, "big"))
        unblock = cvn.script_command_mac(cfg, smi, header=h("8418000008"), atc=atc, cryptogram=ac_i, data=b"")
        assert unblock == card.generate_command_mac(h("8418000008"), ac_i, atc.to_bytes(2, "big"))


def _check(cfg: cvn.CryptoConfig, keys: cvn.CardKeys, arqc: bytes, data: bytes) -> cvn.IssuerAuthentication:
    return cvn.check_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=7, unpredictable_number=h("01020304"), data=data
    )


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
def test_card_side_rejects_a_tampered_arpc_or_arc(number: int) -> None:
    cfg = config(number)
    keys = cvn.derive_card_keys(cfg, "4761739001010010", 1)
    arqc = h("1122334455667788")
    good = cvn.make_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=7, unpredictable_number=h("01020304"), response_code="00"
    )
    method1 = cfg.arpc_method == 1
    expected = cvn.IssuerAuthentication(
        True, True, b"00" if method1 else None, None if method1 else h("00800000")
    )
    assert _check(cfg, keys, arqc, good) == expected
    assert not _check(cfg, keys, arqc, bytes([good[0] ^ 0x80]) + good[1:]).valid
    assert not _check(cfg, keys, arqc, good[:-1] + bytes([good[-1] ^ 0x01])).valid  # ARC / CSU covered
    assert not _check(cfg, keys, h("1122334455667789"), good).valid


def test_declining_response_code_is_read_as_a_decline() -> None:
    cfg = config(10)
    keys = cvn.derive_card_keys(cfg, "4761739001010010", 1)
    arqc = h("1122334455667788")
    data = cvn.make_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=7, unpredictable_number=b"", response_code="51"
    )
    result = cvn.check_issuer_authentication_data(
        cfg, keys, arqc=arqc, atc=7, unpredictable_number=b"", data=data
    )
    assert result.valid and not result.issuer_approves and result.arc == b"51"


# --- config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "derivation", "method", "mac_length"),
    [(10, "A", 1, 8), (18, "B", 2, 8), (16, "A", 1, 8), (17, "A", 1, 8), (1, "A", 1, 4)],
)
def test_defaults_come_from_the_cvn(number: int, derivation: str, method: int, mac_length: int) -> None:
    cfg = cvn.CryptoConfig.from_mapping(cvn.example_crypto_config(number))
    assert (cfg.mk_derivation, cfg.arpc_method, cfg.script_mac_length, cfg.dki) == (
        derivation,
        method,
        mac_length,
        1,
    )


def test_explicit_values_override_the_cvn_defaults() -> None:
    cfg = config(18, arpc_method=1, mk_derivation="A", dki=2, script_mac_length=4)
    assert (cfg.arpc_method, cfg.mk_derivation, cfg.dki, cfg.script_mac_length) == (1, "A", 2, 4)


@pytest.mark.parametrize(
    "change",
    [
        {"cvn": 11},
        {"cvn": "10"},
        {"cvn": True},
        {"imk_ac": "0123"},
        {"imk_smi": "XYZ"},
        {"imk_smc": None},
        {"arpc_method": 3},
        {"mk_derivation": "C"},
        {"dki": 256},
        {"script_mac_length": 9},
        {"aac_on_issuer_auth_failure": "yes"},
        {"imk_ac_typo": "00"},
    ],
)
def test_bad_config_is_refused_loudly(change: dict[str, object]) -> None:
    raw: dict[str, object] = {**cvn.example_crypto_config(10), **change}
    with pytest.raises(cvn.CryptoConfigError):
        cvn.CryptoConfig.from_mapping(raw)


def test_repr_names_keys_by_check_value_only() -> None:
    cfg = config(10)
    text = repr(cfg) + cfg.kcvs() + repr(cvn.derive_card_keys(cfg, "4761739001010010", 1))
    for key in HSM_KEYS.values():
        assert key not in text.upper()
    assert "ac:08D7B4" in cfg.kcvs()
