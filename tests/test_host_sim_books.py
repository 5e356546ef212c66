"""The simulated acquirer's books: repeats, tip adjust, keyed completion, record uploads, the ledger file.

Every request is built by the terminal (firmware.host.financial), sealed with the terminal's MAC code and
answered by the host's own codec, rules and ledger (sim/): both sides agree on bytes, keys and rules.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firmware.host.codes import TransactionCode
from firmware.host.financial import (
    CardData,
    HostAnswer,
    NetworkCode,
    Original,
    SettlementTotals,
    authorisation,
    batch_upload_end,
    completion,
    read_answer,
    record_upload,
    refund,
    repeat,
    reversal,
    settlement,
    tip_adjust,
    void,
)
from firmware.host.mac import KeyMac, open_answer, seal
from firmware.host.messages import TerminalIdentity
from firmware.host.spec import IsoMessage, pack, unpack
from firmware.keys.blockcipher import tdes_decrypt_ecb
from sim.acquirer import AcquirerHost, LedgerStatus, RegisteredTerminal

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key of the simulator's default terminal
IDENTITY = TerminalIdentity("00000001", "123456789012345")
PAN = "6228480000000000018"  # a test PAN (Luhn-valid), in memory only
WHEN = datetime(2026, 3, 14, 15, 9, 26)
DATE = "0314"
DEVICE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # TEST key
DEVICE_PUBLIC = DEVICE.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Link:
    """The terminal's side: signs on, seals with its own MAC code, opens the answers."""

    def __init__(self, host: AcquirerHost) -> None:
        self.host = host
        request = {**IDENTITY.fields(), "t": "0800", "11": "000001", "60": "00000001003", "63": "001"}
        answer = unpack(self.host.handle(pack(request)).answer)
        # the default profile: X9.19 retail MAC, the double-length MAK in the 003 layout's 16 bytes
        self.mac = KeyMac("x9.19", tdes_decrypt_ecb(TMK, bytes.fromhex(answer["62"])[20:36]))
        self.stan = 0

    def next_stan(self) -> int:
        self.stan += 1
        return self.stan

    def send(self, request: IsoMessage) -> IsoMessage:
        reply = self.host.handle(seal(request, self.mac))
        assert reply.action == "answer"
        return open_answer(reply.answer, self.mac)

    def sale(self, amount: int, batch: int = 1) -> tuple[int, HostAnswer]:
        stan = self.next_stan()
        request = authorisation(IDENTITY, type_code=TransactionCode.SALE, stan=stan, batch=batch,
                                amount=amount, card=CardData(PAN, expiry="3012"))  # fmt: skip
        return stan, read_answer(self.send(request))

    def preauth(self, amount: int) -> tuple[int, HostAnswer]:
        stan = self.next_stan()
        request = authorisation(IDENTITY, type_code=TransactionCode.PREAUTH, stan=stan, batch=1,
                                amount=amount, card=CardData(PAN))  # fmt: skip
        return stan, read_answer(self.send(request))

    def tip(self, original: Original, new_amount: int, batch: int = 1) -> str:
        request = tip_adjust(IDENTITY, stan=self.next_stan(), batch=batch, new_amount=new_amount, pan=PAN,
                             original=original)  # fmt: skip
        return read_answer(self.send(request)).response_code

    def complete(self, original: Original, amount: int) -> str:
        request = completion(IDENTITY, stan=self.next_stan(), batch=1, amount=amount, pan=PAN,
                             original=original)  # fmt: skip
        return read_answer(self.send(request)).response_code

    def void(self, type_code: TransactionCode, original: Original, amount: int) -> str:
        request = void(IDENTITY, type_code=type_code, stan=self.next_stan(), batch=1, amount=amount, pan=PAN,
                       original=original)  # fmt: skip
        return read_answer(self.send(request)).response_code

    def settle(self, totals: SettlementTotals, batch: int = 1) -> HostAnswer:
        return read_answer(self.send(settlement(IDENTITY, stan=self.next_stan(), batch=batch, totals=totals)))


