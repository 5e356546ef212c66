"""GENERATE AC, EXTERNAL AUTHENTICATE, CDA, card risk rules, issuer scripts, the transaction log.

Cryptograms, ARPCs and script MACs are checked with pyemv (an independent
implementation of the Visa CVN 10 and M/Chip CVN 16 algorithms), never with
the simulator's own crypto.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from pyemv import cvn as pyemv_cvn

from sim import pki, tlv
from sim.card import Card, load_profile_card
from sim.errors import CardAbsent
from sim.profile import profile_from_dict, read_profile_json
from sim.reader import SimReader

IMK_AC = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IMK_SMI = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
IMK_SMC = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")
AAC, TC, ARQC = 0x00, 0x40, 0x80


def counting_rng() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


def sha1(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    digest.update(data)
    return digest.finalize()


TERMINAL = {
    0x9F02: bytes.fromhex("000000001500"),  # 15.00
    0x9F03: bytes(6),
    0x9F1A: bytes.fromhex("0156"),
    0x95: bytes(5),
    0x5F2A: bytes.fromhex("0156"),
    0x9A: bytes.fromhex("251126"),
    0x9C: b"\x00",
    0x9F37: bytes.fromhex("A1B2C3D4"),
    0x9F35: b"\x22",
    0x9F45: b"\x00\x00",
    0x9F4C: bytes(8),
    0x9F34: bytes.fromhex("1F0302"),
    0x9F21: bytes.fromhex("101112"),
    0x9F4E: b"TEST MERCHANT".ljust(20, b" "),
    0x9F7A: b"\x00",
}


@dataclass
class Terminal:
    """Just enough terminal to drive a transaction by hand (following 61xx and 6Cxx like a T=0 TTL)."""

    card: Card
    aid: bytes
    values: dict[int, bytes] = field(default_factory=lambda: dict(TERMINAL))
    reader: SimReader | None = None

    def transmit(self, apdu: bytes) -> bytes:
        return self.reader.transmit(apdu) if self.reader is not None else self.card.transmit(apdu)

    def send(self, apdu: bytes) -> tuple[bytes, int]:
        response = self.transmit(apdu)
        sw = int.from_bytes(response[-2:], "big")
        if sw >> 8 == 0x6C:
            response = self.transmit(apdu[:4] + bytes([sw & 0xFF]))
            sw = int.from_bytes(response[-2:], "big")
        if sw >> 8 == 0x61:
            response = self.transmit(bytes([0x00, 0xC0, 0x00, 0x00, sw & 0xFF]))
            sw = int.from_bytes(response[-2:], "big")
        return response[:-2], sw

    def dol_data(self, dol: bytes) -> bytes:
        return b"".join(self.values.get(tag, bytes(length)) for tag, length in tlv.parse_dol(dol))

    def start(self) -> int:
        """SELECT and GET PROCESSING OPTIONS; returns the ATC of the transaction."""
        self.card.power_on()
        _, sw = self.send(bytes([0x00, 0xA4, 0x04, 0x00, len(self.aid)]) + self.aid + b"\x00")
        assert sw == 0x9000
        app = next(a for a in self.card.apps if a.aid == self.aid)
        self.app = app
        body = tlv.encode(0x83, self.dol_data(app.profile.pdol))
        _, sw = self.send(bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00")
        assert sw == 0x9000
        return app.atc

    def generate_ac(self, p1: int, second: bool = False) -> tuple[dict[int, bytes], int]:
        dol = self.app.profile.cdol2 if second else self.app.profile.cdol1
        data = self.dol_data(dol)
        response, sw = self.send(bytes([0x80, 0xAE, p1, 0x00, len(data)]) + data + b"\x00")
        if sw != 0x9000:
            return {}, sw
        [(tag, value)] = tlv.parse(response)
        if tag == 0x80:  # format 1: CID || ATC || AC || IAD
            return {0x9F27: value[:1], 0x9F36: value[1:3], 0x9F26: value[3:11], 0x9F10: value[11:]}, sw
        assert tag == 0x77
        return tlv.parse_to_dict(value), sw

    def external_authenticate(self, data: bytes) -> int:
        return self.send(bytes([0x00, 0x82, 0x00, 0x00, len(data)]) + data)[1]

    def get_data(self, tag: int) -> bytes:
        response, sw = self.send(bytes([0x80, 0xCA, tag >> 8, tag & 0xFF, 0x00]))
        assert sw == 0x9000
        return tlv.parse_to_dict(response)[tag]


def terminal(profile: str, aid: str, **changes: Any) -> Terminal:
    if changes:
        raw = read_profile_json(profile)
        for key, value in changes.items():
            if key == "faults":
                raw["faults"] = value
            else:
                raw["applications"][0][key] = {**raw["applications"][0].get(key, {}), **value}
        card = Card(profile_from_dict(profile, raw), rng=counting_rng())
    else:
        card = load_profile_card(profile, rng=counting_rng())
    return Terminal(card, bytes.fromhex(aid))


def visa_terminal(**changes: Any) -> Terminal:
    return terminal("visa-credit", "A0000000031010", **changes)


def visa_issuer() -> Any:
    return pyemv_cvn.VisaCVN10(IMK_AC, IMK_SMI, IMK_SMC, "4761739001010010", "01")


def reference_ac(
    issuer: Any, aip: str, cvr: bytes, result: dict[int, bytes], values: dict[int, bytes]
) -> bytes:
    """The cryptogram pyemv computes from the terminal data sent and the card's ATC and CVR."""
    ac: bytes = issuer.generate_ac(
        values[0x9F02],
        values[0x9F03],
        values[0x9F1A],
        values[0x95],
        values[0x5F2A],
        values[0x9A],
        values[0x9C],
        values[0x9F37],
        bytes.fromhex(aip),
        result[0x9F36],
        cvr,
    )
    return ac


