"""The kernel's terminal parameters (firmware/data/kernel.json) and what the host's answer approves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.emv.kernel_config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_FIELD55_TAGS,
    kernel_config_from_dict,
    load_kernel_config,
)
from firmware.emv.online import HostDecision, OnlineResponse, host_decision
from firmware.emv.terminal_config import load_terminal_config
from firmware.errors import ConfigError, MessageFormatError


def shipped() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    return raw


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
    for entry in load_terminal_config().aids:
        # the card's AID is the terminal's or (partial selection) begins with it
        params = config.application(entry.aid)
        assert params is not None, f"{entry.label} ({entry.aid.hex().upper()}) has no kernel parameters"
        assert entry.aid.startswith(params.aid)



# --- the tags of field 55 --------------------------------------------------------------------------


def test_field55_tags_come_from_the_configuration_in_its_order() -> None:
    config = kernel_config_from_dict(shipped() | {"field55_tags": ["9F26", "9F27", "8A", "9F5B", "5F34"]})
    assert config.field55_tags == (0x9F26, 0x9F27, 0x8A, 0x9F5B, 0x5F34)
    assert load_kernel_config().field55_tags == DEFAULT_FIELD55_TAGS


@pytest.mark.parametrize("tags", [["9F"], ["9F8101"], ["8A", "8A"], ["1F"], ["9F81"], ["zz"], "9F26"])
def test_bad_field55_tags(tags: object) -> None:
    with pytest.raises(ConfigError, match="field55_tags"):
        kernel_config_from_dict(shipped() | {"field55_tags": tags})
