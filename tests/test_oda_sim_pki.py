"""Cross-check with the simulator's PKI (sim/pki.py, sim/odasign.py: an independent implementation).

Each simulated card is driven over its APDU interface the way a terminal
would (SELECT, GET PROCESSING OPTIONS, READ RECORD, INTERNAL AUTHENTICATE,
GENERATE AC with CDA), and the terminal's ODA code must accept what the
card's certificates and signatures say, recover exactly the issuer and ICC
public keys of the simulator's key files, and fail the right way on the
simulator's fault switches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

import pytest

from firmware.config import DATA_PACKAGE
from firmware.emv import oda, tlv
from firmware.emv.capk import CAPK_FILE, CapkStore, Revocation, load_capk_store
from firmware.emv.certificates import Check, Stage
from firmware.emv.tags import format_of
from firmware.emv.tvr import Tsi, TsiBit, Tvr, TvrBit
from firmware.errors import StatusWordError
from sim import pki as sim_pki
from sim.card import Card
from sim.profile import afl_entries, load_profile, profile_from_dict, profile_names, read_profile_json

TODAY = date(2026, 6, 1)
UN = bytes.fromhex("11223344")
TERMINAL_CAPABILITIES = bytes.fromhex("E0F8C8")  # SDA, DDA, CDA
TERMINAL_DATA = {
    0x9F02: bytes.fromhex("000000001000"),
    0x9F03: bytes(6),
    0x9F1A: b"\x01\x56",
    0x95: bytes(5),
    0x5F2A: b"\x01\x56",
    0x9A: bytes.fromhex("260601"),
    0x9C: b"\x00",
    0x9F37: UN,
    0x9F35: b"\x22",
    0x9F34: bytes.fromhex("1E0300"),
    0x9F33: TERMINAL_CAPABILITIES,
    0x9F66: bytes.fromhex("36000000"),
}


def counting_rng(size: int) -> bytes:
    return bytes(range(1, size + 1))


# Simulated cards made to fail offline data authentication, and how (sim/profiles/fault-*.json).
# The revoked one fails because capk.json lists its issuer certificate (A000000003, E1, 0BAD01).
EXPECTED_FAILURES = {
    "fault-expired-issuer-cert": (Stage.ISSUER_CERTIFICATE, Check.EXPIRED, TvrBit.DDA_FAILED),
    "fault-revoked-ca-key": (Stage.ISSUER_CERTIFICATE, Check.REVOKED, TvrBit.DDA_FAILED),
    "fault-tampered-sda-record": (
        Stage.SIGNED_STATIC_DATA,
        Check.HASH,
        TvrBit.SDA_FAILED | TvrBit.SDA_SELECTED,
    ),
}


def card_applications() -> list[tuple[str, bytes]]:
    """(profile, AID) of every simulated application that has a PKI and can be selected."""
    found = []
    for name in profile_names():
        profile = load_profile(name)
        for app in profile.applications:
            if app.pki is not None and not app.blocked:
                found.append((name, app.aid))
    return found


# Certificates recover, then the CDA signature on GENERATE AC does not verify.
EXPECTED_CDA_FAILURES = {"fault-bad-cda-signature"}


def passing_applications() -> list[tuple[str, bytes]]:
    failing = set(EXPECTED_FAILURES) | EXPECTED_CDA_FAILURES
    return [(name, aid) for name, aid in card_applications() if name not in failing]


@dataclass
class Terminal:
    """Just enough of a terminal to reach ODA: no kernel, only the commands ODA depends on."""

    card: Card
    data: dict[int, bytes] = field(default_factory=dict)
    records: dict[tuple[int, int], bytes] = field(default_factory=dict)
    pdol_data: bytes = b""
    aip: bytes = b""
    afl: bytes = b""

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.card.transmit(apdu)
        data, sw = response[:-2], int.from_bytes(response[-2:], "big")
        while sw >> 8 == 0x61:  # T=0: GET RESPONSE
            response = self.card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
            data, sw = data + response[:-2], int.from_bytes(response[-2:], "big")
        if sw >> 8 == 0x6C:
            response = self.card.transmit(apdu[:-1] + bytes([sw & 0xFF]))
            data, sw = response[:-2], int.from_bytes(response[-2:], "big")
        return data, sw

    def command(self, name: str, apdu: bytes) -> bytes:
        data, sw = self.send(apdu)
        if sw != 0x9000:
            raise StatusWordError(name, sw)
        return data

    def read_application(self, aid: bytes) -> None:
        self.card.power_on()
        fci = self.command("SELECT", bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00")
        pdol = tlv.find(fci, 0x9F38) or b""
        self.pdol_data = tlv.build_dol(tlv.parse_dol(pdol), TERMINAL_DATA, format_of)
        body = tlv.encode(0x83, self.pdol_data)
        gpo = tlv.parse_one(self.command("GPO", bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00"))
        if gpo.tag == 0x80:
            self.aip, self.afl = gpo.value[:2], gpo.value[2:]
        else:
            self.aip, self.afl = tlv.find(gpo.value, 0x82) or b"", tlv.find(gpo.value, 0x94) or b""
        self.data = {0x4F: aid, 0x82: self.aip}
        for position in range(0, len(self.afl), 4):
            sfi, first, last = self.afl[position] >> 3, self.afl[position + 1], self.afl[position + 2]
            for number in range(first, last + 1):
                record = self.command("READ RECORD", bytes([0x00, 0xB2, number, (sfi << 3) | 4, 0x00]))
                self.records[(sfi, number)] = record
                for obj in tlv.flatten(record):
                    self.data.setdefault(obj.tag, obj.value)

    def static_data(self) -> oda.StaticData:
        return oda.build_static_data(self.afl, self.records, self.aip, self.data.get(0x9F4A))

    def internal_authenticate(self, ddol_data: bytes) -> bytes:
        apdu = bytes([0x00, 0x88, 0x00, 0x00, len(ddol_data)]) + ddol_data + b"\x00"
        return self.command("INTERNAL AUTHENTICATE", apdu)

    def generate_ac_with_cda(self) -> tuple[bytes, bytes]:
        """First GENERATE AC asking for a TC with a CDA signature; returns (CDOL1 data, response)."""
        cdol1_data = tlv.build_dol(tlv.parse_dol(self.data[0x8C]), {**self.data, **TERMINAL_DATA}, format_of)
        apdu = bytes([0x80, 0xAE, 0x40 | 0x10, 0x00, len(cdol1_data)]) + cdol1_data + b"\x00"
        return cdol1_data, self.command("GENERATE AC", apdu)


def sim_card(name: str, faults: dict[str, Any] | None = None) -> Card:
    raw = read_profile_json(name)
    if faults:
        raw["faults"] = faults
    return Card(profile_from_dict(name, raw), rng=counting_rng)


@dataclass(frozen=True)
class Outcome:
    method: oda.OdaMethod
    result: oda.OdaResult
    cda: oda.CdaResult | None
    tvr: Tvr
    tsi: Tsi


def run_oda(terminal: Terminal, aid: bytes, capks: CapkStore | None = None) -> Outcome:
    """What a kernel does: read the application, pick the method, authenticate."""
    capks = capks or load_capk_store()
    terminal.read_application(aid)
    tvr, tsi = Tvr(), Tsi()
    method = oda.select_method(terminal.aip, TERMINAL_CAPABILITIES)
    static = terminal.static_data()
    cda = None
    if method is oda.OdaMethod.SDA:
        result = oda.perform_sda(capks, terminal.data, static, tvr, TODAY, tsi=tsi)
    elif method is oda.OdaMethod.DDA:
        result = oda.perform_dda(
            capks, terminal.data, static, terminal.internal_authenticate, TERMINAL_DATA, tvr, TODAY, tsi=tsi
        )
    else:
        assert method is oda.OdaMethod.CDA
        result = oda.prepare_cda(capks, terminal.data, static, tvr, TODAY, tsi=tsi)
        if result.icc_key is not None:
            cdol1_data, response = terminal.generate_ac_with_cda()
            cda = oda.verify_cda(result.icc_key, response, terminal.pdol_data, cdol1_data, UN, tvr=tvr)
    return Outcome(method, result, cda, tvr, tsi)


def public_modulus(path: Any) -> bytes:
    n = sim_pki.load_private_key(path).public_key().public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def test_capk_file_holds_the_simulator_ca_keys() -> None:
    sim_keys = json.loads((sim_pki.PKI_DIR / "test-ca-keys.json").read_text(encoding="utf-8"))["keys"]
    shipped = json.loads((resources.files(DATA_PACKAGE) / CAPK_FILE).read_text("utf-8"))["keys"]
    copied = {(k["rid"], k["index"]): k for k in shipped if k["kind"] == "simulator"}
    assert set(copied) == {(k["rid"], k["index"]) for k in sim_keys}
    for key in sim_keys:
        ours = copied[(key["rid"], key["index"])]
        for name in ("modulus", "exponent", "checksum", "hash_algorithm", "key_algorithm"):
            assert ours[name] == key[name], f"{key['rid']}/{key['index']} {name} differs from the simulator's"


def test_every_method_is_covered() -> None:
    methods = {load_profile(name).applications[0].oda for name in profile_names()}
    assert {"sda", "dda", "cda"} <= methods


@pytest.mark.parametrize(
    ("name", "aid"), passing_applications(), ids=lambda v: v if isinstance(v, str) else v.hex()
)
def test_simulated_card_passes_and_keys_match_the_sim_key_files(name: str, aid: bytes) -> None:
    outcome = run_oda(Terminal(sim_card(name)), aid)
    result = outcome.result
    assert result.failure is None, str(result.failure)
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in outcome.tsi
    app = next(a for a in load_profile(name).applications if a.aid == aid)
    assert app.pki is not None
    assert result.issuer_key is not None
    assert result.issuer_key.modulus == public_modulus(sim_pki.issuer_key_path(app.pki.issuer))
    assert result.issuer_key.serial == app.pki.issuer_cert_serial
    if outcome.method is oda.OdaMethod.SDA:
        assert result.data_objects == {0x9F45: app.pki.dac}
        assert outcome.tvr.to_bytes() == TvrBit.SDA_SELECTED.to_bytes(5, "big")
        return
    assert result.icc_key is not None
    assert result.icc_key.modulus == public_modulus(sim_pki.icc_key_path(name, aid))
    assert outcome.tvr.to_bytes() == bytes(5)
    if outcome.method is oda.OdaMethod.DDA:
        assert result.data_objects[0x9F4C] == counting_rng(len(result.data_objects[0x9F4C]))
    else:
        assert outcome.cda is not None and outcome.cda.ok, str(outcome.cda and outcome.cda.failure)
        assert outcome.cda.cryptogram_information_data == 0x40
        assert outcome.cda.icc_dynamic_number == counting_rng(len(outcome.cda.icc_dynamic_number))


def test_every_expected_failure_profile_exists() -> None:
    assert set(EXPECTED_FAILURES) | EXPECTED_CDA_FAILURES <= set(profile_names())


@pytest.mark.parametrize("name", sorted(EXPECTED_CDA_FAILURES))
def test_simulated_card_with_a_bad_cda_signature_fails_cda_only(name: str) -> None:
    aid = load_profile(name).applications[0].aid
    outcome = run_oda(Terminal(sim_card(name)), aid)
    assert outcome.result.failure is None, str(outcome.result.failure)
    assert outcome.cda is not None and not outcome.cda.ok
    assert outcome.cda.failure is not None
    assert outcome.cda.failure.stage in (Stage.SIGNED_DYNAMIC_DATA, Stage.GENERATE_AC)
    assert outcome.tvr.to_bytes() == TvrBit.CDA_FAILED.to_bytes(5, "big")


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_simulated_fault_card_fails_as_expected(name: str) -> None:
    stage, check, bits = EXPECTED_FAILURES[name]
    aid = load_profile(name).applications[0].aid
    outcome = run_oda(Terminal(sim_card(name)), aid)
    assert outcome.result.failure is not None
    assert (outcome.result.failure.stage, outcome.result.failure.check) == (stage, check)
    assert outcome.tvr.to_bytes() == bits.to_bytes(5, "big")
    assert TsiBit.OFFLINE_DATA_AUTH_PERFORMED in outcome.tsi


def by_method(method: str) -> tuple[str, bytes]:
    """A plain card (not one of the fault-* profiles) doing `method`."""
    for name, aid in card_applications():
        app = next(a for a in load_profile(name).applications if a.aid == aid)
        if app.oda == method and not name.startswith("fault-") and "faults" not in read_profile_json(name):
            return name, aid
    raise AssertionError(f"no simulated card does {method}")


@pytest.mark.parametrize(
    ("method", "expected", "tvr"),
    [
        ("sda", (Stage.SIGNED_STATIC_DATA, Check.HASH), TvrBit.SDA_FAILED | TvrBit.SDA_SELECTED),
        ("dda", (Stage.ICC_CERTIFICATE, Check.HASH), TvrBit.DDA_FAILED),
        ("cda", (Stage.ICC_CERTIFICATE, Check.HASH), TvrBit.CDA_FAILED),
    ],
)
def test_tampered_record_after_signing(method: str, expected: tuple[Stage, Check], tvr: TvrBit) -> None:
    name, aid = by_method(method)
    app = next(a for a in load_profile(name).applications if a.aid == aid)
    sfi, number = next((s, f) for s, f, _, count in afl_entries(app.afl) if count)
    spec = app.record(sfi, number)
    assert spec is not None
    tag = next(tag for tag, value in spec.items if isinstance(value, bytes))
    value = spec.value(tag)
    assert isinstance(value, bytes)
    changed = value[:-1] + bytes([value[-1] ^ 0x01])
    index = next(i for i, a in enumerate(load_profile(name).applications) if a.aid == aid)
    faults = {
        "tamper_record": {
            "application": index,
            "sfi": sfi,
            "record": number,
            "tag": f"{tag:X}",
            "value": changed.hex(),
        }
    }
    outcome = run_oda(Terminal(sim_card(name, faults)), aid)
    assert outcome.result.failure is not None
    assert (outcome.result.failure.stage, outcome.result.failure.check) == expected
    assert outcome.tvr.to_bytes() == tvr.to_bytes(5, "big")


@pytest.mark.parametrize("method", ["dda", "cda"])
def test_bad_dynamic_signature(method: str) -> None:
    name, aid = by_method(method)
    outcome = run_oda(Terminal(sim_card(name, {"bad_dynamic_signature": True})), aid)
    if method == "dda":
        failure = outcome.result.failure
        bit = TvrBit.DDA_FAILED
    else:
        assert outcome.result.ok and outcome.cda is not None
        failure = outcome.cda.failure
        bit = TvrBit.CDA_FAILED
    assert failure is not None and failure.stage in (Stage.SIGNED_DYNAMIC_DATA, Stage.GENERATE_AC)
    assert outcome.tvr.to_bytes() == bit.to_bytes(5, "big")


def test_revoked_simulator_issuer_certificate() -> None:
    name, aid = by_method("sda")
    app = next(a for a in load_profile(name).applications if a.aid == aid)
    assert app.pki is not None
    shipped = load_capk_store()
    revoking = CapkStore.of(
        shipped.keys.values(), [Revocation(app.pki.rid, app.pki.ca_index, app.pki.issuer_cert_serial)]
    )
    outcome = run_oda(Terminal(sim_card(name)), aid, revoking)
    assert outcome.result.failure is not None
    assert (outcome.result.failure.stage, outcome.result.failure.check) == (
        Stage.ISSUER_CERTIFICATE,
        Check.REVOKED,
    )
    assert outcome.tvr.to_bytes() == (TvrBit.SDA_FAILED | TvrBit.SDA_SELECTED).to_bytes(5, "big")


def test_internal_authenticate_refused_by_the_card() -> None:
    name, aid = by_method("dda")
    outcome = run_oda(Terminal(sim_card(name, {"status_words": {"88": "6985"}})), aid)
    assert outcome.result.failure is not None
    assert (outcome.result.failure.stage, outcome.result.failure.check) == (
        Stage.INTERNAL_AUTHENTICATE,
        Check.STATUS_WORD,
    )
    assert outcome.tvr.to_bytes() == TvrBit.DDA_FAILED.to_bytes(5, "big")