def _original(stan: int, answer: HostAnswer, batch: int = 1) -> Original:
    return Original(batch, stan, DATE, answer.rrn, answer.auth_code)


@pytest.fixture
def link() -> Link:
    return Link(AcquirerHost(clock=lambda: WHEN))


def _by_trace(host: AcquirerHost, stan: int) -> list[tuple[str, str]]:
    return [(e.type_code, e.status) for e in host.ledger if e.stan == f"{stan:06d}"]


# ----- repeats ------------------------------------------------------------------------------------------


def test_a_repeated_refund_gets_the_first_answer_as_a_0230(link: Link) -> None:
    stan, sale = link.sale(5000)
    request = refund(IDENTITY, stan=link.next_stan(), batch=1, amount=2000, pan=PAN,
                     original=_original(stan, sale))  # fmt: skip
    first = link.send(request)
    assert (first["t"], first["39"]) == ("0230", "00")
    again = link.send(repeat(request))
    assert again["t"] == "0230"
    assert (again["39"], again["37"], again["38"]) == (first["39"], first["37"], first["38"])
    assert link.host.ledger[0].refunded == 2000  # booked once
    assert len(link.host.ledger) == 2
    changed = link.send(repeat({**request, "4": f"{2500:012d}"}))
    assert changed["39"] == "94"  # other content under a used trace


def test_a_repeat_never_seen_is_the_first_request_and_the_original_then_gets_its_answer(link: Link) -> None:
    stan, sale = link.sale(3000)
    request = refund(IDENTITY, stan=link.next_stan(), batch=1, amount=3000, pan=PAN,
                     original=_original(stan, sale))  # fmt: skip
    first = link.send(repeat(request))
    assert (first["t"], first["39"]) == ("0230", "00")
    late = link.send(request)  # the 0220 that was lost on the way arrives after its repeat
    assert (late["39"], late["37"]) == ("00", first["37"])
    assert link.host.ledger[0].refunded == 3000


def test_a_declined_advice_is_declined_again_on_repeat(link: Link) -> None:
    stan, sale = link.sale(1000)
    request = refund(IDENTITY, stan=link.next_stan(), batch=1, amount=1500, pan=PAN,
                     original=_original(stan, sale))  # fmt: skip
    assert link.send(request)["39"] == "64"
    assert link.send(repeat(request))["39"] == "64"


def test_a_repeated_reversal_is_answered_as_0410_with_the_same_rrn(link: Link) -> None:
    request = authorisation(IDENTITY, type_code=TransactionCode.SALE, stan=link.next_stan(), batch=1,
                            amount=700, card=CardData(PAN))  # fmt: skip
    link.send(request)
    undo = reversal(request, "98", WHEN)
    first = link.send(undo)
    again = link.send(repeat(undo))
    assert (first["t"], again["t"]) == ("0410", "0410")
    assert again["37"] == first["37"] and again["39"] == "00"
    assert _by_trace(link.host, 1) == [("22", LedgerStatus.REVERSED)]
    assert link.send(repeat({**undo, "39": "06"}))["39"] == "94"


# ----- tip adjust ---------------------------------------------------------------------------------------


def test_tip_adjust_books_the_new_total_and_settlement_counts_the_sale_once(link: Link) -> None:
    stan, sale = link.sale(2000)
    assert link.tip(_original(stan, sale), 2300) == "00"
    adjusted = link.host.ledger[0]
    assert (adjusted.amount, adjusted.adjusted_amount, adjusted.current_amount) == (2000, 2300, 2300)
    adjust = link.host.ledger[1]
    assert (adjust.type_code, adjust.amount, adjust.original) == ("32", 2300, adjusted)
    assert link.host.ledger_view()[1] == {
        "terminal": "00000001", "trace": 2, "type": "adjust", "amount": 2300, "status": "approved",
        "rrn": adjust.rrn, "batch": 1, "auth_code": adjust.auth_code,
    }  # fmt: skip
    assert link.tip(_original(stan, sale), 2500) == "12"  # adjusted once already
    assert link.settle(SettlementTotals(2000, 1, 0, 0)).balanced is False
    assert link.settle(SettlementTotals(2300, 2, 0, 0)).balanced is False  # not two debits
    assert link.settle(SettlementTotals(2300, 1, 0, 0)).balanced is True


