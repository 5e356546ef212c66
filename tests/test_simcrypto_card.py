"""The simulated card's cryptography (sim/cardcrypto.py): cryptograms, CVR, issuer
authentication and script secure messaging, with pyemv playing the issuer."""

from __future__ import annotations

from typing import Any

import pytest
from pyemv import cvn as pyemv_cvn

from sim import cvn
from sim.cardcrypto import (
    CardCrypto,
    CardCryptoStatus,
    ConditionsNotSatisfied,
    IncorrectP1P2,
    SecureMessagingFailed,
    WrongLength,
)
from sim.emvcrypto import CryptoInputError, SimCryptoError
from sim.errors import SimError, SwError

h = bytes.fromhex

PAN = "4761739001010010"
PSN = 1
AIP = h("7C00")
# A CDOL1 with tags the cryptogram does not use in between (9F35 terminal type, 9F34 CVM results).
CDOL1 = h("9F02069F03069F1A0295059F35015F2A029A039C019F37049F3403")
CDOL2 = h("8A029F02069F03069F1A0295055F2A029A039C019F3704")
TERMINAL = {
    0x9F02: h("000000012345"),
    0x9F03: h("000000000000"),
    0x9F1A: h("0156"),
    0x95: h("0000008000"),
    0x5F2A: h("0156"),
    0x9A: h("250307"),
    0x9C: h("00"),
    0x9F37: h("CAFEBABE"),
}


def cdol1_data(terminal: dict[int, bytes] = TERMINAL) -> bytes:
    t = terminal
    head = t[0x9F02] + t[0x9F03] + t[0x9F1A] + t[0x95]
    return head + h("22") + t[0x5F2A] + t[0x9A] + t[0x9C] + t[0x9F37] + h("1F0302")


def cdol2_data(arc: bytes, terminal: dict[int, bytes] = TERMINAL) -> bytes:
    return arc + b"".join(terminal[tag] for tag, _ in cvn.TERMINAL_AC_TAGS)


def new_card(number: int, **extra: object) -> CardCrypto:
    cfg: dict[str, object] = {**cvn.example_crypto_config(number), **extra}
    return CardCrypto(cfg, PAN, PSN, cdol1=CDOL1, cdol2=CDOL2, aip=AIP)


def pyemv_issuer(number: int) -> Any:
    cls = {10: pyemv_cvn.VisaCVN10, 18: pyemv_cvn.VisaCVN18, 16: pyemv_cvn.MasterCardCVN16}[number]
    imks = (h(cvn.TEST_IMK_AC), h(cvn.TEST_IMK_SMI), h(cvn.TEST_IMK_SMC))
    return cls(*imks, PAN, f"{PSN:02d}")


def pyemv_kwargs(atc: int, terminal: dict[int, bytes] = TERMINAL) -> dict[str, bytes]:
    t = terminal
    return {
        "tag_9f02": t[0x9F02],
        "tag_9f03": t[0x9F03],
        "tag_9f1a": t[0x9F1A],
        "tag_95": t[0x95],
        "tag_5f2a": t[0x5F2A],
        "tag_9a": t[0x9A],
        "tag_9c": t[0x9C],
        "tag_9f37": t[0x9F37],
        "tag_82": AIP,
        "tag_9f36": atc.to_bytes(2, "big"),
    }


def visa_arpc(number: int, arqc: bytes, atc: int, code: bytes = b"00") -> bytes:
    issuer = pyemv_issuer(number)
    if number == 18:
        csu = h("00800000") if code == b"00" else h("00000000")
        return bytes(issuer.generate_arpc(arqc, atc.to_bytes(2, "big"), csu)) + csu
    return bytes(issuer.generate_arpc(arqc, code)) + code


# --- cryptograms ----------------------------------------------------------------------


@pytest.mark.parametrize("number", [10, 18, 16])
def test_arqc_is_what_pyemv_computes_from_the_cdol_data(number: int) -> None:
    card = new_card(number)
    card.begin_transaction(0x21)
    result = card.generate_ac("ARQC", cdol1_data(), 0x21)
    assert result.cid == 0x80
    issuer = pyemv_issuer(number)
    if number == 10:
        expected = issuer.generate_ac(**pyemv_kwargs(0x21), cvr=result.iad[3:7])
    elif number == 18:
        expected = issuer.generate_ac(**pyemv_kwargs(0x21), tag_9f10=result.iad)
    else:
        expected = issuer.generate_ac(**pyemv_kwargs(0x21), cvr=result.iad[2:8])
    assert result.cryptogram == expected
    assert card.last_arqc == expected


