"""CA public key file: published checksums, refusal of bad keys, lookup, revocation list."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware.config import DATA_PACKAGE
from firmware.emv.capk import (
    CAPK_FILE,
    CapkStore,
    CaPublicKey,
    Revocation,
    load_capk_store,
    parse_capk_document,
)
from firmware.errors import ConfigError

# The checksums as the schemes' test key documents and public terminal
# configurations publish them (see each entry's "source" in capk.json).
# They are typed here independently of capk.json, so a key whose modulus and
# checksum were both edited is still caught.
PUBLISHED_CHECKSUMS = {
    ("A000000003", "92"): "429C954A3859CEF91295F663C963E582ED6EB253",
    ("A000000003", "94"): "C4A3C43CCF87327D136B804160E47D43B60E6E0F",
    ("A000000003", "95"): "EE1511CEC71020A9B90443B37B1D5F6E703030F6",
    ("A000000003", "99"): "4ABFFD6B1C51212D05552E431C5B17007D2F5E6D",
    ("A000000004", "05"): "EBFA0D5D06D8CE702DA3EAE890701D45E274C845",
    ("A000000004", "EF"): "21766EBB0EE122AFB65D7845B73DB46BAB65427A",
    ("A000000004", "F1"): "D8E68DA167AB5A85D8C3D55ECB9B0517A1A5B4BB",
    ("A000000004", "F3"): "A69AC7603DAF566E972DEDC2CB433E07E8B01A9A",
    ("A000000004", "FA"): "5BED4068D96EA16D2D77E03D6036FC7A160EA99C",
    ("A000000333", "01"): "E881E390675D44C2DD81234DCE29C3F5AB2297A0",
    ("A000000333", "02"): "03BB335A8549A03B87AB089D006F60852E4B8060",
    ("A000000333", "03"): "87F0CD7C0E86F38F89A66F8C47071A8B88586F26",
    ("A000000333", "04"): "F527081CF371DD7E1FD4FA414A665036E0F5E6E5",
    ("A000000333", "08"): "EE23B616C95C02652AD18860E48787C079E8E85A",
    ("A000000333", "09"): "A075306EAB0045BAF72CDD33B3B678779DE1F527",
    ("A000000333", "0A"): "C88BE6B2417C4F941C9371EA35A377158767E4E3",
    ("A000000333", "0B"): "BD331F9996A490B33C13441066A09AD3FEB5F66C",
}

TODAY = date(2026, 6, 1)


def shipped_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((resources.files(DATA_PACKAGE) / CAPK_FILE).read_text("utf-8"))
    return document


def scheme_entries() -> list[dict[str, Any]]:
    return [entry for entry in shipped_document()["keys"] if entry["kind"] != "simulator"]


def test_every_published_key_is_in_the_file() -> None:
    held = {(entry["rid"], entry["index"]) for entry in scheme_entries()}
    assert held == set(PUBLISHED_CHECKSUMS)


@pytest.mark.parametrize("entry", scheme_entries(), ids=lambda e: f"{e['rid']}-{e['index']}")
def test_published_key_matches_its_published_checksum(entry: dict[str, Any]) -> None:
    published = PUBLISHED_CHECKSUMS[(entry["rid"], entry["index"])]
    recomputed = hashlib.sha1(
        bytes.fromhex(entry["rid"] + entry["index"] + entry["modulus"] + entry["exponent"])
    ).hexdigest()
    assert recomputed.upper() == published
    assert entry["checksum"] == published
    assert entry["source"], "every key says where it came from"
    assert len(entry["modulus"]) * 4 == entry["bits"]


def test_shipped_file_loads_and_finds_keys() -> None:
    store = load_capk_store()
    assert len(store) == len(shipped_document()["keys"])
    visa = store.get(bytes.fromhex("A000000003"), 0x92, TODAY)
    assert visa is not None
    assert visa.length == 176
    assert visa.exponent == b"\x03"
    assert store.get(bytes.fromhex("A000000003"), 0x01, TODAY) is None


def _with_first_key(change: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(shipped_document())
    document["keys"][0].update(change)
    return document


def test_mistyped_modulus_is_refused_naming_the_key() -> None:
    entry = shipped_document()["keys"][0]
    modulus = entry["modulus"]
    mistyped = modulus[:40] + ("1" if modulus[40] != "1" else "2") + modulus[41:]
    with pytest.raises(ConfigError) as raised:
        parse_capk_document(_with_first_key({"modulus": mistyped}))
    message = str(raised.value)
    assert f"{entry['rid']}/{entry['index']}" in message
    assert "checksum" in message


def test_wrong_checksum_is_refused() -> None:
    with pytest.raises(ConfigError, match="checksum"):
        parse_capk_document(_with_first_key({"checksum": "00" * 20}))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"exponent": "05"}, "exponent"),
        ({"hash_algorithm": "02"}, "hash algorithm"),
        ({"key_algorithm": "02"}, "key algorithm"),
        ({"rid": "A0000000"}, "rid"),
        ({"modulus": "zz"}, "not hex"),
        ({"expiry": "31/12/2099"}, "date"),
        ({"bits": 1024}, "bits"),
    ],
)
def test_malformed_entries_are_refused(change: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_capk_document(_with_first_key(change))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"modulus": "zz"}, "capk.json: keys[0].modulus: 'zz' is not hex"),
        ({"expiry": 20991231}, "capk.json: keys[0].expiry: must be a YYYY-MM-DD date"),
        ({"index": "0101"}, "capk.json: keys[0].index: must be 1 bytes, got 2"),
        ({"bits": "1408"}, "capk.json: keys[0].bits: must be an integer"),
        ({"kind": 1}, "capk.json: keys[0].kind: must be a string"),
        (
            {"exponent": "05"},
            "capk.json: keys[0]: CA public key A000000003/92: exponent 05 is not 03 or 010001",
        ),
        ({"modulos": "00"}, "capk.json: keys[0]: unknown key(s) modulos"),
    ],
)
def test_a_wrong_value_names_the_file_and_the_key(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_capk_document(_with_first_key(change))
    assert words in str(raised.value)


def test_duplicate_key_is_refused() -> None:
    document = copy.deepcopy(shipped_document())
    document["keys"].append(copy.deepcopy(document["keys"][0]))
    with pytest.raises(ConfigError, match="twice"):
        parse_capk_document(document)


def test_wrong_format_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        parse_capk_document({"format": "other", "keys": []})
    with pytest.raises(ConfigError, match="cannot read"):
        load_capk_store(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        load_capk_store(broken)


def test_withdrawn_key_is_not_used() -> None:
    entry = shipped_document()["keys"][0]
    document = _with_first_key({"expiry": "2020-12-31"})
    store = parse_capk_document(document)
    rid, index = bytes.fromhex(entry["rid"]), int(entry["index"], 16)
    assert store.get(rid, index) is not None
    assert store.get(rid, index, date(2020, 12, 31)) is not None
    assert store.get(rid, index, date(2021, 1, 1)) is None


def test_revocation_list_is_read() -> None:
    document = copy.deepcopy(shipped_document())
    document["revocations"] = [{"rid": "A000000003", "index": "92", "serial": "00A1B2", "note": "test"}]
    store = parse_capk_document(document)
    rid = bytes.fromhex("A000000003")
    assert store.is_revoked(rid, 0x92, bytes.fromhex("00A1B2"))
    assert not store.is_revoked(rid, 0x92, bytes.fromhex("00A1B3"))
    assert not store.is_revoked(rid, 0x94, bytes.fromhex("00A1B2"))
    document["revocations"] = [{"rid": "A000000003", "index": "92", "serial": "00A1"}]
    with pytest.raises(ConfigError, match="serial"):
        parse_capk_document(document)


def test_store_of_checks_keys_built_in_code() -> None:
    entry = shipped_document()["keys"][0]
    key = CaPublicKey(
        rid=bytes.fromhex(entry["rid"]),
        index=int(entry["index"], 16),
        modulus=bytes.fromhex(entry["modulus"]),
        exponent=bytes.fromhex(entry["exponent"]),
        expiry=date(2099, 12, 31),
        checksum=bytes.fromhex(entry["checksum"]),
    )
    store = CapkStore.of([key], [Revocation(key.rid, key.index, b"\x00\x00\x01")])
    assert store.get(key.rid, key.index) == key
    assert store.is_revoked(key.rid, key.index, b"\x00\x00\x01")
    with pytest.raises(ConfigError, match="checksum"):
        CapkStore.of(
            [CaPublicKey(key.rid, key.index, key.modulus, b"\x01\x00\x01", key.expiry, checksum=key.checksum)]
        )
