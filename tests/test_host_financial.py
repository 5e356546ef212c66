"""The financial requests built by the terminal, answered by the simulated acquirer (a separate codec).

Each request goes through the terminal's packager and MAC, the host's decoder, rules and ledger, and back.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from firmware.errors import MessageFieldError
from firmware.host.codes import TransactionCode
from firmware.host.financial import (
    CardData,
    Original,
    SettlementTotals,
    authorisation,
    completion,
    read_answer,
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
from sim.acquirer import AcquirerHost

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key of the simulator's default terminal
IDENTITY = TerminalIdentity("00000001", "123456789012345")
PAN = "6228480000000000018"  # a test PAN (Luhn-valid), in memory only
WHEN = datetime(2026, 3, 14, 15, 9, 26)


class _Link:
    def __init__(self) -> None:
        self.host = AcquirerHost(clock=lambda: WHEN)
        request = {**IDENTITY.fields(), "t": "0800", "11": "000001", "60": "00000001003", "63": "001"}
        answer = unpack(self.host.handle(pack(request)).answer)
        field62 = bytes.fromhex(answer["62"])
        self.mac = KeyMac("x9.19", tdes_decrypt_ecb(TMK, field62[20:36]))  # the default: a double-length MAK

    def send(self, request: IsoMessage) -> IsoMessage:
        reply = self.host.handle(seal(request, self.mac))
        assert reply.action == "answer"
        return open_answer(reply.answer, self.mac)


@pytest.fixture
def link() -> _Link:
    return _Link()


def _sale(link: _Link, stan: int, amount: int) -> tuple[IsoMessage, IsoMessage]:
    request = authorisation(
        IDENTITY,
        type_code=TransactionCode.SALE,
        stan=stan,
        batch=1,
        amount=amount,
        card=CardData(PAN, expiry="3012"),
    )
    return request, link.send(request)


def test_sale_void_refund_and_settlement_agree_with_the_host(link: _Link) -> None:
    _, first = _sale(link, 1, 5000)
    _, second = _sale(link, 2, 3000)
    assert read_answer(first).approved and read_answer(second).approved
    voided = Original(1, 1, "0314", read_answer(first).rrn, read_answer(first).auth_code)
    answer = link.send(
        void(IDENTITY, type_code=TransactionCode.VOID, stan=3, batch=1, amount=5000, pan=PAN, original=voided)
    )
    assert read_answer(answer).response_code == "00"
    refunded = Original(1, 2, "0314", read_answer(second).rrn)
    assert read_answer(
        link.send(refund(IDENTITY, stan=4, batch=1, amount=1000, pan=PAN, original=refunded))
    ).approved
    # beyond what is left of the sale: the host refuses (64)
    assert (
        read_answer(
            link.send(refund(IDENTITY, stan=5, batch=1, amount=2001, pan=PAN, original=refunded))
        ).response_code
        == "64"
    )
    totals = SettlementTotals(3000, 1, 1000, 1)
    answer = link.send(settlement(IDENTITY, stan=6, batch=1, totals=totals))
    assert read_answer(answer).balanced is True
    unbalanced = settlement(IDENTITY, stan=7, batch=2, totals=SettlementTotals(1, 1, 0, 0))
    assert read_answer(link.send(unbalanced)).balanced is False


def test_a_reversal_undoes_the_sale_at_the_host_and_its_repeat_gets_the_same_answer(link: _Link) -> None:
    request, _ = _sale(link, 11, 700)
    undo = reversal(request, "98", WHEN)
    assert (undo["t"], undo["11"], undo["39"]) == ("0400", "000011", "98")
    assert undo["90"].startswith("0200000011")
    first = link.send(undo)
    assert first["39"] == "00"
    assert [e.status for e in link.host.ledger if e.stan == "000011"] == ["reversed"]
    assert link.send(undo)["37"] == first["37"]  # the same reversal again: the same answer


def test_completion_and_tip_adjust_are_accepted(link: _Link) -> None:
    preauth = authorisation(
        IDENTITY, type_code=TransactionCode.PREAUTH, stan=21, batch=1, amount=10000, card=CardData(PAN)
    )
    assert (preauth["t"], preauth["60"][:2]) == ("0100", "10")
    answer = read_answer(link.send(preauth))
    assert answer.approved
    done = completion(
        IDENTITY,
        stan=22,
        batch=1,
        amount=10500,
        pan=PAN,
        original=Original(1, 21, "0314", answer.rrn, answer.auth_code),
    )
    assert read_answer(link.send(done)).approved
    _, sale = _sale(link, 23, 2000)
    tip = tip_adjust(
        IDENTITY,
        stan=24,
        batch=1,
        new_amount=2300,
        pan=PAN,
        original=Original(1, 23, "0314", read_answer(sale).rrn, read_answer(sale).auth_code),
    )
    assert (tip["t"], tip["60"][:2], tip["4"]) == ("0220", "32", "000000002300")
    assert read_answer(link.send(tip)).approved


def test_card_data_stays_out_of_repr() -> None:
    card = CardData(PAN, track2=bytes.fromhex("6228480000000000018D3012201123"), pin_block=bytes(8))
    assert PAN not in repr(card) and "D3012" not in repr(card)


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"t": "0210"}, "39"),
        ({"t": "0210", "39": "00", "37": "short"}, "37"),
        ({"t": "0210", "39": "00", "38": "1234567"}, "38"),
        ({"t": "0510", "39": "00", "48": "0"}, "48"),
        ({"t": "0210", "39": "00", "55": "XYZ"}, "55"),
    ],
)
def test_a_malformed_answer_names_its_field(answer: IsoMessage, field: str) -> None:
    with pytest.raises(MessageFieldError) as caught:
        read_answer(answer)
    assert caught.value.field == field


def test_only_reversals_and_advices_are_repeated() -> None:
    assert repeat({"t": "0400", "11": "000001"})["t"] == "0401"
    assert repeat({"t": "0220", "11": "000001"})["t"] == "0221"
    with pytest.raises(MessageFieldError):
        repeat({"t": "0200"})


def test_a_pan_that_is_not_one_is_refused() -> None:
    with pytest.raises(MessageFieldError) as caught:
        refund(IDENTITY, stan=1, batch=1, amount=1, pan="12ab", original=Original(1, 1, "0314", "1" * 12))
    assert caught.value.field == "2"
