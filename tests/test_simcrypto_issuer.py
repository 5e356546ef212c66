"""The simulated issuer (sim/issuer.py): ARQC checks, ARPCs, scripts, decline rules and
faults, end to end with the simulated card; field 55 is built with pyemv's TLV codec."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyemv import cvn as pyemv_cvn
from pyemv import tlv as pyemv_tlv

from sim import cvn
from sim.cardcrypto import AcResult, CardCrypto, SecureMessagingFailed
from sim.emvcrypto import CryptoInputError
from sim.issuer import (
    Field55Error,
    Issuer,
    IssuerFaults,
    ScriptRequest,
    encode_tlv,
    parse_tlv,
)

h = bytes.fromhex

CDOL1 = h("9F02069F03069F1A0295055F2A029A039C019F3704")
CDOL2 = h("8A02") + CDOL1
AIP = h("3C00")
PANS = {10: "4761739001010010", 18: "4761739001010119", 16: "5413330089010434", 17: "5413330089010442"}
PANS[1] = "6228480402564890018"


def terminal(amount: int, un: str = "0A0B0C0D") -> dict[str, bytes]:
    return {
        "9F02": h(f"{amount:012d}"),
        "9F03": bytes(6),
        "9F1A": h("0156"),
        "95": h("0000048000"),
        "5F2A": h("0156"),
        "9A": h("250310"),
        "9C": h("00"),
        "9F37": h(un),
    }


def cdol_data(values: dict[str, bytes], arc: bytes = b"") -> bytes:
    return arc + b"".join(values[f"{tag:X}"] for tag, _ in cvn.TERMINAL_AC_TAGS)


def field55(values: dict[str, bytes], result: AcResult, atc: int) -> bytes:
    tags = {
        **values,
        "9F26": result.cryptogram,
        "9F27": bytes([result.cid]),
        "9F10": result.iad,
        "9F36": atc.to_bytes(2, "big"),
        "82": AIP,
        "9F33": h("E0F8C8"),  # not part of the cryptogram: ignored
    }
    return bytes(pyemv_tlv.encode(tags))


def scripts_of(encoded: bytes) -> list[tuple[int, bytes, list[bytes]]]:
    """(template, 9F18 id, commands) of each script, read with a walker of the test's own."""
    out = []
    offset = 0
    while offset < len(encoded):
        template, length = encoded[offset], encoded[offset + 1]
        body = encoded[offset + 2 : offset + 2 + length]
        offset += 2 + length
        assert body[:3] == h("9F1804")
        script_id, rest, commands = body[3:7], body[7:], []
        while rest:
            assert rest[0] == 0x86
            commands.append(rest[2 : 2 + rest[1]])
            rest = rest[2 + rest[1] :]
        out.append((template, script_id, commands))
    return out


def setup(number: int, **extra: object) -> tuple[CardCrypto, Issuer, str]:
    pan = PANS[number]
    cfg: dict[str, object] = {**cvn.example_crypto_config(number), **extra}
    card = CardCrypto(cfg, pan, 1, cdol1=CDOL1, cdol2=CDOL2, aip=AIP)
    return card, Issuer({pan[:6]: cfg}), pan


