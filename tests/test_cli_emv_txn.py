"""`pos-emv txn`: one transaction from the command line, printed as masked JSON."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from firmware.__main__ import online_factory, open_reader
from firmware.cli import common, emv
from firmware.cli.common import parse_amount
from firmware.errors import TransactionInputError


def run(argv: list[str], stdin: str = "") -> tuple[int, dict[str, Any] | None, str]:
    generator = random.Random(3)
    out, err = io.StringIO(), io.StringIO()
    code = emv.main(
        argv,
        open_reader=open_reader,
        online_factory=online_factory,
        now=lambda: datetime(2025, 6, 15, 9, 0, 0),
        random_bytes=lambda n: bytes(generator.getrandbits(8) for _ in range(n)),
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
    )
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None), err.getvalue()


def test_offline_sale_prints_the_result() -> None:
    code, report, _ = run(["txn", "--amount", "12.34", "--reader", "sim:visa-credit", "--pin", "1234"])
    assert code == 0 and report is not None
    assert report["amount"] == 1234 and report["transaction_type"] == "00"
    assert report["masked_pan"] == "476173******0010"
    assert report["cvm_results"] == "440302"
    assert report["outcome"] in ("APPROVED_OFFLINE", "APPROVED_ONLINE")  # random selection is drawn
    assert "4761739001010010" not in json.dumps(report)


def test_online_sale_through_the_simulated_issuer() -> None:
    code, report, _ = run(
        ["txn", "--amount", "60.00", "--reader", "sim:visa-credit", "--pin", "1234", "--online", "sim"]
    )
    assert code == 0 and report is not None
    assert report["outcome"] == "APPROVED_ONLINE" and report["response_code"] == "00"
    assert "EXCEEDS_FLOOR_LIMIT" in report["tvr_bits"]
    names = [entry["name"] for entry in report["trace"]]
    assert names.count("GENERATE AC") == 2 and "EXTERNAL AUTHENTICATE" in names


def test_refund_and_unable_to_go_online() -> None:
    code, report, _ = run(["txn", "--amount", "5", "--type", "refund", "--reader", "sim:visa-credit"])
    assert code == 0 and report is not None
    assert report["outcome"] == "DECLINED_OFFLINE" and report["transaction_type"] == "20"


def test_removed_card_after_approval_needs_a_reversal() -> None:
    code, report, _ = run(
        ["txn", "--amount", "60.00", "--reader", "sim:fault-removed-before-second-ac", "--pin", "1234",
         "--online", "sim"]
    )  # fmt: skip
    assert code == 0 and report is not None
    assert report["outcome"] == "HOST_APPROVED_CARD_DECLINED" and report["reversal_required"] is True


def test_multi_application_card_takes_the_technicians_aid() -> None:
    base = ["txn", "--amount", "12.34", "--reader", "sim:multi-app", "--pin", "1234", "--online", "sim"]
    code, report, _ = run([*base, "--aid", "A000000333010102"])
    assert code == 0 and report is not None
    assert report["aid"] == "A000000333010102" and report["oda_method"] == "DDA"
    code, report, _ = run(base)  # without --aid: the highest priority application
    assert code == 0 and report is not None and report["aid"] == "A000000333010101"


def test_terminated_transaction_exits_four_with_json() -> None:
    code, report, _ = run(["txn", "--amount", "1.00", "--reader", "sim:blocked"])
    assert code == common.EXIT_CARD_ERROR and report is not None and report["outcome"] == "TERMINATED"


def test_bad_amount_is_a_usage_error() -> None:
    code, report, err = run(["txn", "--amount", "12.345", "--reader", "sim:visa-credit"])
    assert code == common.EXIT_USAGE and report is None and "12.345" in err


@pytest.mark.parametrize(
    ("text", "exponent", "minor"),
    [("12.34", 2, 1234), ("12", 2, 1200), ("0.5", 2, 50), ("100", 0, 100), ("1.000", 2, 100)],
)
def test_parse_amount(text: str, exponent: int, minor: int) -> None:
    assert parse_amount(text, exponent) == minor


@pytest.mark.parametrize("text", ["12.345", "-1", "abc", "NaN", "1e400"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(TransactionInputError):
        parse_amount(text, 2)


@pytest.mark.pcsc
@pytest.mark.xdist_group("pcsc")
def test_txn_through_pcscd(vpcd_card: Callable[[str], object]) -> None:
    card = vpcd_card("mastercard-credit")
    code, report, err = run(
        ["txn", "--amount", "60.00", "--reader", f"pcsc:{card.reader_name}", "--pin-stdin",  # type: ignore[attr-defined]
         "--online", "sim"],
        stdin="4315\n",  # a real card's PIN never on the command line
    )  # fmt: skip
    assert code == 0, err
    assert report is not None and report["outcome"] == "APPROVED_ONLINE"
    assert report["oda_method"] == "CDA" and report["cvm_results"] == "410302"


def test_txn_refuses_an_aid_shorter_than_a_rid() -> None:
    code, _, err = run(["txn", "--amount", "1.00", "--reader", "sim:visa-credit", "--aid", "A000"])
    assert code == 64
    assert "5 to 16 bytes" in err