@pytest.mark.parametrize("new_amount", [2000, 1999, 0])
def test_tip_adjust_must_raise_the_amount(link: Link, new_amount: int) -> None:
    stan, sale = link.sale(2000)
    assert link.tip(_original(stan, sale), new_amount) == "13"
    assert link.host.ledger[0].adjusted_amount is None


def test_tip_adjust_needs_the_sale_it_names(link: Link) -> None:
    stan, sale = link.sale(2000)
    assert link.tip(Original(1, 99, DATE, sale.rrn, sale.auth_code), 2300) == "25"  # no such trace
    assert link.tip(Original(1, stan, DATE, "000000000000", sale.auth_code), 2300) == "25"  # not its RRN
    assert link.tip(Original(1, stan, DATE, sale.rrn, "999999"), 2300) == "25"  # not its auth code
    assert link.tip(Original(1, stan, "0313", sale.rrn, sale.auth_code), 2300) == "25"  # not its date
    assert link.tip(_original(stan, sale), 2300) == "00"


def test_tip_adjust_of_what_is_no_longer_an_open_approved_sale_is_refused(link: Link) -> None:
    voided_stan, voided = link.sale(1000)
    assert link.void(TransactionCode.VOID, _original(voided_stan, voided), 1000) == "00"
    assert link.tip(_original(voided_stan, voided), 1100) == "12"
    refunded_stan, refunded = link.sale(1000)
    assert read_answer(link.send(refund(IDENTITY, stan=link.next_stan(), batch=1, amount=10, pan=PAN,
                                        original=_original(refunded_stan, refunded)))).approved  # fmt: skip
    assert link.tip(_original(refunded_stan, refunded), 1100) == "12"
    reversed_stan = link.next_stan()
    reversed_request = authorisation(IDENTITY, type_code=TransactionCode.SALE, stan=reversed_stan,
                                     batch=1, amount=1000, card=CardData(PAN))  # fmt: skip
    reversed_answer = read_answer(link.send(reversed_request))
    link.send(reversal(reversed_request, "98", WHEN))
    assert link.tip(_original(reversed_stan, reversed_answer), 1100) == "12"
    preauth_stan, preauth = link.preauth(1000)
    assert link.tip(_original(preauth_stan, preauth), 1100) == "12"  # a pre-authorisation is no sale
    settled_stan, settled = link.sale(1000)
    assert link.settle(SettlementTotals(1000, 1, 990, 1)).balanced is False
    assert link.settle(SettlementTotals(2000, 2, 10, 1)).balanced is True
    assert link.tip(_original(settled_stan, settled), 1100, batch=2) == "12"  # its batch is settled


def test_a_legacy_sale_without_60_1_may_be_adjusted(link: Link) -> None:
    stan = link.next_stan()
    sale = read_answer(link.send({**IDENTITY.fields(), "t": "0200", "2": PAN, "3": "000000",
                                  "4": f"{800:012d}", "11": f"{stan:06d}", "49": "156"}))  # fmt: skip
    assert link.tip(Original(1, stan, DATE, sale.rrn, sale.auth_code), 900) == "00"


def test_a_void_of_an_adjusted_sale_is_for_its_new_total_and_its_reversal_restores_it(link: Link) -> None:
    stan, sale = link.sale(2000)
    assert link.tip(_original(stan, sale), 2400) == "00"
    assert link.void(TransactionCode.VOID, _original(stan, sale), 2000) == "64"
    void_request = void(IDENTITY, type_code=TransactionCode.VOID, stan=link.next_stan(), batch=1,
                        amount=2400, pan=PAN, original=_original(stan, sale))  # fmt: skip
    assert link.send(void_request)["39"] == "00"
    assert link.host.ledger[0].status is LedgerStatus.VOIDED
    assert link.send(reversal(void_request, "98", WHEN))["39"] == "00"  # the void's reversal
    assert link.host.ledger[0].status is LedgerStatus.APPROVED
    assert link.settle(SettlementTotals(2400, 1, 0, 0)).balanced is True