def go_online(card: CardCrypto, atc: int, amount: int) -> tuple[dict[str, bytes], AcResult, bytes]:
    values = terminal(amount)
    card.begin_transaction(atc)
    result = card.generate_ac("ARQC", cdol_data(values), atc)
    return values, result, field55(values, result, atc)


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
def test_online_approval_round_trip(number: int) -> None:
    card, issuer, pan = setup(number)
    values, _, f55 = go_online(card, 0x0101, 2500)
    answer = issuer.authorise(f55, pan, 1, 2500)
    assert answer is not None
    assert (answer.response_code, answer.arqc_valid, answer.scripts) == ("00", True, b"")
    assert card.external_authenticate(answer.issuer_authentication_data) is True
    tc = card.generate_ac("TC", cdol_data(values, b"00"), 0x0101)
    assert tc.cid == 0x40
    assert issuer.verify_cryptogram(field55(values, tc, 0x0101), pan, 1) is True
    assert issuer.verify_cryptogram(field55(values, tc, 0x0102), pan, 1) is False


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
@pytest.mark.parametrize("tamper", ["9F26", "9F02", "95", "9F10", "82"])
def test_tampered_request_fails_the_arqc_check(number: int, tamper: str) -> None:
    card, issuer, pan = setup(number)
    _, _, f55 = go_online(card, 7, 100)
    tags = dict(pyemv_tlv.decode(f55))
    # a byte every CVN's cryptogram covers (9F10[4] is inside the CVR of each layout)
    index = {"9F26": 7, "9F02": 5, "95": 4, "9F10": 4, "82": 1}[tamper]
    value = bytearray(tags[tamper])
    value[index] ^= 0x01
    tags[tamper] = bytes(value)
    answer = issuer.authorise(bytes(pyemv_tlv.encode(tags)), pan, 1, 100)
    assert answer is not None
    assert (answer.response_code, answer.arqc_valid, answer.issuer_authentication_data) == ("05", False, b"")


def test_wrong_psn_or_cvn_fails_the_arqc_check() -> None:
    card, issuer, pan = setup(10)
    _, _, f55 = go_online(card, 7, 100)
    wrong_psn = issuer.authorise(f55, pan, 2, 100)
    assert wrong_psn is not None and not wrong_psn.arqc_valid
    other_cvn = Issuer({pan: cvn.example_crypto_config(18)}).authorise(f55, pan, 1, 100)
    assert other_cvn is not None and not other_cvn.arqc_valid


def test_a_tc_is_no_arqc_for_authorisation() -> None:
    card, issuer, pan = setup(10)
    values = terminal(100)
    tc = card.generate_ac("TC", cdol_data(values), 3)
    answer = issuer.authorise(field55(values, tc, 3), pan, 1, 100)
    assert answer is not None and not answer.arqc_valid
    assert issuer.verify_cryptogram(field55(values, tc, 3), pan, 1)


def test_published_pboc_request_gets_the_published_arpc() -> None:
    cfg = {
        "cvn": 1,
        "imk_ac": "F0C34A8124CEE0A91A0B034AA97D6EAC",
        "imk_smi": "12B1AC4AF070CC35612BFE2D30AB600D",
        "imk_smc": "D30F45EABC12AC3EF56B0C0D7F8654DE",
    }
    f55 = bytes(
        pyemv_tlv.encode(
            {
                "9F26": h("5D016C91005E7CC2"),
                "9F27": h("80"),
                "9F10": h("07000103A04002010A010000001000D1F61152"),
                "9F37": h("1E78EEBC"),
                "9F36": h("0240"),
                "95": h("0080046000"),
                "9A": h("140701"),
                "9C": h("00"),
                "9F02": h("000000000001"),
                "5F2A": h("0156"),
                "82": h("7D00"),
                "9F1A": h("0156"),
                "9F03": h("000000000000"),
                "9F33": h("60E1C8"),
                "9F34": h("020300"),
                "9F35": h("22"),
                "84": h("A000000333010101"),
            },
        )
    )
    answer = Issuer({"622800": cfg}).authorise(f55, "6228000100001", 1, 1, response_code="01")
    assert answer is not None and answer.arqc_valid
    assert answer.issuer_authentication_data == h("21415243527CE78F") + b"01"


def test_longest_matching_prefix_holds_the_keys() -> None:
    card, _, pan = setup(10)
    _, _, f55 = go_online(card, 9, 100)
    other = {**cvn.example_crypto_config(10), "imk_ac": "00112233445566778899AABBCCDDEEFF"}
    good = cvn.example_crypto_config(10)
    wrong = Issuer({pan[:4]: good, pan[:6]: other}).authorise(f55, pan, 1, 100)
    assert wrong is not None and not wrong.arqc_valid
    right = Issuer({pan[:4]: other, pan[:6]: good}).authorise(f55, pan, 1, 100)
    assert right is not None and right.arqc_valid