@pytest.mark.parametrize(
    ("requested", "decision", "cid", "visa_cvr_byte2"),
    [
        ("ARQC", None, 0x80, 0xA0),
        ("TC", None, 0x40, 0x90),
        ("AAC", None, 0x00, 0x80),
        ("TC", "ARQC", 0x80, 0xA0),
        ("TC", "AAC", 0x00, 0x80),
        ("AAC", "TC", 0x00, 0x80),
        ("ARQC", "TC", 0x80, 0xA0),
    ],
)
def test_first_generate_ac_never_answers_stronger_than_asked(
    requested: str, decision: str | None, cid: int, visa_cvr_byte2: int
) -> None:
    card = new_card(10)
    result = card.generate_ac(requested, cdol1_data(), 1, card_decision=decision)
    assert result.cid == cid
    # 06 DKI CVN | 03 byte2 byte3 byte4: new card, nothing else
    assert result.iad == bytes([0x06, 0x01, 0x0A, 0x03, visa_cvr_byte2, 0x10, 0x00])


def test_mchip_iad_layout_on_first_generate_ac() -> None:
    card = new_card(17)
    result = card.generate_ac("ARQC", cdol1_data(), 1)
    # KDI CVN | CVR: ARQC, PTC 3, offline PIN not performed | DAC | counters
    assert result.iad == h("0111") + h("A00003200000") + h("0000") + h("00000000000000FF")


def test_pboc_iad_layout_on_first_generate_ac() -> None:
    card = new_card(1)
    assert card.generate_ac("ARQC", cdol1_data(), 1).iad == h("0701010" + "3A0100001")


@pytest.mark.parametrize(
    ("verified", "tries", "visa_byte2", "visa_byte3", "mchip_byte1", "mchip_byte3", "mchip_byte4"),
    [
        (True, 3, 0xA4, 0x10, 0xA5, 0x03, 0x00),
        (False, 2, 0xA6, 0x10, 0xA4, 0x02, 0x10),
        (False, 0, 0xA6, 0x50, 0xA4, 0x00, 0x18),
    ],
)
def test_offline_pin_result_shows_in_the_cvr(
    verified: bool,
    tries: int,
    visa_byte2: int,
    visa_byte3: int,
    mchip_byte1: int,
    mchip_byte3: int,
    mchip_byte4: int,
) -> None:
    visa, mchip = new_card(10), new_card(16)
    for card in (visa, mchip):
        card.begin_transaction(9)
        card.note_offline_pin(verified, tries)
    visa_iad = visa.generate_ac("ARQC", cdol1_data(), 9).iad
    mchip_iad = mchip.generate_ac("ARQC", cdol1_data(), 9).iad
    assert (visa_iad[4], visa_iad[5]) == (visa_byte2, visa_byte3)
    assert (mchip_iad[2], mchip_iad[4], mchip_iad[5]) == (mchip_byte1, mchip_byte3, mchip_byte4)


def test_offline_pin_noted_before_an_implicit_transaction_lands_in_it() -> None:
    card = new_card(10)
    card.generate_ac("TC", cdol1_data(), 1)
    card.note_offline_pin(True, 3)  # VERIFY of the next transaction, no begin_transaction
    assert card.generate_ac("ARQC", cdol1_data(), 2).iad[4] == 0xA4


def test_enciphered_offline_pin_in_mchip_cvr() -> None:
    card = new_card(16)
    card.begin_transaction(4)
    card.note_offline_pin(True, 3, enciphered=True)
    assert card.generate_ac("ARQC", cdol1_data(), 4).iad[2] == 0xA7


# --- issuer authentication and the second GENERATE AC ------------------------------------


@pytest.mark.parametrize("number", [10, 18])
def test_good_arpc_then_tc(number: int) -> None:
    card = new_card(number)
    arqc = card.generate_ac("ARQC", cdol1_data(), 0x30).cryptogram
    assert card.external_authenticate(visa_arpc(number, arqc, 0x30)) is True
    assert card.issuer_authentication is True
    second = card.generate_ac("TC", cdol2_data(b"00"), 0x30)
    assert second.cid == 0x40
    assert second.iad[4] == 0x60  # TC in the 2nd, ARQC in the 1st
    issuer = pyemv_issuer(number)
    if number == 10:
        tc = issuer.generate_ac(**pyemv_kwargs(0x30), cvr=second.iad[3:7])
    else:
        tc = issuer.generate_ac(**pyemv_kwargs(0x30), tag_9f10=second.iad)
    assert second.cryptogram == tc