def visa_ac(result: dict[int, bytes], values: dict[int, bytes]) -> bytes:
    """The cryptogram pyemv computes for this response (Visa CVN 10: the CVR is IAD bytes 4-7)."""
    return reference_ac(visa_issuer(), "3C00", result[0x9F10][3:7], result, values)


# --- Visa: online with EXTERNAL AUTHENTICATE -------------------------------------------------------------


def test_visa_online_approval_with_external_authenticate() -> None:
    term = visa_terminal()
    atc = term.start()
    first, sw = term.generate_ac(ARQC)
    assert sw == 0x9000
    assert first[0x9F27] == bytes([ARQC])
    assert int.from_bytes(first[0x9F36], "big") == atc
    assert first[0x9F10][:3] == bytes.fromhex("06010A")  # Visa IAD: length, DKI, CVN 10
    assert first[0x9F26] == visa_ac(first, term.values)
    arpc = visa_issuer().generate_arpc(first[0x9F26], b"00")
    assert term.external_authenticate(arpc + b"00") == 0x9000
    term.values[0x8A] = b"00"
    second, sw = term.generate_ac(TC, second=True)
    assert sw == 0x9000 and second[0x9F27] == bytes([TC])
    assert second[0x9F26] == visa_ac(second, term.values)
    assert term.get_data(0x9F13) == atc.to_bytes(2, "big")  # last online ATC register
    assert term.generate_ac(TC, second=True)[1] == 0x6985  # no third cryptogram


def test_wrong_arpc_is_6300_and_the_card_declines() -> None:
    term = visa_terminal()
    atc = term.start()
    term.generate_ac(ARQC)
    assert term.external_authenticate(bytes(8) + b"00") == 0x6300
    assert term.external_authenticate(bytes(8) + b"00") == 0x6985  # only once
    term.values[0x8A] = b"00"
    second, _ = term.generate_ac(TC, second=True)
    assert second[0x9F27] == bytes([AAC])
    assert term.get_data(0x9F13) != atc.to_bytes(2, "big")