# --- response codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"), [(10051, "51"), (55, "55"), (205, "05"), (1000, "00"), (99, "00")]
)
def test_decline_rules_by_the_last_two_digits(amount: int, code: str) -> None:
    card, issuer, pan = setup(18)
    values, _, f55 = go_online(card, 4, amount)
    answer = issuer.authorise(f55, pan, 1, amount)
    assert answer is not None and answer.response_code == code and answer.arqc_valid
    assert card.external_authenticate(answer.issuer_authentication_data) is True
    # even when the terminal wrongly asks for a TC, the card follows the issuer
    second = card.generate_ac("TC", cdol_data(values, code.encode()), 4)
    assert second.cid == (0x40 if code == "00" else 0x00)


def test_forced_response_code_and_custom_rules() -> None:
    card, _, pan = setup(10)
    _, _, f55 = go_online(card, 4, 1051)
    issuer = Issuer({pan[:6]: cvn.example_crypto_config(10)}, decline_rules={})
    assert issuer.authorise(f55, pan, 1, 1051).response_code == "00"  # type: ignore[union-attr]
    assert issuer.authorise(f55, pan, 1, 1051, response_code="91").response_code == "91"  # type: ignore[union-attr]


def test_unknown_card_and_missing_tags() -> None:
    card, issuer, pan = setup(10)
    _, _, f55 = go_online(card, 4, 100)
    unknown = issuer.authorise(f55, "9999990000000001", 1, 100)
    assert unknown is not None and unknown.response_code == "14" and not unknown.arqc_valid
    tags = dict(pyemv_tlv.decode(f55))
    del tags["9F37"]
    missing = issuer.authorise(bytes(pyemv_tlv.encode(tags)), pan, 1, 100)
    assert missing is not None and missing.response_code == "30" and not missing.arqc_valid
    assert issuer.verify_cryptogram(bytes(pyemv_tlv.encode(tags)), pan, 1) is False


# --- faults --------------------------------------------------------------------------


def test_no_answer_fault() -> None:
    card, issuer, pan = setup(10)
    _, _, f55 = go_online(card, 4, 100)
    issuer.faults.no_answer = True
    assert issuer.authorise(f55, pan, 1, 100) is None
    issuer.faults.no_answer = False
    assert issuer.authorise(f55, pan, 1, 100) is not None


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
def test_bad_arpc_fault_fails_issuer_authentication(number: int) -> None:
    card, issuer, pan = setup(number)
    values, _, f55 = go_online(card, 4, 100)
    issuer.faults = IssuerFaults(bad_arpc=True)
    answer = issuer.authorise(f55, pan, 1, 100)
    assert answer is not None and answer.arqc_valid
    assert card.external_authenticate(answer.issuer_authentication_data) is False
    assert card.generate_ac("TC", cdol_data(values, b"00"), 4).cid == 0x00


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
def test_bad_script_mac_fault(number: int) -> None:
    card, issuer, pan = setup(number)
    issuer.queue_script(pan, ScriptRequest.application_block())
    issuer.faults.bad_script_mac = True
    _, _, f55 = go_online(card, 4, 100)
    answer = issuer.authorise(f55, pan, 1, 100)
    assert answer is not None
    [(_, _, [command])] = scripts_of(answer.scripts)
    with pytest.raises(SecureMessagingFailed):
        card.check_script_command(command)