def test_reversing_a_tip_adjust_gives_the_sale_its_amount_back(link: Link) -> None:
    stan, sale = link.sale(2000)
    request = tip_adjust(IDENTITY, stan=link.next_stan(), batch=1, new_amount=2600, pan=PAN,
                         original=_original(stan, sale))  # fmt: skip
    assert link.send(request)["39"] == "00"
    assert link.send(reversal(request, "98", WHEN))["39"] == "00"
    assert link.host.ledger[0].adjusted_amount is None
    assert link.tip(_original(stan, sale), 2200) == "00"


# ----- pre-authorisation completion ---------------------------------------------------------------------


def test_keyed_completion_within_the_tolerance_is_a_debit_and_the_preauth_is_not(link: Link) -> None:
    stan, preauth = link.preauth(10000)
    assert link.complete(_original(stan, preauth), 11501) == "64"  # past 15 %
    assert link.complete(_original(stan, preauth), 0) == "13"
    assert link.complete(_original(stan, preauth), 11500) == "00"
    assert link.complete(_original(stan, preauth), 100) == "12"  # completed already
    assert [e.type_code for e in link.host.ledger] == ["10", "20"]
    assert link.host.ledger[1].original is link.host.ledger[0]
    assert link.host.ledger_view()[1]["type"] == "completion"
    assert link.settle(SettlementTotals(21500, 2, 0, 0)).balanced is False
    assert link.settle(SettlementTotals(11500, 1, 0, 0)).balanced is True


def test_keyed_completion_needs_the_preauth_and_its_code(link: Link) -> None:
    stan, preauth = link.preauth(5000)
    assert link.complete(Original(1, 77, DATE, preauth.rrn, preauth.auth_code), 5000) == "25"
    assert link.complete(Original(1, stan, DATE, preauth.rrn, "000000"), 5000) == "25"
    assert link.complete(Original(1, stan, "0101", preauth.rrn, preauth.auth_code), 5000) == "25"
    sale_stan, sale = link.sale(5000)
    assert link.complete(_original(sale_stan, sale), 5000) == "12"  # a sale is no pre-authorisation
    no_pan = {**completion(IDENTITY, stan=link.next_stan(), batch=1, amount=5000, pan=PAN,
                           original=_original(stan, preauth))}  # fmt: skip
    del no_pan["2"]
    assert link.send(no_pan)["39"] == "30"
    assert link.send({**no_pan, "2": PAN, "11": f"{link.next_stan():06d}", "22": "051"})["39"] == "30"


def test_voiding_a_completion_makes_the_preauth_completable_again(link: Link) -> None:
    stan, preauth = link.preauth(5000)
    done = completion(IDENTITY, stan=link.next_stan(), batch=1, amount=5200, pan=PAN,
                      original=_original(stan, preauth))  # fmt: skip
    done_answer = read_answer(link.send(done))
    assert done_answer.approved
    assert link.void(TransactionCode.PREAUTH_VOID, _original(stan, preauth), 5000) == "12"  # completed
    assert link.void(TransactionCode.COMPLETION_VOID, _original(link.stan - 1, done_answer), 5200) == "00"
    assert link.host.ledger[1].status is LedgerStatus.VOIDED
    assert link.complete(_original(stan, preauth), 4000) == "00"
    assert link.settle(SettlementTotals(4000, 1, 0, 0)).balanced is True


def test_a_voided_preauth_cannot_be_completed_and_the_tolerance_is_the_hosts(link: Link) -> None:
    stan, preauth = link.preauth(5000)
    assert link.void(TransactionCode.PREAUTH_VOID, _original(stan, preauth), 5000) == "00"
    assert link.complete(_original(stan, preauth), 5000) == "12"
    strict = Link(AcquirerHost(clock=lambda: WHEN, completion_tolerance=0))
    stan, preauth = strict.preauth(5000)
    assert strict.complete(_original(stan, preauth), 5001) == "64"
    assert strict.complete(_original(stan, preauth), 5000) == "00"