def test_issuer_approval_without_issuer_authentication_is_declined_by_the_card() -> None:
    term = visa_terminal()
    term.start()
    term.generate_ac(ARQC)
    term.values[0x8A] = b"00"
    second, _ = term.generate_ac(TC, second=True)
    assert second[0x9F27] == bytes([AAC])


@pytest.mark.parametrize(
    ("profile", "aid", "expected"),
    [
        ("visa-credit", "A0000000031010", TC),  # offline allowed: approves offline
        ("unionpay-debit", "A000000333010101", AAC),  # debit never approves offline
    ],
)
def test_unable_to_go_online(profile: str, aid: str, expected: int) -> None:
    term = terminal(profile, aid)
    term.start()
    term.values[0x95] = bytes.fromhex("0000008000")  # so that even Visa goes online first
    first, _ = term.generate_ac(TC)
    assert first[0x9F27] == bytes([ARQC])
    term.values[0x8A] = b"Y3"  # unable to go online, the terminal would approve offline
    second, sw = term.generate_ac(TC, second=True)
    assert sw == 0x9000 and second[0x9F27] == bytes([expected])


def test_generate_ac_sequence_errors() -> None:
    term = visa_terminal()
    term.card.power_on()
    term.send(bytes.fromhex("00A4040007A000000003101000"))
    term.app = term.card.apps[0]
    assert term.generate_ac(ARQC)[1] == 0x6985  # before GPO
    term.start()
    assert term.send(bytes.fromhex("80AEC00000"))[1] == 0x6A86  # RFU cryptogram type
    assert term.send(bytes.fromhex("80AE80000400000000 00"))[1] == 0x6700  # not the CDOL1 length
    assert term.external_authenticate(bytes(10)) == 0x6985  # no ARQC yet
    term.generate_ac(ARQC)
    assert term.generate_ac(ARQC, second=True)[1] == 0x6A86  # second asks for TC or AAC
    assert term.external_authenticate(bytes(7)) == 0x6700


# --- card risk management --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "tvr", "requested", "expected"),
    [
        ("000000001500", "0000000000", TC, TC),  # small, clean: offline approval
        ("000000001500", "0000000800", TC, ARQC),  # TVR not zero: online
        ("000000020000", "0000000000", TC, ARQC),  # above the card's offline limit (100.00)
        ("000000001500", "0000000000", ARQC, ARQC),
        ("000000001500", "0000000000", AAC, AAC),
    ],
)
def test_first_cryptogram_follows_the_card_risk_rules(
    amount: str, tvr: str, requested: int, expected: int
) -> None:
    term = visa_terminal()
    term.values[0x9F02] = bytes.fromhex(amount)
    term.values[0x95] = bytes.fromhex(tvr)
    term.start()
    first, sw = term.generate_ac(requested)
    assert sw == 0x9000
    assert first[0x9F27] == bytes([expected])
    assert first[0x9F26] == visa_ac(first, term.values)


def test_consecutive_offline_limit_sends_the_card_online() -> None:
    term = visa_terminal()
    answers = []
    for _ in range(7):
        term.start()
        answers.append(term.generate_ac(TC)[0][0x9F27][0])
    assert answers == [TC, TC, TC, TC, ARQC, ARQC, ARQC]  # atc 17..: limit 5 since last online ATC 15


def test_debit_card_never_approves_offline() -> None:
    term = terminal("unionpay-debit", "A000000333010101")
    term.start()
    first, _ = term.generate_ac(TC)
    assert first[0x9F27] == bytes([ARQC])


