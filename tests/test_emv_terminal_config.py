"""Terminal configuration: the shipped JSON, strict loading, extension by fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware.emv.terminal_config import (
    AidEntry,
    TerminalConfig,
    from_json_value,
    load_terminal_config,
    terminal_config_from_dict,
)
from firmware.errors import ConfigError


def test_shipped_configuration() -> None:
    config = load_terminal_config()
    aids = {entry.aid.hex().upper() for entry in config.aids}
    # The schemes of the simulated cards and the usual international ones.
    assert {"A0000000031010", "A0000000041010", "A000000333010101", "A000000333010102"} <= aids
    assert config.use_pse


def test_aid_matching_follows_the_asi() -> None:
    partial = AidEntry(bytes.fromhex("A000000333010101"))
    exact = AidEntry(bytes.fromhex("A0000000031010"), partial_match=False)
    assert partial.matches(bytes.fromhex("A000000333010101"))
    assert partial.matches(bytes.fromhex("A00000033301010101"))
    assert not partial.matches(bytes.fromhex("A0000003330101"))
    assert exact.matches(bytes.fromhex("A0000000031010"))
    assert not exact.matches(bytes.fromhex("A000000003101001"))
    config = TerminalConfig((exact, partial))
    assert config.aid_entry_for(bytes.fromhex("A00000033301010101")) is partial
    assert config.aid_entry_for(bytes.fromhex("A000000003101001")) is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"aids": []}, "no AID"),
        ({}, "missing key 'aids'"),
        ({"aids": [{"aid": "A0000000031010"}], "use_pse": "yes"}, "use_pse: expected true or false"),
        ({"aids": [{"aid": "A00000"}]}, "3 bytes"),
        ({"aids": [{"aid": "XYZ"}]}, "aids[0].aid: 'XYZ' is not hex"),
        ({"aids": [{"aid": "A0000000031010", "asi": True}]}, "unknown key(s) asi"),
        # Terminal data objects live in the kernel configuration only.
        ({"aids": [{"aid": "A0000000031010"}], "terminal_data": {}}, "unknown key(s) terminal_data"),
        ({"aids": "A0000000031010"}, "expected a list"),
    ],
)
def test_bad_configuration_names_the_field(data: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        terminal_config_from_dict(data)
    assert words in str(caught.value)


def test_load_from_a_path_and_broken_files(tmp_path: Path) -> None:
    good = tmp_path / "terminal.json"
    good.write_text(json.dumps({"aids": [{"aid": "A0000000031010", "label": "Visa"}], "use_pse": False}))
    config = load_terminal_config(good)
    assert (config.aids[0].label, config.use_pse) == ("Visa", False)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        load_terminal_config(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_terminal_config(tmp_path / "absent.json")


def test_a_new_field_with_a_default_is_loaded_without_loader_changes() -> None:
    @dataclass(frozen=True)
    class Extended:
        aids: tuple[AidEntry, ...]
        floor_limit: int = 0
        tac_default: bytes = b""
        currency_exponent: int | None = None

    loaded = from_json_value(
        Extended, {"aids": [{"aid": "A0000000031010"}], "floor_limit": 5000, "tac_default": "DC4000A800"}
    )
    assert loaded.floor_limit == 5000
    assert loaded.tac_default == bytes.fromhex("DC4000A800")
    assert loaded.currency_exponent is None
    with pytest.raises(ConfigError, match="expected an integer"):
        from_json_value(Extended, {"aids": [], "floor_limit": True})
