"""The simulated acquirer's decisions, talked to with the terminal's own packager and MACs.

The terminal side (firmware.host + firmware.keys) and the host side (sim.hostcodec + sim.hostkeys) are
separate implementations: every exchange here is both of them agreeing on bytes, keys and MACs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import MacMismatchError
from firmware.host.codes import TransactionCode
from firmware.host.mac import KeyMac, open_answer, seal
from firmware.host.messages import field60, field61, field90, signed_record_field
from firmware.host.spec import IsoMessage, pack, unpack
from firmware.keys.blockcipher import tdes_decrypt_ecb
from firmware.keys.kcv import kcv_tdes
from firmware.keys.mac import MacProfile
from sim.acquirer import (
    AcquirerHost,
    Faults,
    LedgerStatus,
    RegisteredTerminal,
    ReplyAction,
    issuer_from_profiles,
)
from sim.acquirer import TransactionCode as HostTransactionCode
from sim.errors import HostConfigError
from sim.hostkeys import MacProfile as HostMacProfile
from sim.issuer import IssuerFaults, encode_tlv

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
# The simulator's UnionPay ECB mode (003: a single-length MAK), which these tests drive byte by byte;
# the terminal accepts it only with a legacy host profile (its default is X9.19, double-length MAK).
TERMINAL = RegisteredTerminal("00000001", "123456789012345", TMK, mac_profile=MacProfile.UNIONPAY_ECB)
IDS = {"41": "00000001", "42": "123456789012345"}


def _clock() -> datetime:
    return datetime(2026, 3, 14, 15, 9, 26)


def _counter() -> object:
    state = {"n": 0}

    def token_bytes(count: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] * 37 + i * 11) % 256 for i in range(count))

    return token_bytes


def _host(*terminals: RegisteredTerminal, **kwargs: object) -> AcquirerHost:
    return AcquirerHost(terminals or (TERMINAL,), clock=_clock, **kwargs)  # type: ignore[arg-type]


def _exchange(host: AcquirerHost, packed: bytes) -> bytes:
    reply = host.handle(packed)
    assert reply.action is ReplyAction.ANSWER
    return reply.answer


def _sign_on(host: AcquirerHost, scheme: str = "003", ids: Mapping[str, str] = IDS) -> IsoMessage:
    request = {"t": "0800", "11": "000001", **ids,
               "60": field60(TransactionCode.MANAGEMENT, 1, scheme), "63": "001"}
    return unpack(_exchange(host, pack(request)))


def _mak(answer: IsoMessage, tmk: bytes = TMK, profile: MacProfile = MacProfile.UNIONPAY_ECB) -> bytes:
    field62 = bytes.fromhex(answer["62"])
    pik_length = 8 if answer["60"].endswith("001") else 16
    start = pik_length + 4
    mak_slot = field62[start : start + (8 if answer["60"].endswith("001") else 16)]
    clear = tdes_decrypt_ecb(tmk, mak_slot)
    return clear[:8] if profile is MacProfile.UNIONPAY_ECB else clear


class Terminal:
    """The terminal side of the tests: packs with firmware.host, MACs with firmware.keys."""

    def __init__(
        self, host: AcquirerHost, profile: MacProfile = MacProfile.UNIONPAY_ECB, tmk: bytes = TMK
    ) -> None:
        self.host = host
        self.mac = KeyMac(profile, _mak(_sign_on(host), tmk, profile))
        self.stan = 100

    def send(self, fields: Mapping[str, str]) -> IsoMessage:
        self.stan += 1
        request = {"11": f"{self.stan:06d}", **IDS, **fields}
        return open_answer(_exchange(self.host, seal(request, self.mac)), self.mac)

    def sale(self, amount: int, batch: int = 1) -> IsoMessage:
        return self.send({"t": "0200", "3": "000000", "4": f"{amount:012d}",
                          "60": field60(TransactionCode.SALE, batch)})


# ----- sign-on ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "length"), [("001", 24), ("003", 40), ("004", 60)])
def test_sign_on_keys_decrypt_to_their_check_values(scheme: str, length: int) -> None:
    host = _host(token_bytes=_counter())
    answer = _sign_on(host, scheme)
    assert (answer["t"], answer["39"], answer["11"]) == ("0810", "00", "000001")
    assert answer["60"] == "00000001" + scheme
    field62 = bytes.fromhex(answer["62"])
    assert len(field62) == length
    single = scheme == "001"
    pik_length = 8 if single else 16
    pik = tdes_decrypt_ecb(TMK, field62[:pik_length])
    assert field62[pik_length : pik_length + 4] == kcv_tdes(pik, 4)
    mak_at = pik_length + 4
    mak = tdes_decrypt_ecb(TMK, field62[mak_at : mak_at + 8])
    kcv_at = mak_at + (8 if single else 16)
    if not single:
        assert field62[mak_at + 8 : kcv_at] == bytes(8)  # single-length MAK, 8 zero bytes
    assert field62[kcv_at : kcv_at + 4] == kcv_tdes(mak, 4)
    expected = {"PIK": kcv_tdes(pik, 4).hex().upper(), "MAK": kcv_tdes(mak, 4).hex().upper()}
    if scheme == "004":
        tdk = tdes_decrypt_ecb(TMK, field62[40:56])
        assert field62[56:60] == kcv_tdes(tdk, 4)
        expected["TDK"] = kcv_tdes(tdk, 4).hex().upper()
    assert host.working_key_kcvs("00000001") == expected
    for key in (pik, mak):  # odd parity, as DES keys are generated
        assert all(bin(byte).count("1") % 2 == 1 for byte in key)


def test_sign_on_keys_are_fresh_each_time() -> None:
    host = _host()
    first, second = _sign_on(host)["62"], _sign_on(host)["62"]
    assert first != second


@pytest.mark.parametrize("profile", [HostMacProfile.X919, HostMacProfile.AES_CMAC])
def test_double_length_mak_profiles(profile: HostMacProfile) -> None:
    host = _host(RegisteredTerminal("00000001", "123456789012345", TMK, mac_profile=profile))
    answer = _sign_on(host)
    field62 = bytes.fromhex(answer["62"])
    mak = tdes_decrypt_ecb(TMK, field62[20:36])
    assert field62[36:40] == kcv_tdes(mak, 4)  # field 62 check values follow the DES rule
    assert _sign_on(host, "001")["39"] == "30"  # single-length keys cannot carry these MACs


@pytest.mark.parametrize("profile", list(MacProfile))
def test_terminal_and_host_macs_agree(profile: MacProfile) -> None:
    # Each side by its own table, the two linked by the profile's name only.
    host_profile = HostMacProfile(profile.value)
    host = _host(RegisteredTerminal("00000001", "123456789012345", TMK, mac_profile=host_profile))
    terminal = Terminal(host, profile)
    answer = terminal.sale(10000)
    assert answer["39"] == "00"
    assert len(answer["37"]) == 12 and len(answer["38"]) == 6
    assert "64" in answer  # verified by open_answer with the terminal's own MAC code


def test_unknown_network_code_and_sign_off() -> None:
    host = _host()
    assert _sign_on(host, "005")["39"] == "30"
    terminal = Terminal(host)
    sign_off = {"t": "0820", "11": "000009", **IDS, "60": field60(TransactionCode.MANAGEMENT, 1, "002")}
    assert unpack(_exchange(host, pack(sign_off)))["39"] == "00"
    answer = terminal.sale(100)  # signed off: 77, sign on again, without a MAC (a decline only)
    assert answer["39"] == "77"
    assert "64" not in answer


# ----- MAC checks ---------------------------------------------------------------------------------------


def test_bad_request_mac_is_answered_a0_without_mac() -> None:
    host = _host()
    terminal = Terminal(host)
    packed = bytearray(seal({"t": "0200", "11": "000001", **IDS, "4": "000000000100"}, terminal.mac))
    packed[-1] ^= 0x01
    raw = _exchange(host, bytes(packed))
    answer = unpack(raw)
    assert answer["39"] == "A0"
    assert "64" not in answer
    assert open_answer(raw, terminal.mac)["39"] == "A0"  # an unauthenticated decline is only a decline
    with pytest.raises(MacMismatchError):
        open_answer(raw, terminal.mac, allow_unmaced_decline=False)


def test_request_without_mac_is_refused() -> None:
    host = _host()
    Terminal(host)
    answer = unpack(_exchange(host, pack({"t": "0200", "11": "000001", **IDS, "4": "000000000100"})))
    assert answer["39"] == "A0"


def test_bad_mac_fault_is_caught_by_the_terminal() -> None:
    host = _host()
    terminal = Terminal(host)
    host.set_faults("bad_mac")
    with pytest.raises(MacMismatchError):
        terminal.sale(100)


def test_unknown_terminal_and_merchant() -> None:
    host = _host()
    assert _sign_on(host, ids={"41": "99999999", "42": "123456789012345"})["39"] == "97"
    assert _sign_on(host, ids={"41": "00000001", "42": "999999999999999"})["39"] == "97"


# ----- decisions and the ledger -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"), [(10000, "00"), (10051, "51"), (255, "55"), (105, "05"), (0, "13")]
)
def test_amount_rules(amount: int, code: str) -> None:
    assert Terminal(_host()).sale(amount)["39"] == code


def test_decline_switch_forces_the_code() -> None:
    host = _host()
    terminal = Terminal(host)
    host.set_faults("decline=59,times=1")
    assert terminal.sale(100)["39"] == "59"
    assert terminal.sale(100)["39"] == "00"


def test_void_rules() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(5000)
    sale_stan = f"{terminal.stan:06d}"

    def void(amount: int, trace: str = sale_stan) -> str:
        fields = {"t": "0200", "3": "200000", "4": f"{amount:012d}", "60": field60(TransactionCode.VOID, 1),
                  "61": field61(1, trace)}
        return terminal.send(fields)["39"]

    assert void(4000) == "64"  # a void is for the full amount
    assert void(5000, "999999") == "25"  # no such original
    assert void(5000) == "00"
    assert void(5000) == "12"  # already voided


def test_refunds_add_up_to_at_most_the_sale() -> None:
    host = _host()
    terminal = Terminal(host)
    rrn = terminal.sale(5000)["37"]

    def refund(amount: int, reference: str = rrn) -> str:
        fields = {"t": "0220", "3": "200000", "4": f"{amount:012d}", "37": reference,
                  "60": field60(TransactionCode.REFUND, 1),
                  "61": field61(1, 0, "0314")}
        return terminal.send(fields)["39"]

    assert refund(3000) == "00"
    assert refund(2500) == "64"
    assert refund(2000) == "00"
    assert refund(1) == "64"
    assert refund(100, "000000000000") == "25"



def _void(terminal: Terminal, amount: int, trace: str, batch: int = 1, original_batch: int = 1) -> str:
    fields = {"t": "0200", "3": "200000", "4": f"{amount:012d}", "60": field60(TransactionCode.VOID, batch),
              "61": field61(original_batch, trace)}
    return terminal.send(fields)["39"]


def _refund(terminal: Terminal, amount: int, rrn: str, date: str = "0314") -> tuple[str, str]:
    answer = terminal.send({"t": "0220", "3": "200000", "4": f"{amount:012d}", "37": rrn,
                            "60": field60(TransactionCode.REFUND, 1), "61": field61(1, 0, date)})
    return answer["39"], f"{terminal.stan:06d}"


def _settle(terminal: Terminal, totals: str, batch: int = 1) -> IsoMessage:
    return terminal.send({"t": "0500", "48": totals + "0", "49": "156",
                          "60": field60(TransactionCode.MANAGEMENT, batch, "201")})


def test_no_void_of_a_sale_from_a_settled_batch() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(1500)
    sale_stan = f"{terminal.stan:06d}"
    assert _settle(terminal, f"{1500:012d}{1:03d}{0:012d}{0:03d}")["48"].endswith("1")
    assert host.batch_number("00000001") == "000002"
    assert _void(terminal, 1500, sale_stan, batch=2) == "12"
    assert [entry.status for entry in host.ledger] == [LedgerStatus.APPROVED]


def test_no_void_of_a_refund_or_of_a_void() -> None:
    host = _host()
    terminal = Terminal(host)
    rrn = terminal.sale(800)["37"]
    code, refund_stan = _refund(terminal, 800, rrn)
    assert code == "00"
    assert _void(terminal, 800, refund_stan) == "12"  # a refund is not a sale
    other = terminal.sale(300)
    assert other["39"] == "00"
    other_stan = f"{terminal.stan:06d}"
    assert _void(terminal, 300, other_stan) == "00"
    void_stan = f"{terminal.stan:06d}"
    assert _void(terminal, 300, void_stan) == "12"  # a void is not a sale either
    assert [(e.type_code, e.status) for e in host.ledger] == [
        (HostTransactionCode.SALE, LedgerStatus.APPROVED),
        (HostTransactionCode.REFUND, LedgerStatus.APPROVED),
        (HostTransactionCode.SALE, LedgerStatus.VOIDED),
        (HostTransactionCode.VOID, LedgerStatus.APPROVED),
    ]


def test_no_void_of_a_sale_already_refunded_in_part() -> None:
    host = _host()
    terminal = Terminal(host)
    rrn = terminal.sale(5000)["37"]
    sale_stan = f"{terminal.stan:06d}"
    assert _refund(terminal, 1000, rrn)[0] == "00"
    assert _void(terminal, 5000, sale_stan) == "12"  # 1000 back already: a void would give back 6000
    assert host.ledger[0].status is LedgerStatus.APPROVED and host.ledger[0].refunded == 1000


def test_refunds_over_the_original_amount_or_not_about_it_are_refused() -> None:
    host = _host()
    terminal = Terminal(host)
    rrn = terminal.sale(5000)["37"]
    assert _refund(terminal, 5001, rrn)[0] == "64"  # more than the sale, at once
    assert _refund(terminal, 0, rrn)[0] == "13"
    assert _refund(terminal, 100, rrn, date="0313")[0] == "25"  # not the original's date
    assert _refund(terminal, 5000, rrn)[0] == "00"  # the full amount, once
    assert _refund(terminal, 1, rrn)[0] == "64"
    voided_rrn = terminal.sale(700)["37"]
    assert _void(terminal, 700, f"{terminal.stan:06d}") == "00"
    assert _refund(terminal, 700, voided_rrn)[0] == "12"  # voided already: nothing left to refund

def test_reversal_is_idempotent_and_undoes_the_sale() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(700)
    stan = f"{terminal.stan:06d}"
    reversal = {"t": "0400", "11": stan, **IDS, "3": "000000", "4": "000000000700", "39": "98",
                "60": field60(TransactionCode.SALE, 1)}
    first = _exchange(host, seal(reversal, terminal.mac))
    assert open_answer(first, terminal.mac)["39"] == "00"
    assert [e.status for e in host.ledger] == [LedgerStatus.REVERSED]
    again = _exchange(host, seal(reversal, terminal.mac))
    assert again == first  # same answer, same RRN, byte for byte
    changed = _exchange(host, seal({**reversal, "4": "000000000701"}, terminal.mac))
    assert open_answer(changed, terminal.mac)["39"] == "94"


def test_reversal_by_field_90_with_a_secondary_bitmap() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(900)
    original = f"{terminal.stan:06d}"
    answer = terminal.send({"t": "0400", "4": "000000000900", "39": "A0",
                            "60": field60(TransactionCode.SALE, 1),
                            "90": field90("0200", original)})
    assert answer["39"] == "00"
    assert "128" in answer  # the host MACs a secondary-bitmap answer in field 128
    assert host.ledger[0].status is LedgerStatus.REVERSED


def test_reversing_a_void_restores_the_sale() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(300)
    sale = f"{terminal.stan:06d}"
    void = {"t": "0200", "3": "200000", "4": "000000000300",
            "60": field60(TransactionCode.VOID, 1), "61": field61(1, sale)}
    assert terminal.send(void)["39"] == "00"
    assert terminal.send({"t": "0400", "11": f"{terminal.stan:06d}", "4": "000000000300", "39": "98",
                          "60": field60(TransactionCode.VOID, 1)})["39"] == "00"
    assert host.ledger[0].status is LedgerStatus.APPROVED
    assert terminal.send(void)["39"] == "00"


def test_settlement_balanced_closes_the_batch() -> None:
    host = _host()
    terminal = Terminal(host)
    terminal.sale(1000)
    terminal.sale(2000)
    rrn = terminal.sale(500)["37"]
    terminal.send({"t": "0220", "3": "200000", "4": "000000000200", "37": rrn,
                   "60": field60(TransactionCode.REFUND, 1),
                   "61": field61(1, 0, "0314")})

    def settle(totals: str) -> IsoMessage:
        return terminal.send({"t": "0500", "48": totals + "0", "49": "156",
                              "60": field60(TransactionCode.MANAGEMENT, 1, "201")})

    wrong = settle(f"{3500:012d}{2:03d}{200:012d}{1:03d}")
    assert (wrong["39"], wrong["48"][-1]) == ("00", "2")
    assert host.batch_number("00000001") == "000001"
    right = settle(f"{3500:012d}{3:03d}{200:012d}{1:03d}")
    assert right["48"] == f"{3500:012d}{3:03d}{200:012d}{1:03d}1"
    assert host.batch_number("00000001") == "000002"
    assert _sign_on(host)["60"] == "00000002003"


def test_batch_upload_with_signed_records() -> None:
    device = Ed25519PrivateKey.generate()
    public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    host = _host(RegisteredTerminal(
        "00000001", "123456789012345", TMK, mac_profile=MacProfile.UNIONPAY_ECB, device_public_key=public
    ))
    terminal = Terminal(host)
    record = b'{"kind":"notice","trace":"000123","amount":500}'
    upload = {"t": "0320", "4": "000000000500", "60": field60(TransactionCode.MANAGEMENT, 1, "201")}
    good = terminal.send({**upload, "62": signed_record_field(record, device.sign(record))})
    assert good["39"] == "00"
    tampered = record.replace(b"500", b"900")
    bad = terminal.send({**upload, "62": signed_record_field(tampered, device.sign(record))})
    assert bad["39"] == "63"
    stranger = Ed25519PrivateKey.generate()
    assert terminal.send({**upload, "62": signed_record_field(record, stranger.sign(record))})["39"] == "63"



def test_upload_without_a_well_formed_signed_record_is_refused() -> None:
    device = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # TEST key
    public = device.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    host = _host(RegisteredTerminal(
        "00000001", "123456789012345", TMK, mac_profile=MacProfile.UNIONPAY_ECB, device_public_key=public
    ))
    terminal = Terminal(host)
    upload = {"t": "0320", "60": field60(TransactionCode.MANAGEMENT, 1, "201")}
    record = b'{"amount":100000,"id":"Q-1","type":"refund"}'
    forged = record.replace(b"100000", b"999999")
    signature = device.sign(record)
    genuine = b"SR" + len(record).to_bytes(2, "big") + record + signature
    assert terminal.send({**upload, "62": genuine.hex().upper()})["39"] == "00"
    malformed = {
        "length field one more": b"SR" + (len(forged) + 1).to_bytes(2, "big") + forged + signature,
        "signature cut to 63 bytes": b"SR" + len(forged).to_bytes(2, "big") + forged + signature[:63],
        "tag in lower case": b"sr" + len(forged).to_bytes(2, "big") + forged + signature,
        "no tag, no length": forged + signature,
    }
    for name, value in malformed.items():
        assert terminal.send({**upload, "62": value.hex().upper()})["39"] == "63", name
    assert terminal.send(upload)["39"] == "63"  # no field 62 at all

def test_signed_record_from_a_terminal_without_a_registered_key() -> None:
    host = _host()
    terminal = Terminal(host)
    device = Ed25519PrivateKey.generate()
    record = b"record"
    answer = terminal.send({"t": "0320", "60": field60(TransactionCode.MANAGEMENT, 1, "201"),
                            "62": signed_record_field(record, device.sign(record))})
    assert answer["39"] == "63"


# ----- issuer -------------------------------------------------------------------------------------------


def test_field_55_goes_to_the_issuer() -> None:
    host = _host(issuer=issuer_from_profiles())
    terminal = Terminal(host)
    base = {"t": "0200", "3": "000000", "4": "000000001000", "60": field60(TransactionCode.SALE, 1)}
    unknown_card = {**base, "2": "9999990000000000", "55": encode_tlv(0x9F26, bytes(8)).hex().upper()}
    assert terminal.send(unknown_card)["39"] == "14"
    malformed = {**base, "2": "4761739001010010", "55": "9F2608"}
    assert terminal.send(malformed)["39"] == "30"
    assert host.issuer is not None
    host.issuer.faults = IssuerFaults(no_answer=True)
    assert host.handle(seal({**unknown_card, "11": "000900", **IDS}, terminal.mac)).action is ReplyAction.DROP


# ----- faults -------------------------------------------------------------------------------------------


def test_fault_switches_parse() -> None:
    faults = Faults.parse("drop, delay=1.5, decline=51, only=0200+0400, times=2")
    assert faults == Faults(drop=True, delay=1.5, decline="51", only=frozenset({"0200", "0400"}), times=2)
    assert Faults.parse("") == Faults() == Faults.parse("none")
    for bad in ("explode", "delay=soon", "decline=5", "drop=1", "times=x"):
        with pytest.raises(HostConfigError):
            Faults.parse(bad)


def test_faults_count_down_and_aim() -> None:
    host = _host()
    terminal = Terminal(host)
    host.set_faults("drop,only=0200,times=2")
    request = seal({"t": "0200", "11": "000777", **IDS, "4": "000000000100"}, terminal.mac)
    assert host.handle(request).action is ReplyAction.DROP
    echo = pack({"t": "0820", "11": "000778", **IDS, "60": field60(TransactionCode.MANAGEMENT, 1, "301")})
    assert host.handle(echo).action is ReplyAction.ANSWER
    assert host.handle(request).action is ReplyAction.DROP
    assert host.handle(request).action is ReplyAction.ANSWER


def test_undecodable_request_closes() -> None:
    assert _host().handle(b"\x60\x00\x00\x00\x00garbage").action is ReplyAction.CLOSE


def test_terminal_config_checks() -> None:
    with pytest.raises(HostConfigError):
        RegisteredTerminal("0001", "123456789012345", TMK)
    with pytest.raises(HostConfigError):
        RegisteredTerminal("00000001", "123456789012345", TMK[:5])
    with pytest.raises(HostConfigError):
        RegisteredTerminal("00000001", "123456789012345", TMK, mac_profile="crc32")
    assert "0123456789ABCDEF" not in repr(TERMINAL)  # keys shown only as KCV


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0, max_value=400), value=st.integers(min_value=0, max_value=255))
def test_mutated_requests_always_get_a_reply(position: int, value: int) -> None:
    host = _host()
    terminal = Terminal(host)
    request = bytearray(
        seal({"t": "0200", "11": "000321", **IDS, "3": "000000", "4": "000000000100",
              "60": field60(TransactionCode.VOID, 1),
              "61": field61(1, 5, "0314"), "55": "9F2608" + "00" * 8}, terminal.mac)
    )
    request[position % len(request)] = value
    reply = host.handle(bytes(request))
    assert reply.action in (ReplyAction.ANSWER, ReplyAction.CLOSE)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_requests_always_get_a_reply(data: bytes) -> None:
    assert _host().handle(data).action in (ReplyAction.ANSWER, ReplyAction.CLOSE)
