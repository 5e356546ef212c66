"""`pos-emv`: one masked JSON object on success, one line and an exit code on failure."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from firmware.cli import common, emv
from firmware.emv.reader import CardReader
from firmware.emv.report import expiry_text
from tests.emv_fakes import MC_AID, FakeCard, FakeReader, complete_app, h, tlv_bytes


def run(argv: list[str], open_reader: Callable[[str], CardReader]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ticks = itertools.count(step=0.002)
    code = emv.main(
        argv,
        open_reader,
        clock=lambda: next(ticks),
        now=lambda: datetime(2025, 6, 1, 9, 30, 0),
        random_bytes=lambda n: bytes(range(1, n + 1)),
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def card_reader(card: FakeCard | None) -> Callable[[str], CardReader]:
    return lambda spec: FakeReader(card, name=f"reader for {spec}")


def test_read_prints_one_masked_json_object() -> None:
    card = FakeCard([complete_app()])
    code, out, err = run(["read", "--reader", "sim:fake"], card_reader(card))
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["reader"] == "reader for sim:fake"
    assert report["atr"] == "3B6800000073C84000009000"
    assert report["application"]["aid"] == MC_AID.hex().upper()
    assert report["application"]["label"] == "MASTERCARD"
    assert report["pan"] == "541333******0094"
    assert report["expiry"] == "2025-12"
    assert (report["aip"], report["afl"], report["gpo_format"]) == ("1980", "0801010110010200", "77")
    assert report["missing_mandatory"] == []
    first, second, third = report["records"]
    assert (first["sfi"], first["record"], first["oda"]) == (1, 1, True)
    assert first["tags"]["5A"] == "541333******0094"
    assert first["tags"]["5F24"] == "251231"
    assert second["tags"]["8C"] == "9F02069F03069F1A0295055F2A029A039C019F3704"
    assert third["tags"]["57"].startswith("541333******0094D")
    assert third["tags"]["5F20"] == "*" * len("CARDHOLDER/TEST")
    assert all(row["ms"] == 2.0 for row in report["trace"])
    assert report["trace"][0]["command"] == "00A404000E315041592E5359532E444446303100"
    # The PDOL got the terminal's country and currency and the injected unpredictable number.
    assert card.gpo_commands == [h("83 08 0156 0156 01020304")]
    for secret in ("5413330089020094", "D2512201", "CARDHOLDER"):
        assert secret not in out


def test_no_card_is_one_line_and_exit_2() -> None:
    code, out, err = run(["read", "--reader", "pcsc"], card_reader(None))
    assert (code, out) == (common.EXIT_NO_CARD, "")
    assert err.startswith("pos-emv: no card") and err.count("\n") == 1


def test_no_supported_application_is_exit_3() -> None:
    card = FakeCard([complete_app(h("A0000009999999"))])
    code, out, err = run(["read", "--reader", "sim:fake"], card_reader(card))
    assert (code, out) == (common.EXIT_NO_APPLICATION, "")
    assert (
        err
        == "pos-emv: no supported application: no application supported by both the card and the terminal\n"
    )


def test_bad_card_data_is_exit_4() -> None:
    bad_afl = tlv_bytes(0x77, tlv_bytes(0x82, h("1980")) + tlv_bytes(0x94, h("00010100")))
    card = FakeCard([complete_app(gpo_response=bad_afl)])
    code, out, err = run(["read", "--reader", "sim:fake"], card_reader(card))
    assert (code, out) == (common.EXIT_CARD_ERROR, "")
    assert "AFL entry 1" in err and err.count("\n") == 1


def test_bad_configuration_is_exit_5(tmp_path: Path) -> None:
    config = tmp_path / "applications.json"
    config.write_text("{}")
    code, _, err = run(["read", "--config", str(config)], card_reader(FakeCard([])))
    assert code == common.EXIT_CONFIG
    assert f"{config}: applications: missing" in err


def test_aid_option_picks_the_application() -> None:
    first, second = MC_AID + h("01"), MC_AID + h("02")
    card = FakeCard([complete_app(first, priority=0x01), complete_app(second, priority=0x02)])
    code, out, _ = run(["read", "--reader", "sim:fake", "--aid", second.hex()], card_reader(card))
    assert code == 0
    report = json.loads(out)
    assert report["application"]["aid"] == second.hex().upper()
    assert [c["aid"] for c in report["selection"]["candidates"]] == [
        first.hex().upper(),
        second.hex().upper(),
    ]


def test_aid_option_naming_an_absent_application() -> None:
    card = FakeCard([complete_app()])
    code, out, err = run(["read", "--aid", "A0000000031010"], card_reader(card))
    assert (code, out) == (common.EXIT_NO_APPLICATION, "")
    assert err == "pos-emv: no supported application: the card offers no application A0000000031010\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["read", "--reader", "usb"],
        ["read", "--reader", "sim:"],
        ["read", "--aid", "A000"],
        ["read", "--aid", "zz"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    code, out, err = run(argv, card_reader(None))
    assert (code, out) == (common.EXIT_USAGE, "")
    assert "usage: pos-emv" in err


def test_an_opener_failing_outside_the_firmware_is_one_line() -> None:
    def opener(spec: str) -> CardReader:
        raise LookupError("no profile named 'nope'")

    code, out, err = run(["read", "--reader", "sim:nope"], opener)
    assert (code, out) == (common.EXIT_NO_CARD, "")
    assert err == "pos-emv: cannot open reader 'sim:nope': no profile named 'nope'\n"


def test_card_removed_during_the_read() -> None:
    card = FakeCard([complete_app()])
    reader = FakeReader(card)
    calls = itertools.count()

    def leaving(apdu: bytes) -> bytes:
        if next(calls) == 3:
            reader.card = None
        return card(apdu)

    reader.card = leaving
    code, out, err = run(["read"], lambda spec: reader)
    assert (code, out) == (common.EXIT_NO_CARD, "")
    assert "card left reader" in err


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (h("251231"), "2025-12"),
        (h("491130"), "2049-11"),
        (h("500101"), "1950-01"),
        (h("2512"), None),
        (None, None),
    ],
)
def test_expiry_text(value: bytes | None, text: str | None) -> None:
    assert expiry_text(value) == text


def test_a_card_subcommand_runs_with_the_shared_reader_handling() -> None:
    seen: list[str] = []
    parser = common.Parser(prog="pos-emv txn")
    emv.add_reader_argument(parser)
    parser.add_argument("--amount", type=int, required=True)

    def run_txn(argv: list[str], open_reader: Callable[[str], CardReader]) -> tuple[int, str, str]:
        args = parser.parse_args(argv)
        out, err = io.StringIO(), io.StringIO()
        env = emv.Environment(
            open_reader, None, lambda: 0.0, lambda: datetime(2025, 6, 1), bytes, out, err
        )

        def body(transport: object, config: object) -> int:
            seen.append(f"{args.reader} {args.amount}")
            env.stdout.write("done\n")
            return 0

        return emv.run_with_card(args, env, body), out.getvalue(), err.getvalue()

    code, out, _ = run_txn(["--reader", "sim:x", "--amount", "100"], card_reader(FakeCard([])))
    assert (code, out, seen) == (0, "done\n", ["sim:x 100"])
    code, _, err = run_txn(["--amount", "100"], card_reader(None))
    assert code == common.EXIT_NO_CARD and err.startswith("pos-emv: no card")


def test_the_subcommands_are_a_static_list() -> None:
    assert [subcommand.name for subcommand in emv.SUBCOMMANDS] == ["read", "txn"]
    code, out, err = run(["txn", "--amount", "1.00", "--online", "sim"], card_reader(FakeCard([])))
    assert (code, out) == (common.EXIT_CONFIG, "")
    assert err == "pos-emv: no online factory: run through the pos-emv entry point\n"