@pytest.mark.parametrize(
    ("fault", "which"), [("aac_on_first_generate_ac", 1), ("aac_on_second_generate_ac", 2)]
)
def test_aac_fault_switches(fault: str, which: int) -> None:
    term = visa_terminal(faults={fault: True})
    term.start()
    first, _ = term.generate_ac(ARQC)
    if which == 1:
        assert first[0x9F27] == bytes([AAC])
        return
    assert first[0x9F27] == bytes([ARQC])
    arpc = visa_issuer().generate_arpc(first[0x9F26], b"00")
    assert term.external_authenticate(arpc + b"00") == 0x9000
    term.values[0x8A] = b"00"
    second, _ = term.generate_ac(TC, second=True)
    assert second[0x9F27] == bytes([AAC])  # the host approved, the card refuses
    assert second[0x9F26] == visa_ac(second, term.values)


def test_bad_cryptogram_fault() -> None:
    term = visa_terminal(faults={"bad_cryptogram": True})
    term.start()
    first, _ = term.generate_ac(ARQC)
    assert first[0x9F26] != visa_ac(first, term.values)


def test_card_pulled_before_the_second_generate_ac() -> None:
    term = visa_terminal(faults={"remove_before_second_generate_ac": True})
    term.reader = SimReader(term.card)
    term.reader.power_on()
    term.start()
    atc = term.app.atc
    term.generate_ac(ARQC)
    with pytest.raises(CardAbsent):
        term.generate_ac(TC, second=True)
    assert not term.reader.card_present
    assert term.app.atc == atc


# --- Mastercard: CDA and the ARPC inside CDOL2 ------------------------------------------------------------


def mc_issuer() -> Any:
    return pyemv_cvn.MasterCardCVN16(IMK_AC, IMK_SMI, IMK_SMC, "5413330089010434", "00")


def recover(signature: bytes, numbers: rsa.RSAPublicNumbers) -> bytes:
    size = len(signature)
    return pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(size, "big")


def check_cda(term: Terminal, result: dict[int, bytes], cdol_data: bytes, atc: int) -> bytes:
    """Verify a CDA signature as a terminal would (Book 2 6.6.2); returns the AC inside it."""
    numbers = (
        pki.load_private_key(pki.icc_key_path("mastercard-credit", term.aid)).public_key().public_numbers()
    )
    recovered = recover(result[0x9F4B], numbers)
    assert recovered[0] == 0x6A and recovered[1] == 0x05 and recovered[-1] == 0xBC
    ldd = recovered[3]
    dynamic = recovered[4 : 4 + ldd]
    assert sha1(recovered[1:-21] + term.values[0x9F37]) == recovered[-21:-1]
    number_length = dynamic[0]
    cid = dynamic[1 + number_length]
    ac = dynamic[2 + number_length : 10 + number_length]
    transaction_hash = dynamic[10 + number_length : 30 + number_length]
    assert cid == result[0x9F27][0]
    returned = b"".join(tlv.encode(tag, result[tag]) for tag in (0x9F27, 0x9F36, 0x9F10))
    assert transaction_hash == sha1(term.dol_data(term.app.profile.pdol) + cdol_data + returned)
    assert int.from_bytes(result[0x9F36], "big") == atc
    return ac


def mc_ac(result: dict[int, bytes], values: dict[int, bytes]) -> bytes:
    """The cryptogram pyemv computes for this response (M/Chip CVN 16: the CVR is IAD bytes 3-8)."""
    return reference_ac(mc_issuer(), "3900", result[0x9F10][2:8], result, values)


def test_mastercard_cda_online_with_arpc_in_cdol2() -> None:
    term = terminal("mastercard-credit", "A0000000041010")
    atc = term.start()
    cdol1_data = term.dol_data(term.app.profile.cdol1)
    first, sw = term.generate_ac(ARQC | 0x10)
    assert sw == 0x9000
    assert 0x9F26 not in first and 0x9F4B in first
    arqc = check_cda(term, first, cdol1_data, atc)
    assert arqc == mc_ac(first, term.values)
    term.values[0x8A] = b"00"
    term.values[0x91] = mc_issuer().generate_arpc(arqc, b"00") + b"00"
    cdol2_data = term.dol_data(term.app.profile.cdol2)
    second, sw = term.generate_ac(TC | 0x10, second=True)
    assert sw == 0x9000 and second[0x9F27] == bytes([TC])
    tc = check_cda(term, second, cdol1_data + cdol2_data, atc)
    assert tc == mc_ac(second, term.values)