def test_a_completion_with_chip_data_is_decided_like_a_sale(link: Link) -> None:
    stan, preauth = link.preauth(5000)
    chip = {**completion(IDENTITY, stan=link.next_stan(), batch=1, amount=5000, pan=PAN,
                         original=_original(stan, preauth)), "22": "051", "55": "9F2701"}  # fmt: skip
    assert link.send(chip)["39"] == "00"  # no issuer here: the amount rules decide
    assert link.host.ledger[1].original is link.host.ledger[0]
    assert link.complete(_original(stan, preauth), 5000) == "12"  # completed already


# ----- record uploads -----------------------------------------------------------------------------------


def _record(kind: str, record_id: str, **payload: object) -> bytes:
    return json.dumps({"id": record_id, "kind": kind, "payload": payload}, sort_keys=True).encode()


@pytest.fixture
def keyed(tmp_path: Path) -> Link:
    terminal = RegisteredTerminal("00000001", "123456789012345", TMK, device_public_key=DEVICE_PUBLIC)
    return Link(AcquirerHost((terminal,), clock=lambda: WHEN, ledger_path=tmp_path / "ledger.json",
                             notices_path=tmp_path / "notices.json"))  # fmt: skip


def _upload(link: Link, record: bytes, code: NetworkCode, batch: int = 1) -> IsoMessage:
    return link.send(record_upload(IDENTITY, stan=link.next_stan(), batch=batch, record=record,
                                   signature=DEVICE.sign(record), network_code=code))  # fmt: skip


def test_notices_are_kept_once_per_record_id_and_written_to_the_notices_file(
    keyed: Link, tmp_path: Path
) -> None:
    notice = _record("notice", "0000000001-ab", type="refund", amount=500)
    answer = _upload(keyed, notice, NetworkCode.NOTICE_UPLOAD)
    assert (answer["t"], answer["39"]) == ("0330", "00")
    assert _upload(keyed, notice, NetworkCode.NOTICE_UPLOAD)["39"] == "00"  # sent again under a new trace
    [kept] = keyed.host.notices
    assert (kept.terminal_id, kept.received, kept.record) == ("00000001", WHEN, json.loads(notice))
    assert json.loads((tmp_path / "notices.json").read_text()) == [
        {"terminal": "00000001", "batch": 1, "received": WHEN.isoformat(), "record": json.loads(notice)}
    ]
    assert keyed.host.batch_uploads == []


@pytest.mark.parametrize(
    ("record", "code"),
    [(_record("batch", "1"), NetworkCode.NOTICE_UPLOAD), (_record("notice", "1"), NetworkCode.BATCH_UPLOAD),
     (b"not json", NetworkCode.NOTICE_UPLOAD), (b'{"kind": "notice"}', NetworkCode.NOTICE_UPLOAD),
     (b'["notice"]', NetworkCode.NOTICE_UPLOAD), (_record("notice", "1"), "999")],
)  # fmt: skip
def test_an_upload_that_is_not_what_its_60_3_says_is_a_format_error(
    keyed: Link, record: bytes, code: str
) -> None:
    answer = keyed.send(record_upload(IDENTITY, stan=keyed.next_stan(), batch=1, record=record,
                                      signature=DEVICE.sign(record), network_code=code))  # type: ignore[arg-type]
    assert answer["39"] == "30"
    assert keyed.host.notices == [] and keyed.host.batch_uploads == []


def test_a_tampered_upload_is_still_a_security_violation(keyed: Link) -> None:
    notice = _record("notice", "7", amount=500)
    request = record_upload(IDENTITY, stan=keyed.next_stan(), batch=1, record=notice,
                            signature=DEVICE.sign(notice.replace(b"500", b"900")),
                            network_code=NetworkCode.NOTICE_UPLOAD)  # fmt: skip
    assert keyed.send(request)["39"] == "63"
    assert keyed.host.notices == []