def test_mchip_arpc_from_pyemv_verifies() -> None:
    card = new_card(16)
    arqc = card.generate_ac("ARQC", cdol1_data(), 0x30).cryptogram
    arpc = pyemv_issuer(16).generate_arpc(arqc, b"00")
    assert card.verify_arpc(arpc, b"00") is True
    second = card.generate_ac("TC", cdol2_data(b"00"), 0x30)
    assert second.cid == 0x40 and second.iad[2:4] == h("6010")


@pytest.mark.parametrize("tamper", ["arpc", "arc"])
def test_tampered_arpc_fails_and_the_card_declines(tamper: str) -> None:
    card = new_card(10)
    arqc = card.generate_ac("ARQC", cdol1_data(), 5).cryptogram
    data = visa_arpc(10, arqc, 5)
    data = bytes([data[0] ^ 1]) + data[1:] if tamper == "arpc" else data[:8] + b"01"
    assert card.external_authenticate(data) is False
    second = card.generate_ac("TC", cdol2_data(b"00"), 5)
    assert second.cid == 0x00
    assert second.iad[4] == 0x28  # AAC in the 2nd, ARQC in the 1st, issuer authentication failed


def test_card_may_be_told_to_approve_despite_failed_issuer_authentication() -> None:
    card = new_card(10, aac_on_issuer_auth_failure=False)
    card.generate_ac("ARQC", cdol1_data(), 5)
    assert card.external_authenticate(bytes(10)) is False
    assert card.generate_ac("TC", cdol2_data(b"00"), 5).cid == 0x40


def test_issuer_decline_with_a_good_arpc_turns_a_tc_request_into_aac() -> None:
    card = new_card(10)
    arqc = card.generate_ac("ARQC", cdol1_data(), 6).cryptogram
    assert card.external_authenticate(visa_arpc(10, arqc, 6, b"51")) is True
    assert card.generate_ac("TC", cdol2_data(b"00"), 6).cid == 0x00


def test_issuer_authentication_data_inside_cdol2_is_checked() -> None:
    cdol2 = CDOL2 + h("910A")
    card = CardCrypto(cvn.example_crypto_config(16), PAN, PSN, cdol1=CDOL1, cdol2=cdol2, aip=AIP)
    arqc = card.generate_ac("ARQC", cdol1_data(), 7).cryptogram
    arpc = pyemv_issuer(16).generate_arpc(arqc, b"00")
    assert card.generate_ac("TC", cdol2_data(b"00") + arpc + b"00", 7).cid == 0x40
    assert card.issuer_authentication is True
    other = CardCrypto(cvn.example_crypto_config(16), PAN, PSN, cdol1=CDOL1, cdol2=cdol2, aip=AIP)
    other.generate_ac("ARQC", cdol1_data(), 8)  # another ATC, so another ARQC
    assert other.generate_ac("TC", cdol2_data(b"00") + arpc + b"00", 8).cid == 0x00
    assert other.issuer_authentication is False


def test_unable_to_go_online_is_marked_and_offline_approval_counted() -> None:
    card = new_card(16)
    card.generate_ac("ARQC", cdol1_data(), 8)
    second = card.generate_ac("TC", cdol2_data(b"Y3"), 8)
    assert second.cid == 0x40
    assert second.iad[5] & 0x40  # CVR byte 4: unable to go online
    # counters are reported as they stood when the transaction began
    assert second.iad[10:18] == h("00000000000000FF")
    assert card.generate_ac("ARQC", cdol1_data(), 9).iad[10:18] == h("00000001234501FF")
    declined = new_card(10)
    declined.generate_ac("ARQC", cdol1_data(), 8)
    result = declined.generate_ac("TC", cdol2_data(b"Z3"), 8)
    assert result.cid == 0x00 and result.iad[4] & 0x01


def test_offline_tc_counts_and_online_approval_resets_the_counters() -> None:
    card = new_card(17)
    card.generate_ac("TC", cdol1_data(), 1)
    card.generate_ac("TC", cdol1_data(), 2)
    iad = card.generate_ac("ARQC", cdol1_data(), 3).iad
    assert iad[10:18] == h("00000002469002FF")
    arqc = card.last_arqc
    assert arqc is not None
    card.verify_arpc(pyemv_issuer(16).generate_arpc(arqc, b"00"), b"00")
    card.generate_ac("TC", cdol2_data(b"00"), 3)
    assert card.generate_ac("ARQC", cdol1_data(), 4).iad[10:18] == h("00000000000000FF")