# --- scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(cvn.CRYPTOGRAM_VERSIONS))
def test_scripts_verify_on_the_card_in_terminal_order(number: int) -> None:
    card, issuer, pan = setup(number)
    late = issuer.queue_script(pan, ScriptRequest.pin_change("5791"), ScriptRequest.put_data(0x9F14, h("05")))
    early = issuer.queue_script(pan, ScriptRequest.pin_unblock(), template=0x71)
    last = issuer.queue_script(pan, ScriptRequest.update_record(1, 2, h("5A0812")), template=0x72)
    assert issuer.pending_scripts(pan) == 3
    values, _, f55 = go_online(card, 0x0200, 300)
    answer = issuer.authorise(f55, pan, 1, 300)
    assert answer is not None
    assert answer.script_ids == (early, late, last)
    assert issuer.pending_scripts(pan) == 0
    scripts = scripts_of(answer.scripts)
    assert [(template, script_id) for template, script_id, _ in scripts] == [
        (0x71, early),
        (0x72, late),
        (0x72, last),
    ]
    card.external_authenticate(answer.issuer_authentication_data)
    seen = [card.check_script_command(c) for c in scripts[0][2]]
    card.generate_ac("TC", cdol_data(values, b"00"), 0x0200)
    seen += [card.check_script_command(c) for script in scripts[1:] for c in script[2]]
    assert [(c.name, c.p1, c.p2, c.data if c.ins != 0x24 else None, c.new_pin) for c in seen] == [
        ("PIN CHANGE/UNBLOCK", 0, 0, None, None),
        ("PIN CHANGE/UNBLOCK", 0, 2, None, "5791"),
        ("PUT DATA", 0x9F, 0x14, h("05"), None),
        ("UPDATE RECORD", 2, 0x0C, h("5A0812"), None),
    ]
    again = issuer.authorise(f55, pan, 1, 300)
    assert again is not None and again.scripts == b""


def test_issuer_visa_pin_change_is_byte_for_byte_pyemv() -> None:
    card, issuer, pan = setup(10)
    issuer.queue_script(pan, ScriptRequest.pin_change("2580", current_pin="1234"))
    _, result, f55 = go_online(card, 0x0300, 100)
    answer = issuer.authorise(f55, pan, 1, 100)
    assert answer is not None
    [(_, _, [command])] = scripts_of(answer.scripts)
    imks = (h(cvn.TEST_IMK_AC), h(cvn.TEST_IMK_SMI), h(cvn.TEST_IMK_SMC))
    reference = pyemv_cvn.VisaCVN10(*imks, pan, "01")
    assert command == reference.generate_pin_change_command("2580", result.cryptogram, h("0300"), "1234")
    assert card.check_script_command(command, current_pin="1234").new_pin == "2580"


def test_issuer_mchip_scripts_are_byte_for_byte_pyemv() -> None:
    card, issuer, pan = setup(16)
    issuer.queue_script(pan, ScriptRequest.application_unblock(), ScriptRequest.pin_change("0042"))
    _, result, f55 = go_online(card, 0x0301, 100)
    answer = issuer.authorise(f55, pan, 1, 100)
    assert answer is not None
    [(_, _, [unblock, change])] = scripts_of(answer.scripts)
    imks = (h(cvn.TEST_IMK_AC), h(cvn.TEST_IMK_SMI), h(cvn.TEST_IMK_SMC))
    reference = pyemv_cvn.MasterCardCVN16(*imks, pan, "01")
    ac_0 = result.cryptogram
    ac_1 = (int.from_bytes(ac_0, "big") + 1).to_bytes(8, "big")
    assert unblock == h("8418000008") + reference.generate_command_mac(h("8418000008"), ac_0, h("0301"))
    assert change == reference.generate_pin_change_command("0042", ac_1, h("0301"))


def test_script_requests_refuse_bad_input() -> None:
    _, issuer, pan = setup(10)
    with pytest.raises(CryptoInputError):
        ScriptRequest.pin_change("12a4")
    with pytest.raises(CryptoInputError):
        ScriptRequest.put_data(0x10000, b"")
    with pytest.raises(CryptoInputError):
        ScriptRequest.update_record(31, 1, b"")
    with pytest.raises(CryptoInputError):
        issuer.queue_script(pan, ScriptRequest.card_block(), template=0x70)
    with pytest.raises(CryptoInputError):
        issuer.queue_script(pan)
    with pytest.raises(cvn.CryptoConfigError):
        Issuer({"47617x": cvn.example_crypto_config(10)})


