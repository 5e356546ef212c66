"""The simulator's TEST PKI, checked the way a terminal checks it (EMV Book 2 sections 5 and 6).

Everything is recovered here with textbook RSA (`pow`) from the public
numbers, starting from `test-ca-keys.json`; headers, formats, trailers and
SHA-1 hashes are checked against Book 2's tables, and the static data to be
authenticated is rebuilt from what READ RECORD returns.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from sim import pki, tlv
from sim.card import Card, load_profile_card
from sim.errors import PkiError
from sim.profile import load_profile, profile_from_dict, profile_names, read_profile_json

CA_KEYS = json.loads((pki.PKI_DIR / "test-ca-keys.json").read_text())["keys"]


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def ca_key(rid: bytes, index: int) -> tuple[int, int]:
    for entry in CA_KEYS:
        if entry["rid"] == rid.hex().upper() and int(entry["index"], 16) == index:
            return int(entry["modulus"], 16), int(entry["exponent"], 16)
    raise AssertionError(f"no CA key {rid.hex()} / {index:02X} in test-ca-keys.json")


def recover(data: bytes, modulus: int, exponent: int) -> bytes:
    size = (modulus.bit_length() + 7) // 8
    assert len(data) == size, "a signature is as long as the modulus"
    return pow(int.from_bytes(data, "big"), exponent, modulus).to_bytes(size, "big")


def test_ca_key_list_checksums_and_labels() -> None:
    document = json.loads((pki.PKI_DIR / "test-ca-keys.json").read_text())
    assert "TEST" in document["label"]
    assert {entry["rid"] for entry in CA_KEYS} == {"A000000003", "A000000004", "A000000333"}
    for entry in CA_KEYS:
        modulus, exponent = bytes.fromhex(entry["modulus"]), bytes.fromhex(entry["exponent"])
        expected = sha1(bytes.fromhex(entry["rid"]) + bytes.fromhex(entry["index"]) + modulus + exponent)
        assert entry["checksum"] == expected.hex().upper()
        assert exponent == b"\x03" and len(modulus) * 8 == pki.CA_KEY_BITS
        private = pki.load_private_key(pki.ca_key_path(bytes.fromhex(entry["rid"]), int(entry["index"], 16)))
        assert private.public_key().public_numbers().n == int.from_bytes(modulus, "big")
        assert "TEST" in entry["label"] and entry["expiry"] == pki.CA_EXPIRY


def test_every_pki_file_says_it_is_a_test_key() -> None:
    files = list(pki.PKI_DIR.iterdir())
    assert files
    for path in files:
        assert path.name.upper().startswith("TEST-"), path.name
        assert "TEST" in path.read_text().splitlines()[0] or "TEST" in path.read_text()[:200], path.name


class CardReading:
    """Selects the first application and reads every AFL record, as a terminal does."""

    def __init__(self, card: Card, index: int = 0) -> None:
        self.card = card
        card.power_on()
        self.app = card.apps[index]
        aid = self.app.aid
        self._send(bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00", ok=(0x9000, 0x6283))
        if self.app.blocked:  # a blocked application refuses GPO: read what its profile says it has
            value = {0x80: self.app.profile.aip + self.app.profile.afl}
        else:
            gpo = bytes.fromhex("80A80000") + bytes([2 + len(self._pdol_data())])
            value = tlv.parse_to_dict(self._send(gpo + tlv.encode(0x83, self._pdol_data()) + b"\x00"))
        if 0x80 in value:
            self.aip, afl = value[0x80][:2], value[0x80][2:]
        else:
            inner = tlv.parse_to_dict(value[0x77])
            self.aip, afl = inner[0x82], inner[0x94]
        self.data: dict[int, bytes] = {}
        self.static_data = b""
        for pos in range(0, len(afl), 4):
            sfi, first, last, oda = afl[pos] >> 3, afl[pos + 1], afl[pos + 2], afl[pos + 3]
            for number in range(first, last + 1):
                record = self._send(bytes([0x00, 0xB2, number, (sfi << 3) | 4, 0x00]))
                [(tag, body)] = tlv.parse(record)
                assert tag == 0x70
                self.data.update(tlv.parse_to_dict(body))
                if number < first + oda:
                    self.static_data += body if sfi <= 10 else record
        if self.data.get(0x9F4A) == b"\x82":
            self.static_data += self.aip

    def _pdol_data(self) -> bytes:
        return bytes(tlv.dol_length(self.app.profile.pdol))

    def _send(self, apdu: bytes, ok: tuple[int, ...] = (0x9000,)) -> bytes:
        response = self.card.transmit(apdu)
        sw = response[-2:]
        if sw[0] == 0x6C:
            response = self.card.transmit(apdu[:4] + sw[1:])
        elif sw[0] in (0x61, 0x62) and len(response) == 2:
            response = self.card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, sw[1] if sw[0] == 0x61 else 0]))
            if response[0] == 0x6C:
                response = self.card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, response[1]]))
        assert int.from_bytes(response[-2:], "big") in ok or response[-2:] == b"\x90\x00", response.hex()
        return response[:-2]

    def issuer_key(self) -> tuple[int, int]:
        """Book 2 5.3 / 6.3: recover and check the Issuer Public Key Certificate."""
        modulus, exponent = ca_key(self.app.aid[:5], self.data[0x8F][0])
        recovered = recover(self.data[0x90], modulus, exponent)
        n_ca = len(recovered)
        assert recovered[0] == 0x6A and recovered[-1] == 0xBC
        assert recovered[1] == 0x02  # certificate format
        pan = self.data[0x5A].hex().upper().rstrip("F")
        issuer_id = recovered[2:6].hex().upper().rstrip("F")
        assert pan.startswith(issuer_id) and 3 <= len(issuer_id) <= 8
        assert recovered[11] == 0x01 and recovered[12] == 0x01  # SHA-1, RSA
        n_i, exponent_length = recovered[13], recovered[14]
        remainder = self.data.get(0x92, b"")
        issuer_exponent = self.data[0x9F32]
        assert exponent_length == len(issuer_exponent)
        hashed = recovered[1 : n_ca - 21] + remainder + issuer_exponent
        assert sha1(hashed) == recovered[n_ca - 21 : n_ca - 1]
        leftmost = recovered[15 : n_ca - 21]
        issuer_modulus = (leftmost + remainder)[:n_i] if remainder else leftmost[:n_i]
        assert len(issuer_modulus) == n_i
        return int.from_bytes(issuer_modulus, "big"), int.from_bytes(issuer_exponent, "big")

    def icc_key(self) -> tuple[int, int, bytes]:
        """Book 2 6.4: recover the ICC Public Key Certificate; returns the key and the certified hash."""
        modulus, exponent = self.issuer_key()
        recovered = recover(self.data[0x9F46], modulus, exponent)
        n_i = len(recovered)
        assert recovered[0] == 0x6A and recovered[1] == 0x04 and recovered[-1] == 0xBC
        assert recovered[2:12].hex().upper().rstrip("F") == self.data[0x5A].hex().upper().rstrip("F")
        n_ic, exponent_length = recovered[19], recovered[20]
        remainder = self.data.get(0x9F48, b"")
        icc_exponent = self.data[0x9F47]
        assert exponent_length == len(icc_exponent)
        certified_hash = recovered[n_i - 21 : n_i - 1]
        hashed = recovered[1 : n_i - 21] + remainder + icc_exponent + self.static_data
        icc_modulus = (recovered[21 : n_i - 21] + remainder)[:n_ic]
        return (
            int.from_bytes(icc_modulus, "big"),
            int.from_bytes(icc_exponent, "big"),
            sha1(hashed) + certified_hash,
        )


ODA_CARDS = [
    (name, index, app.oda)
    for name in profile_names()
    for index, app in enumerate(load_profile(name).applications)
    if app.oda != "none"
]


@pytest.mark.parametrize(("profile", "index", "oda"), ODA_CARDS)
def test_certificates_recover_and_cover_the_static_data(profile: str, index: int, oda: str) -> None:
    """Every ODA card of every profile; a profile with a tamper_record fault must fail the hash instead."""
    tampered = load_profile(profile).faults.tamper_record is not None
    reading = CardReading(load_profile_card(profile), index)
    if oda == "sda":
        modulus, exponent = reading.issuer_key()
        recovered = recover(reading.data[0x93], modulus, exponent)
        assert recovered[0] == 0x6A and recovered[1] == 0x03 and recovered[-1] == 0xBC
        assert set(recovered[5:-21]) == {0xBB}  # padding
        matches = sha1(recovered[1:-21] + reading.static_data) == recovered[-21:-1]
    else:
        _, _, hashes = reading.icc_key()
        matches = hashes[:20] == hashes[20:]
    assert matches != tampered, "certificate hash and the records read disagree"


def test_internal_authenticate_signature_recovers() -> None:
    reading = CardReading(load_profile_card("visa-credit"))
    modulus, exponent, _ = reading.icc_key()
    ddol_data = bytes.fromhex("0BADCAFE")
    response = reading._send(bytes.fromhex("0088000004") + ddol_data + b"\x00")
    signature = tlv.parse_to_dict(response)[0x80]
    recovered = recover(signature, modulus, exponent)
    assert recovered[0] == 0x6A and recovered[1] == 0x05 and recovered[2] == 0x01 and recovered[-1] == 0xBC
    ldd = recovered[3]
    dynamic = recovered[4 : 4 + ldd]
    assert dynamic[0] == ldd - 1 and 2 <= dynamic[0] <= 8  # ICC dynamic number with its length
    assert set(recovered[4 + ldd : -21]) == {0xBB}
    assert sha1(recovered[1:-21] + ddol_data) == recovered[-21:-1]


def test_tampered_record_breaks_the_certificate_hash() -> None:
    raw = read_profile_json("visa-credit")
    raw["faults"] = {"tamper_record": {"sfi": 2, "record": 1, "tag": "5F28", "value": "0826"}}
    reading = CardReading(Card(profile_from_dict("visa-credit", raw)))
    assert reading.data[0x5F28] == bytes.fromhex("0826")
    _, _, hashes = reading.icc_key()
    assert hashes[:20] != hashes[20:]


def test_tampered_sda_record_breaks_the_signed_static_data() -> None:
    raw = read_profile_json("unionpay-debit")
    raw["faults"] = {"tamper_record": {"sfi": 2, "record": 1, "tag": "5F24", "value": "351231"}}
    reading = CardReading(Card(profile_from_dict("unionpay-debit", raw)))
    modulus, exponent = reading.issuer_key()
    recovered = recover(reading.data[0x93], modulus, exponent)
    assert sha1(recovered[1:-21] + reading.static_data) != recovered[-21:-1]


def test_certificates_signed_over_other_records_are_refused() -> None:
    raw = read_profile_json("visa-credit")
    raw["applications"][0]["records"][1]["data"]["5F28"] = "0826"
    with pytest.raises(PkiError, match=r"python -m sim\.pki"):
        Card(profile_from_dict("visa-credit", raw))


def test_committed_files_are_what_sim_pki_writes(tmp_path: Path) -> None:
    """With the committed keys, regenerating must reproduce every committed file byte for byte."""
    for key in pki.PKI_DIR.glob("TEST-*.key.pem"):
        shutil.copy(key, tmp_path / key.name)
    written = pki.generate(directory=tmp_path)
    assert sorted(path.name for path in written) == sorted(path.name for path in pki.PKI_DIR.iterdir())
    for path in written:
        assert path.read_bytes() == (pki.PKI_DIR / path.name).read_bytes(), (
            f"{path.name} is stale: run python -m sim.pki"
        )


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="missing"):
        load_profile_card("visa-credit", pki_dir=tmp_path)
