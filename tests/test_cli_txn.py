"""`pos-txn` over the service: one JSON document on success, one clear line and a non-zero code otherwise.

Bad input never leaves a trace in the books or at the host: the amount, the order, the evidence, a data
directory that cannot be written, a damaged books file, an answer replayed from an earlier request.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.cli.common import EXIT_USAGE
from firmware.cli.txn import EXIT_DECLINED, EXIT_HOST, EXIT_SETUP, main
from firmware.emv.reader import CardReader
from firmware.host.channel import HostAddress, HostLink, TcpHostLink, open_host_link
from firmware.host.spec import pack
from firmware.txn.model import TxnStatus
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.txn_rig import SUPERVISOR_PASSWORD, Rig, assert_books_balance, rig_fixture


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _reader(spec: str) -> CardReader:
    assert spec.startswith("sim:")
    return SimReader(load_profile_card(spec.removeprefix("sim:")))


def run(rig: Rig, *argv: str, stdin: str = "", link: HostLink | None = None) -> tuple[int, object, str]:
    rig.service.close()  # the command opens the books itself, as a separate process would
    out, err = io.StringIO(), io.StringIO()

    def open_link(address: HostAddress) -> HostLink:
        assert address.plain  # the simulated host on 127.0.0.1 serves plain TCP, asked for by name
        return link or open_host_link(address, connect_timeout=2.0, read_timeout=5.0)

    code = main(
        ["--data-dir", str(rig.data_dir), "--host", f"127.0.0.1:{rig.sim.port}", "--plain", *argv],
        open_reader=_reader,
        open_link=open_link,
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
    )
    rig.reopen()
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else None, err.getvalue()


def _sale(rig: Rig, amount: str, order: str) -> dict:  # type: ignore[type-arg]
    code, document, err = run(
        rig, "sale", "--amount", amount, "--order", order, "--reader", "sim:visa-credit", "--pin", "1234"
    )
    assert code == 0, err
    assert isinstance(document, dict) and document["status"] == "approved"
    return document


def _evidence(order: str) -> list[str]:
    return [
        "--order",
        order,
        "--name",
        "Han Meimei",
        "--contact",
        "13900139000",
        "--reason",
        "returned",
        "--original-time",
        "2026-12-03 10:00",
        "--supervisor-stdin",
    ]


@pytest.mark.parametrize("amount", ["12.345", "-5", "0", "1e3", "12,30", "１２", "", "99999999999"])
def test_an_amount_that_is_not_one_is_refused_in_one_line_and_nothing_is_sent(rig: Rig, amount: str) -> None:
    code, document, err = run(rig, "sale", "--amount", amount, "--reader", "sim:visa-credit", "--pin", "1234")
    assert code == EXIT_DECLINED and document is None
    assert err.count("\n") == 1 and err.startswith("pos-txn: ")
    assert rig.acquirer.ledger_view() == [] and rig.service.journal() == []


def test_a_refund_of_an_order_that_does_not_exist_is_refused(rig: Rig) -> None:
    code, _, err = run(
        rig,
        "refund",
        "--amount",
        "1.00",
        "--to",
        "card",
        *_evidence("NOPE"),
        stdin=SUPERVISOR_PASSWORD + "\n",
    )
    assert code == EXIT_DECLINED and "no order matches order NOPE" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("--name", "Li\x07Lei"), ("--name", "L" * 41), ("--contact", "call me"), ("--reason", "x\u202ey")],
)
def test_evidence_that_is_too_long_or_holds_control_characters_is_refused(
    rig: Rig, option: str, value: str
) -> None:
    _sale(rig, "20.00", "E1")
    argv = _evidence("E1")
    argv[argv.index(option) + 1] = value
    code, _, err = run(rig, "void", *argv, stdin=SUPERVISOR_PASSWORD + "\n")
    assert code == EXIT_DECLINED and err.count("\n") == 1
    assert len(rig.acquirer.ledger_view()) == 1  # only the sale: nothing else reached the host


def test_a_wrong_supervisor_password_refuses_the_void(rig: Rig) -> None:
    _sale(rig, "20.00", "E2")
    code, _, err = run(rig, "void", *_evidence("E2"), stdin="999999\n")
    assert code == EXIT_DECLINED and "supervisor" in err
    code, document, err = run(rig, "void", *_evidence("E2"), stdin=SUPERVISOR_PASSWORD + "\n")
    assert code == 0, err
    assert isinstance(document, dict) and document["status"] == "approved"
    assert_books_balance(rig)


def _read_only(directory: Path, on: bool) -> None:
    """A directory nobody may write in, root included (root ignores mode bits: the immutable flag)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(directory)], check=True)
    else:
        directory.chmod(0o500 if on else 0o700)