def test_history_bits_of_the_next_transaction() -> None:
    card = new_card(10)
    card.generate_ac("ARQC", cdol1_data(), 1)  # online, never completed
    assert card.generate_ac("ARQC", cdol1_data(), 2).iad[5] == 0x90  # last online not completed, new card
    assert card.external_authenticate(bytes(10)) is False
    card.generate_ac("AAC", cdol2_data(b"00"), 2)
    assert card.generate_ac("ARQC", cdol1_data(), 3).iad[5] == 0x18  # issuer auth failed last online
    card.generate_ac("AAC", cdol2_data(b"Z1"), 3)
    assert card.generate_ac("ARQC", cdol1_data(), 4).iad[5] == 0x14  # issuer auth not performed
    arqc = card.last_arqc
    assert arqc is not None
    card.external_authenticate(visa_arpc(10, arqc, 4))
    card.generate_ac("TC", cdol2_data(b"00"), 4)
    assert card.generate_ac("ARQC", cdol1_data(), 5).iad[5] == 0x00  # been online: no longer new


# --- transaction state errors --------------------------------------------------------------


def test_out_of_order_commands_answer_6985() -> None:
    card = new_card(10)
    with pytest.raises(ConditionsNotSatisfied) as exc:
        card.external_authenticate(bytes(10))
    assert exc.value.sw == 0x6985
    card.generate_ac("TC", cdol1_data(), 1)
    with pytest.raises(ConditionsNotSatisfied):
        card.generate_ac("TC", cdol2_data(b"00"), 1)  # the transaction ended offline
    card.generate_ac("ARQC", cdol1_data(), 2)
    with pytest.raises(ConditionsNotSatisfied):
        card.generate_ac("ARQC", cdol2_data(b"00"), 2)
    card.external_authenticate(bytes(10))
    with pytest.raises(ConditionsNotSatisfied):
        card.external_authenticate(bytes(10))
    card.generate_ac("AAC", cdol2_data(b"00"), 2)
    with pytest.raises(ConditionsNotSatisfied):
        card.generate_ac("AAC", cdol2_data(b"00"), 2)


def test_wrong_lengths_and_p1_answer_status_words() -> None:
    card = new_card(10)
    with pytest.raises(WrongLength) as exc:
        card.generate_ac("ARQC", cdol1_data()[:-1], 1)
    assert exc.value.sw == 0x6700
    with pytest.raises(IncorrectP1P2):
        card.generate_ac("CDA", cdol1_data(), 1)
    card.generate_ac("ARQC", cdol1_data(), 1)
    with pytest.raises(WrongLength):
        card.external_authenticate(bytes(9))


def test_a_cdol1_without_the_cryptogram_tags_is_a_profile_error() -> None:
    card = CardCrypto(cvn.example_crypto_config(10), PAN, PSN, cdol1=h("9F02069F3704"), aip=AIP)
    with pytest.raises(cvn.CryptoConfigError, match="9F03"):
        card.generate_ac("ARQC", bytes(10), 1)


def test_missing_aip_or_cdol_is_a_programming_error() -> None:
    card = CardCrypto(cvn.example_crypto_config(10), PAN, PSN)
    with pytest.raises(CryptoInputError):
        card.generate_ac("ARQC", cdol1_data(), 1, cdol=CDOL1)
    with pytest.raises(CryptoInputError):
        card.generate_ac("ARQC", cdol1_data(), 1, aip=AIP)
    assert card.generate_ac("ARQC", cdol1_data(), 1, cdol=CDOL1, aip=AIP).cid == 0x80


# --- issuer scripts -------------------------------------------------------------------


def online(card: CardCrypto, atc: int) -> bytes:
    card.begin_transaction(atc)
    return card.generate_ac("ARQC", cdol1_data(), atc).cryptogram