def test_mastercard_bad_arpc_in_cdol2_declines_and_aac_is_not_signed() -> None:
    term = terminal("mastercard-credit", "A0000000041010")
    term.start()
    term.generate_ac(ARQC | 0x10)
    term.values[0x8A] = b"00"
    term.values[0x91] = bytes(7) + b"\x01" + b"00"
    second, _ = term.generate_ac(TC | 0x10, second=True)
    assert second[0x9F27] == bytes([AAC])
    assert 0x9F26 in second and 0x9F4B not in second  # no CDA signature on an AAC


def test_bad_dynamic_signature_fault_breaks_the_cda_signature() -> None:
    term = terminal("mastercard-credit", "A0000000041010", faults={"bad_dynamic_signature": True})
    atc = term.start()
    cdol1_data = term.dol_data(term.app.profile.cdol1)
    first, _ = term.generate_ac(ARQC | 0x10)
    with pytest.raises(AssertionError):
        check_cda(term, first, cdol1_data, atc)


# --- issuer scripts (Visa CVN 10 secure messaging, MACs from pyemv) ----------------------------------------


def online_visa() -> tuple[Terminal, bytes, bytes]:
    term = visa_terminal()
    term.start()
    first, _ = term.generate_ac(ARQC)
    return term, first[0x9F26], first[0x9F36]


def script(header: bytes, data: bytes, arqc: bytes, atc: bytes) -> bytes:
    lc = len(data) + 8
    mac: bytes = visa_issuer().generate_command_mac(header + bytes([lc]), arqc, atc, data)
    return header + bytes([lc]) + data + mac


def test_application_block_script() -> None:
    term, arqc, atc = online_visa()
    bad = script(bytes.fromhex("841E0000"), b"", arqc, atc)
    assert term.send(bad[:-1] + bytes([bad[-1] ^ 1]))[1] == 0x6988
    assert term.send(script(bytes.fromhex("841E0000"), b"", arqc, atc))[1] == 0x9000
    term.card.power_on()
    assert term.send(bytes.fromhex("00A4040007A000000003101000"))[1] == 0x6283


def test_pin_change_script() -> None:
    term, arqc, atc = online_visa()
    command = visa_issuer().generate_pin_change_command("9876", arqc, atc)  # the whole command, MAC included
    assert command[:4] == bytes.fromhex("84240002")
    assert term.send(command)[1] == 0x9000
    verify = bytes.fromhex("0020008008") + bytes.fromhex("249876FFFFFFFFFF")
    assert term.send(verify)[1] == 0x9000


def test_script_before_an_online_cryptogram() -> None:
    term = visa_terminal()
    term.start()
    assert term.send(bytes.fromhex("841E000008") + bytes(8))[1] == 0x6985
    assert term.send(bytes.fromhex("041E000008") + bytes(8))[1] == 0x6985


# --- the transaction log ------------------------------------------------------------------------------------


def test_unionpay_logs_each_completed_transaction() -> None:
    term = terminal("unionpay-debit", "A000000333010101")
    atc = term.start()
    term.generate_ac(AAC)
    record, sw = term.send(bytes([0x00, 0xB2, 0x01, (11 << 3) | 4, 0x00]))
    assert sw == 0x9000
    # format 9A03 9F2103 9F0206 9F0306 9F1A02 5F2A02 9F4E14 9C01 9F3602
    assert record[:3] == TERMINAL[0x9A]
    assert record[6:12] == TERMINAL[0x9F02]
    assert record[22:42] == TERMINAL[0x9F4E]
    assert record[-2:] == atc.to_bytes(2, "big")
    assert term.send(bytes([0x00, 0xB2, 0x02, (11 << 3) | 4, 0x00]))[1] == 0x6A83
