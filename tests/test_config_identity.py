"""The terminal's identity (firmware/data/identity.json): one file for the kernel and the host messages."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware.config import DATA_PACKAGE, Section
from firmware.emv.kernel_config import load_kernel_config
from firmware.errors import ConfigError
from firmware.host.messages import TerminalIdentity
from firmware.host.spec import DEFAULT_HEADER
from firmware.identity import IDENTITY_FILE, Identity, identity_from_section, load_identity


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((resources.files(DATA_PACKAGE) / IDENTITY_FILE).read_text("utf-8"))
    return raw


def test_shipped_identity() -> None:
    identity = load_identity()
    assert (len(identity.terminal_id), len(identity.merchant_id)) == (8, 15)
    assert (identity.country_code, identity.currency_code, identity.currency_exponent) == (156, 156, 2)


def test_kernel_and_host_say_the_same_ids() -> None:
    """9F1C / 9F16 in the card dialogue and fields 41 / 42 on the wire come from the one identity."""
    identity = load_identity()
    kernel = load_kernel_config().terminal_data()
    wire = TerminalIdentity.of(identity).fields()
    assert wire["41"].encode("ascii") == kernel[0x9F1C] == identity.terminal_id.encode("ascii")
    assert wire["42"].encode("ascii") == kernel[0x9F16] == identity.merchant_id.encode("ascii")
    assert TerminalIdentity.of(identity) == TerminalIdentity(identity.terminal_id, identity.merchant_id)
    assert TerminalIdentity.of(identity, header=b"\x60").header == b"\x60" != DEFAULT_HEADER


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"terminal_id": "TERM001"}, "identity.json: terminal_id: must be 8 characters, got 7"),
        ({"merchant_id": 123456789012345}, "identity.json: merchant_id: must be a string"),
        ({"merchant_name_location": "商户"}, "identity.json: merchant_name_location: must be ASCII"),
        ({"country_code": "156"}, "identity.json: country_code: must be an integer"),
        ({"currency_code": 1560}, "identity.json: currency_code: must be in 0..999, got 1560"),
        ({"currency_exponent": -2}, "identity.json: currency_exponent: must be in 0..9, got -2"),
        ({"merchant_category_code": True}, "identity.json: merchant_category_code: must be an integer"),
        ({"ifd_serial": "POS1"}, "identity.json: ifd_serial: must be 8 characters, got 4"),
        ({"terminal_type": 22}, "identity.json: unknown key(s) terminal_type"),  # kernel.json's
    ],
)
def test_a_wrong_value_names_the_file_and_the_key(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        identity_from_section(Section.of(shipped() | change, IDENTITY_FILE))
    assert words in str(raised.value)


def test_a_missing_key_and_a_file_given_by_path(tmp_path: Path) -> None:
    raw = shipped()
    del raw["merchant_id"]
    path = tmp_path / "identity.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_identity(path)
    assert str(raised.value) == f"{path}: merchant_id: missing"
    path.write_text(json.dumps(shipped() | {"terminal_id": "00000001"}), encoding="utf-8")
    assert load_identity(path) == Identity(**{**load_identity().__dict__, "terminal_id": "00000001"})