@pytest.mark.parametrize("number", [10, 18])
def test_visa_scripts_from_pyemv_verify(number: int) -> None:
    card = new_card(number)
    arqc = online(card, 0x44)
    issuer = pyemv_issuer(number)
    atc = h("0044")
    block = h("841E000008") + issuer.generate_command_mac(h("841E000008"), arqc, atc)
    command = card.check_script_command(block)
    assert (command.name, command.ins, command.data) == ("APPLICATION BLOCK", 0x1E, b"")
    assert command.new_pin is None
    change = issuer.generate_pin_change_command("8642", arqc, atc)
    assert card.check_script_command(change).new_pin == "8642"
    with_current = issuer.generate_pin_change_command("1357", arqc, atc, "8642")
    assert card.check_script_command(with_current, current_pin="8642").new_pin == "1357"
    assert card.script_counter == 3


def test_mchip_scripts_from_pyemv_verify_in_order_only() -> None:
    card = new_card(16)
    arqc = online(card, 0x45)
    issuer = pyemv_issuer(16)
    atc = h("0045")

    def arqc_plus(i: int) -> bytes:
        return (int.from_bytes(arqc, "big") + i).to_bytes(8, "big")

    first = h("8418000008") + issuer.generate_command_mac(h("8418000008"), arqc_plus(0), atc)
    second = issuer.generate_pin_change_command("0000", arqc_plus(1), atc)
    assert card.check_script_command(first).name == "APPLICATION UNBLOCK"
    assert card.check_script_command(second).new_pin == "0000"
    again = new_card(16)
    online(again, 0x45)
    with pytest.raises(SecureMessagingFailed):
        again.check_script_command(second)  # presented as command 0, it was MAC'd as command 1


def test_bad_script_mac_is_6988_and_reported_in_the_next_cvr() -> None:
    card = new_card(10)
    arqc = online(card, 0x50)
    good = h("8418000008") + pyemv_issuer(10).generate_command_mac(h("8418000008"), arqc, h("0050"))
    card.check_script_command(good)
    with pytest.raises(SecureMessagingFailed) as exc:
        card.check_script_command(good[:-1] + bytes([good[-1] ^ 1]))
    assert exc.value.sw == 0x6988
    iad = card.generate_ac("ARQC", cdol1_data(), 0x51).iad
    assert iad[6] == 0x18  # one script command processed, script processing failed


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        (h("8418"), 0x6700),
        (h("8418000008") + bytes(7), 0x6700),
        (h("8418000004") + bytes(4), 0x6700),  # Lc below the 8-byte MAC
        (h("8018000008") + bytes(8), 0x6987),  # no secure messaging in CLA
    ],
)
def test_malformed_script_commands(apdu: bytes, sw: int) -> None:
    card = new_card(10)
    online(card, 3)
    with pytest.raises(CardCryptoStatus) as exc:
        card.check_script_command(apdu)
    assert exc.value.sw == sw


def test_scripts_need_an_arqc_in_this_transaction() -> None:
    card = new_card(10)
    with pytest.raises(ConditionsNotSatisfied):
        card.check_script_command(h("8418000008") + bytes(8))
    card.generate_ac("TC", cdol1_data(), 1)
    with pytest.raises(ConditionsNotSatisfied):
        card.check_script_command(h("8418000008") + bytes(8))


def test_pin_change_with_current_pin_needs_it_from_the_engine() -> None:
    card = new_card(10)
    arqc = online(card, 0x60)
    command = pyemv_issuer(10).generate_pin_change_command("1357", arqc, h("0060"), "8642")
    with pytest.raises(CryptoInputError):
        card.check_script_command(command)


# --- CDOL and repr ----------------------------------------------------------------------


def test_a_malformed_cdol_is_a_profile_error() -> None:
    card = CardCrypto(cvn.example_crypto_config(10), PAN, PSN, cdol1=h("9F02069F"), aip=AIP)
    with pytest.raises(CryptoInputError, match="CDOL1"):
        card.generate_ac("ARQC", bytes(6), 1)


def test_repr_masks_the_pan_and_shows_no_key() -> None:
    text = repr(new_card(10))
    assert PAN not in text and "476173******0010" in text
    assert cvn.TEST_IMK_AC not in text


def test_errors_belong_to_the_sim_hierarchy() -> None:
    assert issubclass(SimCryptoError, SimError)
    assert issubclass(cvn.CryptoConfigError, SimError)
    error = SecureMessagingFailed("bad MAC")
    assert isinstance(error, SwError) and isinstance(error, CardCryptoStatus)
    assert (error.sw, SecureMessagingFailed("x", sw=0x6987).sw, ConditionsNotSatisfied("y").sw) == (
        0x6988,
        0x6987,
        0x6985,
    )