# --- TLV ---------------------------------------------------------------------------------


def test_tlv_codec_agrees_with_pyemv() -> None:
    tags = {"9F26": bytes(8), "DF8101": h("01"), "5A": b"\x11" * 0x90, "9F4E": b"x" * 0x120, "95": b""}
    encoded = bytes(pyemv_tlv.encode(tags))
    assert parse_tlv(encoded) == {int(tag, 16): value for tag, value in tags.items()}
    assert b"".join(encode_tlv(int(tag, 16), value) for tag, value in tags.items()) == encoded
    assert parse_tlv(b"\x00\x00" + encode_tlv(0x9F27, h("80")) + b"\xff") == {0x9F27: h("80")}


@pytest.mark.parametrize(
    ("data", "offset", "tag"),
    [
        ("9F", 0, None),
        ("9F2608" + "00" * 7, 0, 0x9F26),
        ("9F27", 2, 0x9F27),  # where the length should be
        ("9F278180", 0, 0x9F27),  # 128 bytes announced, none there
        ("9F2780", 2, 0x9F27),
        ("9F2784FFFFFFFF00", 2, 0x9F27),
        ("9F27018095", 5, 0x95),
        ("DF818181818101", 0, None),
    ],
)
def test_malformed_field55_names_the_offset(data: str, offset: int, tag: int | None) -> None:
    with pytest.raises(Field55Error) as exc:
        parse_tlv(h(data))
    assert (exc.value.offset, exc.value.tag) == (offset, tag)


def test_malformed_field55_is_an_exception_from_authorise() -> None:
    _, issuer, pan = setup(10)
    with pytest.raises(Field55Error):
        issuer.authorise(h("9F2608"), pan, 1, 100)


def test_repr_shows_no_key() -> None:
    _, issuer, _ = setup(10)
    assert cvn.TEST_IMK_AC not in repr(issuer) and "faults" in repr(issuer)


# --- property: any card of the issuer's range round-trips -----------------------------------


@settings(max_examples=15, deadline=None)
@given(
    number=st.sampled_from(sorted(cvn.CRYPTOGRAM_VERSIONS)),
    suffix=st.text(alphabet="0123456789", min_size=7, max_size=13),
    psn=st.integers(0, 99),
    atc=st.integers(1, 0xFFFF),
    amount=st.integers(0, 10**9),
    un=st.binary(min_size=4, max_size=4),
    pin=st.text(alphabet="0123456789", min_size=4, max_size=12),
)
def test_round_trip_property(
    number: int, suffix: str, psn: int, atc: int, amount: int, un: bytes, pin: str
) -> None:
    pan = "622848" + suffix
    cfg = cvn.example_crypto_config(number)
    card = CardCrypto(cfg, pan, psn, cdol1=CDOL1, cdol2=CDOL2, aip=AIP)
    issuer = Issuer({"622848": cfg})
    issuer.queue_script(pan, ScriptRequest.pin_change(pin), template=0x71)
    values = terminal(amount, un.hex())
    card.begin_transaction(atc)
    arqc = card.generate_ac("ARQC", cdol_data(values), atc)
    answer = issuer.authorise(field55(values, arqc, atc), pan, psn, amount)
    assert answer is not None and answer.arqc_valid
    assert card.external_authenticate(answer.issuer_authentication_data) is True
    [(_, _, [command])] = scripts_of(answer.scripts)
    assert card.check_script_command(command).new_pin == pin
    final = card.generate_ac("TC", cdol_data(values, answer.response_code.encode()), atc)
    assert final.cid == (0x40 if answer.response_code == "00" else 0x00)
    assert issuer.verify_cryptogram(field55(values, final, atc), pan, psn)
