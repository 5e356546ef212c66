"""What the fuzz targets (tests/test_fuzz_*.py) found, pinned as plain known-answer tests."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from importlib import resources
from pathlib import Path

import pytest

from firmware.app import ScriptError, ScriptStep, parse_script
from firmware.emv import mask, tags, tlv
from firmware.emv.application_list import load_application_list
from firmware.emv.kernel_config import load_kernel_config
from firmware.errors import ConfigError, DamagedStoreError, ImageRefusedError, StoreError, TlvError
from firmware.txn.archive import read_archive
from firmware.txn.terms import load_terms
from firmware.update.image import MAGIC, SIGNATURE_SIZE
from firmware.update.manifest import Refusal, parse_manifest
from firmware.update.trust import TrustedKey, TrustedKeys
from firmware.update.verify import verify_image
from tests.flash_fixtures import DEVELOPMENT, TARGET
from tests.txn_fixtures import open_book


def test_a_zero_length_dol_entry_takes_nothing() -> None:
    """Book 3 5.4: '9F02 00' asks for no bytes; the amount must not come out whole."""
    entries = tlv.parse_dol(bytes.fromhex("9F02009F3704"))
    data = tlv.build_dol(entries, {0x9F02: bytes(6), 0x9F37: b"\x01\x02\x03\x04"}, tags.format_of)
    assert data == b"\x01\x02\x03\x04"
    assert len(data) == tlv.dol_length(entries)


def test_a_dol_entry_longer_than_one_length_byte_is_refused_before_anything_is_built() -> None:
    """A card's PDOL of '9F02 83 FFFFFF' would have the terminal build 16 MB per entry."""
    with pytest.raises(TlvError) as refused:
        tlv.parse_dol(bytes.fromhex("9F37049F0283FFFFFF"))
    assert refused.value.offset == 3 and refused.value.tag == 0x9F02
    assert tlv.parse_dol(bytes.fromhex("9F0281FF")) == [(0x9F02, 255)]


@pytest.mark.parametrize(
    "raw",
    [b'{"format":' + b"1" * 5000 + b"}", b'{"format":' + b"[" * 100_000, b"[" * 100_000],
    ids=["number of 5000 digits", "nested 100000 deep", "nested at the top"],
)
def test_a_manifest_python_cannot_read_is_a_bad_manifest(raw: bytes) -> None:
    with pytest.raises(ImageRefusedError) as refused:
        parse_manifest(raw)
    assert refused.value.reason == Refusal.MANIFEST


def test_an_image_whose_unverified_manifest_is_nested_too_deep_is_refused_by_its_signature(
    tmp_path: Path,
) -> None:
    manifest = b'{"signing_key":' + b"[" * 100_000
    path = tmp_path / "deep.img"
    path.write_bytes(MAGIC + len(manifest).to_bytes(4, "big") + manifest + bytes(SIGNATURE_SIZE))
    trusted = TrustedKeys(True, (TrustedKey(DEVELOPMENT.id, DEVELOPMENT.private.public_key(), True, "d"),))
    with pytest.raises(ImageRefusedError) as refused:
        verify_image(path, trusted, TARGET)
    assert refused.value.reason == Refusal.SIGNATURE


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("applications.json", b'{"_comment": ' + b"[" * 20_000),
        ("kernel.json", b'{"terminal_type": ' + b"2" * 5000 + b"}"),
        ("terms.json", b'{"reference": ' + b"[" * 20_000),
        ("terms.json", b'{"reference": ' + b"2" * 5000 + b"}"),
    ],
    ids=[
        "nested too deep",
        "a number of 5000 digits",
        "terms nested too deep",
        "terms number of 5000 digits",
    ],
)
def test_a_configuration_file_python_cannot_read_is_a_config_error(
    tmp_path: Path, name: str, raw: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    load = {
        "applications.json": load_application_list,
        "kernel.json": load_kernel_config,
        "terms.json": load_terms,
    }
    with pytest.raises(ConfigError, match=f"{name}: .*(nested more than|a number of)"):
        load[name](path)


def test_terms_with_a_list_for_an_evidence_field_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "terms.json"
    document = json.loads(resources.files("firmware.data").joinpath("terms.json").read_bytes())
    document["void"]["evidence_required"] = [["order"]]
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="evidence_required"):
        load_terms(path)


@pytest.mark.parametrize("argument", ["²", "١٢", "5²", "𝟓"])
def test_a_script_wait_takes_ascii_digits_only(argument: str) -> None:
    """str.isdigit() holds for '²' and '١٢', int() reads neither: refused when read, not when played."""
    with pytest.raises(ScriptError, match="line 2: WAIT takes milliseconds"):
        parse_script(f"ENTER\nWAIT {argument}")
    assert parse_script("WAIT 250") == [ScriptStep(1, "WAIT", "250")]


@pytest.mark.parametrize(
    "raw",
    [b'{"meta":' + b"[" * 100_000, b'{"meta": {"1": {"batch": ' + b"1" * 5000 + b"}}}"],
    ids=["nested too deep", "a number of 5000 digits"],
)
def test_an_open_batch_file_python_cannot_read_is_kept_aside(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "open.json").write_bytes(raw)
    with pytest.raises(DamagedStoreError) as damaged:
        open_book(tmp_path)
    assert "nested more than" in str(damaged.value) or "a number of" in str(damaged.value)
    assert Path(damaged.value.kept_aside).read_bytes() == raw
    assert not (tmp_path / "open.json").exists()


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"batch": ' + b"1" * 5000 + b"}"])
def test_a_settled_batch_file_python_cannot_read_is_a_store_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "batch-000001.json"
    path.write_bytes(raw)
    with pytest.raises(StoreError, match=r"is damaged: .*(nested more than|a number of)"):
        read_archive(path)


def test_reading_a_settled_batch_costs_memory_by_its_size_not_by_the_limit(tmp_path: Path) -> None:
    """read(64 MB + 1) of a file of a few bytes set aside 64 MB at every settlement and every look-up."""
    path = tmp_path / "batch-000001.json"
    path.write_bytes(b'{"batch": 1}')
    tracemalloc.start()
    try:
        with contextlib.suppress(StoreError):
            read_archive(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


def test_card_data_under_a_damaged_tag_is_withheld_from_display() -> None:
    """Track 2 (57) read back as tag 55 once a bit flipped on the way: its digits must not be shown."""
    track2 = bytes.fromhex("5413330089020094D25122011234567890123F")
    record = bytes.fromhex("7015") + bytes([0x55, len(track2)]) + track2
    assert "5413330089020094" not in mask.display_tlv(record)
    assert "5413330089020094" not in str(mask.display_tags({0x55: track2, 0x9F4E: b"5413330089020094"}))
    assert mask.display_tags({0x9F02: bytes.fromhex("000000001234"), 0x50: b"VISA 4761"}) == {
        "9F02": "000000001234",
        "50": "VISA 4761",
    }