def test_a_read_only_data_directory_refuses_the_sale_before_anything_is_sent(rig: Rig) -> None:
    books = rig.data_dir / "txn"
    _read_only(books, True)
    try:
        code, _, err = run(rig, "sale", "--amount", "5.00", "--reader", "sim:visa-credit", "--pin", "1234")
    finally:
        _read_only(books, False)
    assert code == EXIT_DECLINED and err.count("\n") == 1, err
    assert rig.acquirer.ledger_view() == []
    assert rig.service.journal() == []


def test_a_damaged_books_file_stops_the_terminal_and_is_kept(rig: Rig) -> None:
    _sale(rig, "7.00", "D1")
    rig.service.close()
    open_file = rig.data_dir / "txn" / "open.json"
    open_file.write_bytes(open_file.read_bytes()[:40])
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--data-dir", str(rig.data_dir), "--host", f"127.0.0.1:{rig.sim.port}", "--plain", "journal"],
        open_reader=_reader,
        open_link=open_host_link,
        stdout=out,
        stderr=err,
    )
    message = err.getvalue()
    assert code == EXIT_SETUP and "damaged" in message and message.count("\n") == 1, message
    assert list((rig.data_dir / "txn").glob("open.json.damaged-*"))
    assert not open_file.exists()  # kept aside, and no empty batch was started in its place


class _Replaying:
    """A link that answers the next request with an answer the host gave to another one (a replay)."""

    def __init__(self, link: HostLink, stale: bytes) -> None:
        self.link = link
        self.stale: bytes | None = stale

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        answer = self.link.exchange(packed, timeout)
        if self.stale is not None and packed[11:13] == bytes.fromhex("0200"):
            answer, self.stale = self.stale, None
        return answer


def test_an_answer_to_another_request_is_no_answer_and_the_sale_is_reversed(rig: Rig) -> None:
    link = TcpHostLink("127.0.0.1", rig.sim.port, connect_timeout=2.0, read_timeout=5.0)
    echo = {**rig.service.ctx.identity.fields(), "t": "0820", "11": "000777", "60": "00000001301"}
    stale = link.exchange(pack(echo))
    code, document, err = run(
        rig,
        "sale",
        "--amount",
        "4.00",
        "--order",
        "P2",
        "--reader",
        "sim:visa-credit",
        "--pin",
        "1234",
        link=_Replaying(link, stale),
    )
    assert code == EXIT_HOST and "reversed (A0)" in err, err  # an answer without a valid MAC
    assert isinstance(document, dict) and document["status"] == "reversed"  # the reversal went up at once
    [entry] = [e for e in rig.service.journal() if e.order == "P2"]
    assert entry.status is TxnStatus.REVERSED and "reversed (A0)" in entry.status_reason
    assert_books_balance(rig)


def test_a_pin_on_the_command_line_is_for_simulated_cards_only(rig: Rig) -> None:
    code, document, err = run(rig, "sale", "--amount", "1.00", "--reader", "pcsc", "--pin", "4321")
    assert code == EXIT_USAGE and document is None and "simulated cards" in err and "4321" not in err


def test_an_unknown_simulated_card_is_one_line(rig: Rig) -> None:
    def open_reader(spec: str) -> CardReader:
        from firmware.__main__ import open_reader as composition_open_reader

        return composition_open_reader(spec)

    rig.service.close()
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "--data-dir",
            str(rig.data_dir),
            "--host",
            f"127.0.0.1:{rig.sim.port}",
            "--plain",
            "sale",
            "--amount",
            "1.00",
            "--reader",
            "sim:no-such-card",
        ],
        open_reader=open_reader,
        open_link=open_host_link,
        stdout=out,
        stderr=err,
    )
    rig.reopen()
    assert code == EXIT_SETUP and err.getvalue().count("\n") == 1 and "no simulated card" in err.getvalue()


def test_a_terminal_that_has_not_signed_on_says_so(tmp_path: Path) -> None:
    rig = Rig(tmp_path, sign_on=False)
    try:
        code, _, err = run(rig, "sale", "--amount", "1.00", "--reader", "sim:visa-credit", "--pin", "1234")
        assert code == EXIT_SETUP and "sign on first" in err and err.count("\n") == 1
        for command in ("settle", "drain"):  # every message is MACed: no key-store error, the same words
            code, _, err = run(rig, command)
            assert code == EXIT_SETUP and "sign on first" in err and err.count("\n") == 1, (command, err)
        assert rig.acquirer.ledger_view() == []
    finally:
        rig.close()


def test_a_supervisor_password_line_without_end_is_refused_not_read_whole(rig: Rig) -> None:
    _sale(rig, "2.00", "L1")
    code, _, err = run(rig, "void", *_evidence("L1"), stdin="9" * 100_000)
    assert code == EXIT_USAGE and "longer than" in err


def test_generated_order_numbers_never_look_like_a_card_number(rig: Rig) -> None:
    import re

    for _ in range(5):
        code, document, err = run(
            rig, "sale", "--amount", "1.00", "--reader", "sim:visa-credit", "--pin", "1234"
        )
        assert code == 0, err
        assert isinstance(document, dict) and not re.search(r"\d{13}", document["order"])
