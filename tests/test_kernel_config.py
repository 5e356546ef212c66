"""The kernel's terminal parameters (firmware/data/kernel.json) and what the host's answer approves."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware.config import DATA_PACKAGE, Section
from firmware.emv.application_list import load_application_list
from firmware.emv.kernel_config import (
    DEFAULT_FIELD55_TAGS,
    KERNEL_FILE,
    KernelConfig,
    kernel_config_from_section,
    load_kernel_config,
)
from firmware.emv.online import HostDecision, OnlineResponse, host_decision
from firmware.errors import ConfigError, MessageFormatError
from firmware.identity import load_identity


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((resources.files(DATA_PACKAGE) / KERNEL_FILE).read_text("utf-8"))
    return raw


def kernel_config_from_dict(raw: dict[str, Any]) -> KernelConfig:
    """kernel.json as `raw`, with the shipped identity and application list."""
    return kernel_config_from_section(Section.of(raw, KERNEL_FILE), load_identity(), load_application_list())


# --- approval response codes (ISO 8583 field 39) -------------------------------------------------


def test_shipped_codes_approve_the_whole_amount_only() -> None:
    config = load_kernel_config()
    # 10 is 'approved for a partial amount': never an approval of the amount the card certifies
    assert config.approval_response_codes == {"00", "08", "11"}
    assert config.partial_approval_response_codes == {"10"}
    defaults = kernel_config_from_dict({k: v for k, v in shipped().items() if "response_codes" not in k})
    assert "10" not in defaults.approval_response_codes and "10" in defaults.partial_approval_response_codes


def test_a_code_cannot_approve_both_in_whole_and_in_part() -> None:
    raw = shipped() | {"approval_response_codes": ["00", "10"]}
    with pytest.raises(ConfigError, match="10"):
        kernel_config_from_dict(raw)


APPROVALS = frozenset({"00", "08", "11"})
PARTIAL = frozenset({"10"})


@pytest.mark.parametrize(
    ("code", "approved", "decision"),
    [
        ("00", None, HostDecision.APPROVED),
        ("11", 6000, HostDecision.APPROVED),
        ("00", 3000, HostDecision.APPROVED_OTHER_AMOUNT),
        ("00", 6001, HostDecision.APPROVED_OTHER_AMOUNT),
        ("10", None, HostDecision.APPROVED_OTHER_AMOUNT),  # less was approved, and not said how much
        ("10", 3000, HostDecision.APPROVED_OTHER_AMOUNT),
        ("10", 6000, HostDecision.APPROVED),
        ("05", None, HostDecision.DECLINED),
        ("51", 6000, HostDecision.DECLINED),
    ],
)
def test_host_decision(code: str, approved: int | None, decision: HostDecision) -> None:
    response = OnlineResponse(code, approved_amount=approved)
    assert host_decision(response, 6000, APPROVALS, PARTIAL) is decision


def test_negative_approved_amount_is_malformed() -> None:
    with pytest.raises(MessageFormatError, match="approved amount"):
        OnlineResponse("10", approved_amount=-1)


# --- every application the terminal lists can be processed ---------------------------------------


def test_every_terminal_aid_has_kernel_parameters() -> None:
    config = load_kernel_config()
    for entry in load_application_list().aids:
        # the card's AID is the terminal's or (partial selection) begins with it
        params = config.application(entry.aid)
        assert params is not None, f"{entry.label} ({entry.aid.hex().upper()}) has no kernel parameters"
        assert entry.aid.startswith(params.aid)
        assert entry.parameters == params


# --- the tags of field 55 --------------------------------------------------------------------------


def test_field55_tags_come_from_the_configuration_in_its_order() -> None:
    config = kernel_config_from_dict(shipped() | {"field55_tags": ["9F26", "9F27", "8A", "9F5B", "5F34"]})
    assert config.field55_tags == (0x9F26, 0x9F27, 0x8A, 0x9F5B, 0x5F34)
    assert load_kernel_config().field55_tags == DEFAULT_FIELD55_TAGS


@pytest.mark.parametrize("tags", [["9F"], ["9F8101"], ["8A", "8A"], ["1F"], ["9F81"], ["zz"], "9F26"])
def test_bad_field55_tags(tags: object) -> None:
    with pytest.raises(ConfigError, match="field55_tags"):
        kernel_config_from_dict(shipped() | {"field55_tags": tags})


# --- errors name the file and the key ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"terminal_type": "22"}, "kernel.json: terminal_type: must be an integer"),
        ({"terminal_type": 27}, "kernel.json: terminal_type: 27 is not a Book 4 terminal type"),
        ({"terminal_capabilities": "E0F8"}, "kernel.json: terminal_capabilities: must be 3 bytes, got 2"),
        (
            {"additional_terminal_capabilities": "XX"},
            "kernel.json: additional_terminal_capabilities: 'XX' is not hex",
        ),
        (
            {"floor_limit_uses_transaction_log": 0},
            "kernel.json: floor_limit_uses_transaction_log: must be true or",
        ),
        (
            {"approval_response_codes": ["000"]},
            "kernel.json: approval_response_codes[0]: must be a string of 2",
        ),
        ({"exception_file": {"salt": 5}}, "kernel.json: exception_file.salt: must be a hex string"),
        (
            {"exception_file": {"pan_sha256": [1]}},
            "kernel.json: exception_file.pan_sha256[0]: must be a string",
        ),
        (
            {"field55_tags": ["9F26", "9F"]},
            "kernel.json: field55_tags[1]: '9F' is not a one- or two-byte hex tag",
        ),
        ({"terminal_id": "TERM0001"}, "kernel.json: unknown key(s) terminal_id"),  # identity.json's
        ({"applications": []}, "kernel.json: unknown key(s) applications"),  # applications.json's
    ],
)
def test_a_wrong_value_names_the_file_and_the_key(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        kernel_config_from_dict(shipped() | change)
    assert words in str(raised.value)


def test_a_missing_key_and_a_file_given_by_path(tmp_path: Path) -> None:
    raw = shipped()
    del raw["terminal_capabilities"]
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_kernel_config(path)
    assert str(raised.value) == f"{path}: terminal_capabilities: missing"
    path.write_text(json.dumps(shipped() | {"terminal_type": 14}), encoding="utf-8")
    assert load_kernel_config(path).terminal_type == 14
    assert load_kernel_config(str(path)).terminal_type == 14


def test_identity_and_applications_come_from_their_own_files() -> None:
    config = load_kernel_config()
    identity = load_identity()
    assert config.identity == identity
    data = config.terminal_data()
    assert data[0x9F1C] == identity.terminal_id.encode("ascii")
    assert data[0x9F16] == identity.merchant_id.encode("ascii")
    assert (config.country_code, config.currency_code) == (identity.country_code, identity.currency_code)
    assert config.applications == load_application_list().parameters
