"""The application list (firmware/data/applications.json): the shipped file, strict loading, errors by key."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware.config import DATA_PACKAGE, Section
from firmware.emv.application_list import (
    APPLICATIONS_FILE,
    AidEntry,
    ApplicationList,
    application_list_from_section,
    load_application_list,
)
from firmware.errors import ConfigError


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((resources.files(DATA_PACKAGE) / APPLICATIONS_FILE).read_text("utf-8"))
    return raw


def application_list_from_dict(data: object) -> ApplicationList:
    return application_list_from_section(Section.of(data, APPLICATIONS_FILE))


def test_shipped_configuration() -> None:
    config = load_application_list()
    aids = {entry.aid.hex().upper() for entry in config.aids}
    # The schemes of the simulated cards and the usual international ones.
    assert {"A0000000031010", "A0000000041010", "A000000333010101", "A000000333010102"} <= aids
    assert config.use_pse
    # every AID with its kernel parameters, in one entry
    assert all(entry.parameters is not None and entry.parameters.aid == entry.aid for entry in config.aids)
    assert len(config.parameters) == len(config.aids)


def test_aid_matching_follows_the_asi() -> None:
    partial = AidEntry(bytes.fromhex("A000000333010101"))
    exact = AidEntry(bytes.fromhex("A0000000031010"), partial_match=False)
    assert partial.matches(bytes.fromhex("A000000333010101"))
    assert partial.matches(bytes.fromhex("A00000033301010101"))
    assert not partial.matches(bytes.fromhex("A0000003330101"))
    assert exact.matches(bytes.fromhex("A0000000031010"))
    assert not exact.matches(bytes.fromhex("A000000003101001"))
    config = ApplicationList((exact, partial))
    assert config.aid_entry_for(bytes.fromhex("A00000033301010101")) is partial
    assert config.aid_entry_for(bytes.fromhex("A000000003101001")) is None


def test_lists_built_in_code_are_checked() -> None:
    with pytest.raises(ConfigError, match="no AID"):
        ApplicationList(())
    with pytest.raises(ConfigError, match="3 bytes"):
        AidEntry(bytes.fromhex("A00000"))
    visa = load_application_list().aids[3]
    assert visa.parameters is not None
    with pytest.raises(ConfigError, match="another AID's"):
        AidEntry(bytes.fromhex("A0000000041010"), parameters=visa.parameters)


VISA = {"aid": "A0000000031010"}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"applications": []}, "applications.json: applications: must not be empty"),
        ({}, "applications.json: applications: missing"),
        ({"applications": [VISA], "use_pse": "yes"}, "applications.json: use_pse: must be true or false"),
        ({"applications": [{"aid": "A00000"}]}, "applications.json: applications[0].aid: A00000 is 3 bytes"),
        ({"applications": [{"aid": "XYZ"}]}, "applications.json: applications[0].aid: 'XYZ' is not hex"),
        ({"applications": [VISA | {"asi": True}]}, "applications.json: applications[0]: unknown key(s) asi"),
        # Terminal data objects live in kernel.json and identity.json only.
        ({"applications": [VISA], "terminal_data": {}}, "applications.json: unknown key(s) terminal_data"),
        ({"applications": "A0000000031010"}, "applications.json: applications: must be a list"),
        ({"applications": ["A0000000031010"]}, "applications.json: applications[0]: must be an object"),
        (
            {"applications": [VISA, VISA]},
            "applications.json: applications[1]: AID A0000000031010 is listed twice",
        ),
        # kernel parameters are all there or none is
        (
            {"applications": [VISA | {"floor_limit": 5000}]},
            "applications.json: applications[0].version: missing",
        ),
    ],
)
def test_bad_configuration_names_the_file_and_the_key(data: object, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        application_list_from_dict(data)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("floor_limit", "5000", "applications.json: applications[3].floor_limit: must be an integer"),
        ("floor_limit", -1, "applications.json: applications[3].floor_limit: must be at least 0, got -1"),
        ("tac_online", "DC4004F8", "applications.json: applications[3].tac_online: must be 5 bytes, got 4"),
        ("version", 96, "applications.json: applications[3].version: must be a hex string"),
        (
            "velocity_checking",
            "no",
            "applications.json: applications[3].velocity_checking: must be true or false",
        ),
        ("random_max_target_percent", 100, "applications[3].random_max_target_percent: must be in 0..99"),
        (
            "random_target_percent",
            60,
            "applications[3].random_target_percent: above random_max_target_percent",
        ),
        ("random_selection_threshold", 6000, "applications[3].random_selection_threshold: above floor_limit"),
        ("label", 7, "applications.json: applications[3].label: must be a string"),
    ],
)
def test_a_wrong_kernel_parameter_names_the_file_and_the_key(key: str, value: object, words: str) -> None:
    data = copy.deepcopy(shipped())
    data["applications"][3][key] = value
    with pytest.raises(ConfigError) as caught:
        application_list_from_dict(data)
    assert words in str(caught.value)


def test_load_from_a_path_and_broken_files(tmp_path: Path) -> None:
    good = tmp_path / "applications.json"
    good.write_text(
        json.dumps({"applications": [{"aid": "A0000000031010", "label": "Visa"}], "use_pse": False})
    )
    config = load_application_list(good)
    assert (config.aids[0].label, config.use_pse) == ("Visa", False)
    assert config.aids[0].parameters is None and config.parameters == ()
    assert load_application_list(str(good)) == config
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match=f"^{broken}: not JSON"):
        load_application_list(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_application_list(tmp_path / "absent.json")