def test_batch_upload_records_then_the_end_close_the_batch(
    keyed: Link, caplog: pytest.LogCaptureFixture
) -> None:
    keyed.sale(1000)
    for number in range(2):
        record = _record("batch", f"B-{number}", trace=number)
        assert _upload(keyed, record, NetworkCode.BATCH_UPLOAD)["39"] == "00"
    assert _upload(keyed, _record("batch", "B-1", trace=1), NetworkCode.BATCH_UPLOAD)["39"] == "00"
    assert [kept.record["id"] for kept in keyed.host.batch_uploads] == ["B-0", "B-1"]
    assert keyed.settle(SettlementTotals(999, 1, 0, 0)).balanced is False
    end_record = _record("batch-end", "E-1")

    def end(batch: int, count: int) -> str:
        return keyed.send(batch_upload_end(IDENTITY, stan=keyed.next_stan(), batch=batch, count=count,
                                           record=end_record, signature=DEVICE.sign(end_record)))["39"]

    with caplog.at_level(logging.WARNING, logger="sim.uploads"):
        assert end(1, 3) == "00"  # a count that differs is logged, not refused
    assert "counts '0003' records, host 2" in caplog.text
    assert keyed.host.batch_number("00000001") == "000002"
    assert end(1, 2) == "00" and keyed.host.batch_number("00000001") == "000002"  # closed already
    assert end(7, 0) == "12"  # a batch never opened


def test_an_upload_without_a_record_from_a_terminal_without_a_key(link: Link) -> None:
    request = {**IDENTITY.fields(), "t": "0320", "11": f"{link.next_stan():06d}", "60": "00000001801"}
    assert link.send(request)["39"] == "30"


# ----- the ledger file ----------------------------------------------------------------------------------


def test_the_ledger_file_follows_every_change(keyed: Link, tmp_path: Path) -> None:
    path = tmp_path / "ledger.json"
    assert json.loads(path.read_text()) == []
    stan, sale = keyed.sale(5000)
    assert json.loads(path.read_text()) == keyed.host.ledger_view()
    keyed.void(TransactionCode.VOID, _original(stan, sale), 5000)
    second, other = keyed.sale(3000)
    keyed.tip(_original(second, other), 3300)
    preauth_stan, preauth = keyed.preauth(9000)
    keyed.complete(_original(preauth_stan, preauth), 9000)
    keyed.send(refund(IDENTITY, stan=keyed.next_stan(), batch=1, amount=300, pan=PAN,
                      original=_original(second, other)))  # fmt: skip
    keyed.sale(51)  # declined (51): not booked
    view = json.loads(path.read_text())
    assert view == keyed.host.ledger_view()
    assert [(e["trace"], e["type"], e["amount"], e["status"]) for e in view] == [
        (1, "sale", 5000, "voided"), (2, "void", 5000, "approved"), (3, "sale", 3000, "approved"),
        (4, "adjust", 3300, "approved"), (5, "preauth", 9000, "approved"),
        (6, "completion", 9000, "approved"), (7, "refund", 300, "approved"),
    ]  # fmt: skip
    assert all(set(e) == {"terminal", "trace", "type", "amount", "status", "rrn", "batch", "auth_code"}
               for e in view)  # fmt: skip
    assert view[0]["rrn"] == sale.rrn and view[0]["auth_code"] == sale.auth_code and view[0]["batch"] == 1
    assert not list(tmp_path.glob(".ledger.json.*"))  # no temp file left behind



@pytest.mark.parametrize(("mti", "code"), [("0220", "30"), ("0220", "34"), ("0220", "22"), ("0100", "22"),
                                           ("0200", "10"), ("0200", "25")])  # fmt: skip
def test_a_60_1_code_the_message_type_does_not_take_is_not_supported(link: Link, mti: str, code: str) -> None:
    request = {**IDENTITY.fields(), "t": mti, "2": PAN, "3": "000000", "4": f"{100:012d}",
               "11": f"{link.next_stan():06d}", "60": f"{code}000001000"}  # fmt: skip
    assert link.send(request)["39"] == "40"
    assert link.host.ledger == []
