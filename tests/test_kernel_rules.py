"""GENERATE AC coding, action analysis, terminal risk management and issuer scripts on hand-built data.

Expected values come from the Book 3 rules (tables in each test), not from the code's output.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware.emv.action import (
    ActionCodes,
    CardDecision,
    card_action_analysis,
    default_action_analysis,
    issuer_action_codes,
    second_ac_decision,
    terminal_action_analysis,
)
from firmware.emv.apdu import Command
from firmware.emv.genac import (
    CryptogramType,
    build_cdol_data,
    generate_ac_command,
    parse_generate_ac_response,
)
from firmware.emv.kernel_config import ExceptionFile, pan_fingerprint
from firmware.emv.risk import (
    RiskInputs,
    exception_file_bits,
    floor_limit_exceeded,
    randomly_selected,
    terminal_risk_management,
    velocity_bits,
)
from firmware.emv.scripts import (
    ScriptStatus,
    issuer_script_results,
    parse_issuer_scripts,
    parse_script_command,
    run_script,
)
from firmware.emv.tvr import TvrBit
from firmware.errors import ApduError, CardDataError

H = bytes.fromhex

# --- GENERATE AC --------------------------------------------------------------


def test_generate_ac_command_p1() -> None:
    # Book 3 Table 12: AAC 00, TC 40, ARQC 80; CDA signature requested adds 10
    assert generate_ac_command(CryptogramType.ARQC, b"\x01").encode() == H("80AE8000010100")
    assert generate_ac_command(CryptogramType.TC, b"\x01", cda=True).encode() == H("80AE5000010100")
    assert generate_ac_command(CryptogramType.AAC, b"\x01").encode() == H("80AE0000010100")


def test_cdol_data_is_filled_in_dol_order_with_format_rules() -> None:
    cdol1 = H("9F02069F03069F1A0295055F2A029A039C019F3704")
    source = {
        0x9F02: H("000000001234"),
        0x9F1A: H("0156"),
        0x95: H("0000008000"),
        0x5F2A: H("0156"),
        0x9A: H("250615"),
        0x9C: H("00"),
        0x9F37: H("11223344"),
    }
    # 9F03 absent: six zero bytes
    assert build_cdol_data(cdol1, source) == H("0000000012340000000000000156000000800001562506150011223344")
    with pytest.raises(CardDataError, match="8D"):
        build_cdol_data(H("9F"), source, tag=0x8D)


def test_format1_response() -> None:
    response = parse_generate_ac_response(H("8012800001112233445566778806010A03A00000"))
    assert response.response_format == 0x80
    assert response.cryptogram_type is CryptogramType.ARQC
    assert response.atc == H("0001") and response.cryptogram == H("1122334455667788")
    assert response.issuer_application_data == H("06010A03A00000")
    assert not response.advice_required


def test_format2_response_with_advice_bit() -> None:
    data = H("771E9F2701089F360200029F260811223344556677889F1007060102030405FF")
    response = parse_generate_ac_response(data)
    assert response.cryptogram_type is CryptogramType.AAC
    assert response.advice_required and response.reason == 0
    assert response.objects[0x9F10] == H("060102030405FF")


@pytest.mark.parametrize(
    "data",
    [
        "8009800001112233445566",  # shorter than CID + ATC + AC
        "800BC000011122334455667788",  # CID type 11 is RFU
        "77099F2701809F36020001",  # neither 9F26 nor 9F4B
        "6F099F2701809F36020001",  # wrong template
    ],
)
def test_malformed_responses(data: str) -> None:
    with pytest.raises(CardDataError):
        parse_generate_ac_response(H(data))


def test_only_a_cda_answer_may_carry_its_cryptogram_inside_the_signature() -> None:
    signed_only = H("771C9F2701409F360200119F4B10") + bytes(16)  # CID, ATC and a signature, no 9F26
    with pytest.raises(CardDataError, match="9F26"):
        parse_generate_ac_response(signed_only)  # CDA not asked for: Book 3 6.5.5.4, 9F26 mandatory
    response = parse_generate_ac_response(signed_only, cda_requested=True)
    assert response.cryptogram is None and response.signed_dynamic_data == bytes(16)
    with pytest.raises(CardDataError, match="9F26"):
        parse_generate_ac_response(H("77099F2701409F36020011"), cda_requested=True)


# --- action analysis ----------------------------------------------------------

VISA_TAC = ActionCodes(denial=H("0010000000"), online=H("DC4004F800"), default=H("DC4000A800"))
NO_IAC = issuer_action_codes({})

TAA_CASES = [
    # (tvr, iac, online capable, online only, expected)
    ("0000000000", NO_IAC, True, False, CryptogramType.TC),
    ("0000008000", NO_IAC, True, False, CryptogramType.ARQC),  # floor limit: IAC online FF.. and TAC
    ("0010000000", NO_IAC, True, False, CryptogramType.AAC),  # service not allowed: TAC denial
    ("0000000000", NO_IAC, True, True, CryptogramType.ARQC),  # online-only terminal
    ("0000008000", NO_IAC, False, False, CryptogramType.AAC),  # offline only: IAC default FF..
    (
        "0000004000",
        ActionCodes(H("0000000000"), H("0000000000"), H("0000000000")),
        False,
        False,
        CryptogramType.TC,  # lower limit exceeded, no code asks for it
    ),
    (
        "0000004000",
        ActionCodes(H("0000000000"), H("0000000000"), H("0000000000")),
        True,
        False,
        CryptogramType.ARQC,  # TAC online byte 4 F8 covers bit 7
    ),
    (
        "0800000000",
        ActionCodes(H("0800000000"), H("0000000000"), H("0000000000")),
        True,
        False,
        CryptogramType.AAC,  # IAC denial: card on exception file
    ),
]


@pytest.mark.parametrize(("tvr", "iac", "online_capable", "online_only", "expected"), TAA_CASES)
def test_terminal_action_analysis(
    tvr: str, iac: ActionCodes, online_capable: bool, online_only: bool, expected: CryptogramType
) -> None:
    assert (
        terminal_action_analysis(
            H(tvr), VISA_TAC, iac, online_capable=online_capable, online_only=online_only
        )
        is expected
    )


def test_default_action_analysis_when_unable_to_go_online() -> None:
    iac = ActionCodes(H("0000000000"), H("FFFFFFFFFF"), H("0000000000"))
    assert default_action_analysis(H("0000008000"), VISA_TAC, iac) is CryptogramType.AAC  # TAC default A8
    assert default_action_analysis(H("0000001000"), VISA_TAC, iac) is CryptogramType.TC  # random: not in A8


def test_issuer_action_codes_defaults_and_length() -> None:
    assert NO_IAC == ActionCodes(H("0000000000"), H("FFFFFFFFFF"), H("FFFFFFFFFF"))
    with pytest.raises(CardDataError, match="9F0E"):
        issuer_action_codes({0x9F0E: H("00")})


CARD_ACTION = [
    (CryptogramType.TC, CryptogramType.TC, CardDecision.APPROVE),
    (CryptogramType.TC, CryptogramType.ARQC, CardDecision.GO_ONLINE),
    (CryptogramType.TC, CryptogramType.AAC, CardDecision.DECLINE),
    (CryptogramType.ARQC, CryptogramType.ARQC, CardDecision.GO_ONLINE),
    (CryptogramType.ARQC, CryptogramType.AAC, CardDecision.DECLINE),
    (CryptogramType.AAC, CryptogramType.AAC, CardDecision.DECLINE),
]


@pytest.mark.parametrize(("requested", "answered", "decision"), CARD_ACTION)
def test_card_action_analysis(
    requested: CryptogramType, answered: CryptogramType, decision: CardDecision
) -> None:
    assert card_action_analysis(requested, answered) is decision


@pytest.mark.parametrize(
    ("requested", "answered"),
    [
        (CryptogramType.ARQC, CryptogramType.TC),
        (CryptogramType.AAC, CryptogramType.TC),
        (CryptogramType.AAC, CryptogramType.ARQC),
    ],
)
def test_card_may_not_answer_higher_than_asked(requested: CryptogramType, answered: CryptogramType) -> None:
    with pytest.raises(CardDataError):
        card_action_analysis(requested, answered)


def test_second_generate_ac_decisions() -> None:
    assert second_ac_decision(CryptogramType.TC, CryptogramType.TC) is CardDecision.APPROVE
    assert second_ac_decision(CryptogramType.TC, CryptogramType.AAC) is CardDecision.DECLINE
    assert second_ac_decision(CryptogramType.AAC, CryptogramType.AAC) is CardDecision.DECLINE
    with pytest.raises(CardDataError):
        second_ac_decision(CryptogramType.TC, CryptogramType.ARQC)
    with pytest.raises(CardDataError):
        second_ac_decision(CryptogramType.AAC, CryptogramType.TC)


# --- terminal risk management -------------------------------------------------


def test_floor_limit_is_inclusive_and_counts_the_log() -> None:
    assert floor_limit_exceeded(5000, 5000)
    assert not floor_limit_exceeded(4999, 5000)
    assert floor_limit_exceeded(3000, 5000, logged_amount=2000)


RANDOM_CASES = [
    # amount, random number, selected; floor 5000, threshold 2000, target 20 %, max 50 %
    (1000, 20, True),
    (1000, 21, False),
    (2000, 20, True),  # at the threshold the target percent is 20
    (2000, 21, False),
    (3500, 35, True),  # halfway: 20 + 30 * 1500 / 3000 = 35
    (3500, 36, False),
    (4999, 49, True),  # 20 + 30 * 2999 / 3000 = 49.99
    (4999, 50, False),
    (5000, 1, False),  # at the floor limit random selection does not apply
]


@pytest.mark.parametrize(("amount", "number", "selected"), RANDOM_CASES)
def test_random_transaction_selection(amount: int, number: int, selected: bool) -> None:
    assert randomly_selected(amount, 5000, 2000, 20, 50, number) is selected


VELOCITY_CASES = [
    # lower, upper, ATC, last online ATC, expected bits
    ("02", "05", "0005", "0003", TvrBit(0)),
    ("02", "05", "0005", "0002", TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED),
    (
        "02",
        "05",
        "0008",
        "0002",
        TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
    ),
    ("02", "05", "0001", "0000", TvrBit.NEW_CARD),
    (
        "02",
        "05",
        None,
        "0002",
        TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
    ),
    (None, "05", "0009", "0001", TvrBit(0)),  # card without both limits: no velocity checking
    # Book 3 10.6.3: a counter GET DATA did not return usably (here of 1 or 3 bytes) counts as not returned
    (
        "02",
        "05",
        "0009",
        "00",
        TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
    ),
    (
        "02",
        "05",
        "000009",
        "0001",
        TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED,
    ),
]


@pytest.mark.parametrize(("lower", "upper", "atc", "last", "expected"), VELOCITY_CASES)
def test_velocity_checking(
    lower: str | None, upper: str | None, atc: str | None, last: str | None, expected: TvrBit
) -> None:
    def h(value: str | None) -> bytes | None:
        return H(value) if value is not None else None

    assert velocity_bits(h(lower), h(upper), h(atc), h(last)) == expected


def test_exception_file_matches_salted_fingerprint_only() -> None:
    salt = b"salt"
    hot = ExceptionFile(salt, frozenset({pan_fingerprint("4761739001010010", salt)}))
    assert exception_file_bits("4761739001010010", hot) == TvrBit.CARD_ON_EXCEPTION_FILE
    assert exception_file_bits("4761739001010028", hot) == 0
    assert "4761739001010010" not in repr(hot)


def test_risk_management_combines_checks() -> None:
    inputs = RiskInputs(
        amount=6000,
        floor_limit=5000,
        random_selection_threshold=2000,
        random_target_percent=99,
        random_max_target_percent=99,
        random_number=1,
        velocity_checking=True,
    )
    card = {0x9F14: H("00"), 0x9F23: H("01")}
    bits = terminal_risk_management(inputs, card, H("0003"), H("0001"))
    assert bits == (
        TvrBit.EXCEEDS_FLOOR_LIMIT  # random selection not applied above the floor limit
        | TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
        | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
    )


# --- issuer scripts -------------------------------------------------------------

SCRIPT_71 = H("71199F18041122334486098418000004AABBCCDD86058424000000")
SCRIPT_72 = H("720A8608841E0000030A0B0C")


def test_parse_scripts_in_order() -> None:
    scripts = parse_issuer_scripts(SCRIPT_71 + SCRIPT_72)
    assert [(s.template, s.identifier.hex()) for s in scripts] == [(0x71, "11223344"), (0x72, "")]
    assert scripts[0].commands == (H("8418000004AABBCCDD"), H("8424000000"))


def test_script_command_cases() -> None:
    case3 = parse_script_command(H("8418000004AABBCCDD"))
    assert (case3.cla, case3.ins, case3.data, case3.le) == (0x84, 0x18, H("AABBCCDD"), None)
    case4 = parse_script_command(H("8418000002AABB00"))
    assert (case4.data, case4.le) == (H("AABB"), 0x00)
    case1 = parse_script_command(H("841E0000"))
    assert case1.case == 1
    with pytest.raises(ApduError):
        parse_script_command(H("841E000005AABB"))


def test_run_script_success_warning_and_failure() -> None:
    script = parse_issuer_scripts(SCRIPT_71)[0]
    sent: list[bytes] = []

    def card(sw_for: dict[int, int]) -> Callable[[Command], int]:
        def send(command: Command) -> int:
            sent.append(command.encode())
            return sw_for.get(command.ins, 0x9000)

        return send

    ok = run_script(script, card({0x18: 0x6283}))  # a warning counts as done
    assert ok.status is ScriptStatus.SUCCESSFUL and ok.encode() == H("2011223344")
    assert sent == [H("8418000004AABBCCDD"), H("8424000000")]
    failed = run_script(script, card({0x24: 0x6985}))
    assert failed.status is ScriptStatus.FAILED and failed.failed_command == 2
    assert failed.encode() == H("1211223344")
    stopped = run_script(script, card({0x18: 0x6A88}))
    assert stopped.encode() == H("1111223344")
    assert issuer_script_results([ok, failed]) == H("20112233441211223344")


def test_malformed_script_fails_without_sending() -> None:
    script = parse_issuer_scripts(H("71069F1802112233"))[0]
    result = run_script(script, lambda command: 0x9000)
    assert result.status is ScriptStatus.FAILED and result.encode() == H("1000000000")


def test_tc_hash_value_over_the_tdol_data() -> None:
    import hashlib

    from firmware.emv.genac import tc_hash_value

    tdol = H("9F02065F2A029A039C019F3704")
    source = {0x9F02: H("000000001234"), 0x5F2A: H("0156"), 0x9A: H("250615"), 0x9C: H("00")}
    # 9F37 absent: four zero bytes (Book 3 5.4)
    expected = hashlib.sha1(H("000000001234" "0156" "250615" "00" "00000000")).digest()
    assert tc_hash_value(tdol, source) == expected
    with pytest.raises(CardDataError, match="97"):
        tc_hash_value(H("9F02"), source)
