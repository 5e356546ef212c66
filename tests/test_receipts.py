"""Receipts: every slip kind (sale, void, refund to the card, cash refund, adjust, settlement, reversal
failure), merchant and customer copies, in 中文 and English, drawn as PNG with the CJK font and encoded as
ESC/POS; the card number masked everywhere; the receipt desk's files and printer; the kiosk's reversal slip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pygame
import pytest

from firmware.printer.escpos import FS_CHINESE_ON, EscPosPrinter, PrinterError, columns_of, wrap
from firmware.screens.base import Receipt
from firmware.screens.render import find_font
from firmware.screens.slip import ReceiptDesk, SlipPainter, slips_of
from firmware.txn.model import JournalEntry, RefundMethod, TxnType
from firmware.txn.receipts import KINDS, Copy, Mark, Slip
from firmware.txn.reverse import OriginalRef
from firmware.txn.terms import Language
from sim.card import load_profile_card
from sim.reader import SimReader
from tests.kiosk_rig import INFO, kiosk_on, play, typed
from tests.txn_rig import Rig, evidence, rig_fixture, supervisor_approves

CLEAR_PANS = ("4761739001010010", "5413330089010434")  # sim/profiles visa-credit, mastercard-credit
MASKED = re.compile(r"[0-9]{6}\*{6}[0-9]{4}")
ESC_INIT, GS_CUT, QR_STORE = b"\x1b@", b"\x1dV", b"\x1d(k"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Any, JournalEntry | None]]]:
    """One result of each kind from the service against the simulated acquirer (kind -> result, original)."""
    rig = Rig(tmp_path_factory.mktemp("receipts"))
    service = rig.service
    try:

        def sale(amount: int, order: str, profile: str = "visa-credit", pin: str = "1234") -> Any:
            card = SimReader(load_profile_card(profile))
            return service.sale(card, amount, order=order, pin=lambda kind, tries: pin)

        out: dict[str, tuple[Any, JournalEntry | None]] = {}
        first = sale(5000, "R1001")
        out["sale"] = (first, None)
        out["void"] = (
            service.void(OriginalRef(order="R1001"), evidence("R1001"), supervisor=supervisor_approves),
            first.entry,
        )
        second = sale(12000, "R1002", "mastercard-credit", "4315")
        ref = OriginalRef(order="R1002")
        out["refund"] = (
            service.refund(ref, 2000, RefundMethod.CARD, evidence("R1002"), supervisor=supervisor_approves),
            second.entry,
        )
        out["cash_refund"] = (
            service.refund(ref, 1000, RefundMethod.CASH, evidence("R1002"), supervisor=supervisor_approves),
            second.entry,
        )
        third = sale(8000, "R1003")
        out["adjust"] = (
            service.adjust(
                OriginalRef(order="R1003"), 8000, 9200, evidence("R1003"), supervisor=supervisor_approves
            ),
            third.entry,
        )
        out["settlement"] = (service.settle(), None)
        row = {"kind": "reversal", "trace": third.entry.trace, "reason": "98", "amount": 8000,
               "attempts": 3, "last_error": "host closed the connection", "flagged": True}  # fmt: skip
        out["reversal_failure"] = (row, third.entry)
        assert set(out) == set(KINDS)
        yield out
    finally:
        rig.close()


def _slips(
    results: dict[str, tuple[Any, JournalEntry | None]], kind: str, language: Language
) -> tuple[Slip, ...]:
    result, original = results[kind]
    receipt = Receipt(kind, result, language, original)
    return slips_of(receipt, INFO, _terms(), datetime.now().astimezone())


def _terms() -> Any:
    from firmware.txn.terms import load_terms

    return load_terms()


@pytest.fixture(scope="module")
def painter() -> SlipPainter:
    font = find_font()
    assert font is not None, "no CJK font: install fonts-wqy-microhei (build.sh setup does)"
    return SlipPainter(font)


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", KINDS)
def test_each_slip_kind_renders_as_png_with_every_glyph(
    results: dict[str, tuple[Any, JournalEntry | None]],
    painter: SlipPainter,
    tmp_path: Path,
    kind: str,
    language: Language,
) -> None:
    slips = _slips(results, kind, language)
    assert [s.copy for s in slips] == (
        [Copy.MERCHANT] if kind == "settlement" else [Copy.MERCHANT, Copy.CUSTOMER]
    )
    for slip in slips:
        painter.missing.clear()
        path = tmp_path / f"{kind}-{slip.copy.value}.png"
        painter.save_png(slip, path)
        image = pygame.image.load(str(path))
        width, height = image.get_size()
        assert width == 384 and 300 < height < 3000, (kind, image.get_size())
        assert painter.missing == [], f"{kind} {slip.copy}: no glyph for {painter.missing!r}"
        text = slip.text()
        assert not any(pan in text for pan in CLEAR_PANS)
        if kind != "settlement":
            assert MASKED.search(text), f"{kind}: no masked card number\n{text}"


@pytest.mark.parametrize("kind", ["void", "refund", "cash_refund", "adjust"])
def test_reverse_slips_show_evidence_reason_terms_supervisor_and_processing_time(
    results: dict[str, tuple[Any, JournalEntry | None]], kind: str
) -> None:
    merchant, customer = _slips(results, kind, Language.ZH)
    text = merchant.text()
    for expected in ("申请人：李雷 Li Lei", "联系方式：13800138000", "原因：customer returned the goods",
                     "主管授权：已授权", "交易条款", "预计处理时间：", "通知编号："):  # fmt: skip
        assert expected in text, (kind, expected, text)
    terms = _terms()
    from firmware.txn.model import ReverseOperation

    operation = ReverseOperation(kind)
    assert terms.of(operation).processing_time.zh in text
    if kind in ("refund", "cash_refund"):
        assert ("退款方式：退回原卡" if kind == "refund" else "退款方式：现金当面退还") in text
    reference = customer.qr_data()
    assert reference is not None and re.fullmatch(r"[NC][0-9]{12}", reference)
    assert merchant.qr_data() is None  # the QR code is the customer's
    assert terms.of(operation).notice.zh[:10] in customer.text()
    english = _slips(results, kind, Language.EN)[0].text()
    assert "Applicant: 李雷 Li Lei" in english and "Expected processing time: " in english


def test_the_reversal_failure_slip(results: dict[str, tuple[Any, JournalEntry | None]]) -> None:
    merchant, customer = _slips(results, "reversal_failure", Language.EN)
    assert "REVERSAL NOT DELIVERED" in merchant.text()
    assert "Reversal reason: no answer from the host (98)" in merchant.text()
    assert "Tries: 3" in merchant.text() and "host closed the connection" in merchant.text()
    assert customer.qr_data() is not None and customer.qr_data().startswith("R")  # type: ignore[union-attr]
    assert "Tries" not in customer.text()


@pytest.mark.parametrize("kind", KINDS)
def test_escpos_bytes_hold_the_commands_and_the_text_in_gb18030(
    results: dict[str, tuple[Any, JournalEntry | None]], kind: str
) -> None:
    printer = EscPosPrinter(None, text="gb18030")
    for slip in _slips(results, kind, Language.ZH):
        data = printer.encode(slip)
        assert data.startswith(ESC_INIT) and FS_CHINESE_ON in data and GS_CUT in data
        assert b"\x1ba\x01" in data  # centred header and title
        text = data.decode("gb18030", errors="strict")
        for line in slip.lines:
            if line.mark in (Mark.PAIR, Mark.TITLE, Mark.HEADER) and columns_of(line.plain(slip.colon)) <= 16:
                assert line.plain(slip.colon) in text, (kind, line)
        for pan in CLEAR_PANS:
            assert pan.encode() not in data
        if kind != "settlement":
            assert MASKED.search(text)
        qr = slip.qr_data()
        if qr is not None:
            assert QR_STORE in data and b"1P0" + qr.encode() in data  # GS ( k: store the QR data
        else:
            assert b"1P0" not in data


def test_escpos_raster_mode_sends_the_png_as_a_picture(
    results: dict[str, tuple[Any, JournalEntry | None]], painter: SlipPainter
) -> None:
    slip = _slips(results, "refund", Language.ZH)[1]
    data = EscPosPrinter(None, text="raster").encode(slip, painter.png(slip))
    assert data.startswith(ESC_INIT) and b"\x1dv0" in data and GS_CUT in data
    assert "退货".encode("gb18030") not in data  # the text is in the picture


def test_wrap_counts_a_cjk_character_as_two_columns() -> None:
    assert columns_of("退货 ab") == 7
    assert all(
        columns_of(piece) <= 32 for piece in wrap("退款已提交至收单机构，将退回原支付卡，预计3-7个工作日到账")
    )
    assert wrap("a" * 40) == ["a" * 32, "a" * 8]


def test_the_printer_writes_its_device_and_names_it_when_it_cannot(
    results: dict[str, tuple[Any, JournalEntry | None]], tmp_path: Path
) -> None:
    slip = _slips(results, "sale", Language.ZH)[0]
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    sent = EscPosPrinter(device)(slip, b"")
    assert device.read_bytes() == sent and sent.startswith(ESC_INIT)
    with pytest.raises(PrinterError, match="nowhere/lp0"):
        EscPosPrinter(tmp_path / "nowhere" / "lp0")(slip, b"")


def test_the_receipt_desk_keeps_png_and_escpos_and_survives_a_printer_failure(
    results: dict[str, tuple[Any, JournalEntry | None]], painter: SlipPainter, tmp_path: Path
) -> None:
    desk = ReceiptDesk(INFO, _terms(), painter, folder=tmp_path, printer=EscPosPrinter(None))
    result, original = results["refund"]
    desk(Receipt("refund", result, Language.ZH, original))
    desk.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [re.sub(r"N[0-9]{12}", "N*", n) for n in names] == [
        "001-refund-N*-merchant.escpos",
        "001-refund-N*-merchant.png",
        "002-refund-N*-customer.escpos",
        "002-refund-N*-customer.png",
    ]
    assert pygame.image.load(str(tmp_path / names[1])).get_width() == 384
    broken = ReceiptDesk(INFO, _terms(), painter, printer=EscPosPrinter(tmp_path / "none" / "lp0"))
    broken(Receipt("sale", results["sale"][0], Language.EN))
    broken.close()
    assert len(broken.failures) == 2 and "none/lp0" in broken.failures[0]


def test_the_receipt_desk_numbers_on_after_a_restart_and_keeps_only_the_last_slips(
    results: dict[str, tuple[Any, JournalEntry | None]], painter: SlipPainter, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a slip")  # anything else in the folder stays
    sale = Receipt("sale", results["sale"][0], Language.EN)
    for _ in range(3):  # three kiosk starts, two slips each (merchant and customer copies)
        desk = ReceiptDesk(INFO, _terms(), painter, folder=tmp_path, printer=EscPosPrinter(None), kept=5)
        desk(sale)
        desk.close()
    numbers = sorted(int(p.name.split("-")[0]) for p in tmp_path.glob("*.png"))
    assert numbers == [2, 3, 4, 5, 6]  # 1 went when the sixth slip came; none was numbered twice
    assert sorted(int(p.name.split("-")[0]) for p in tmp_path.glob("*.escpos")) == numbers
    assert (tmp_path / "notes.txt").read_text() == "not a slip"
    with pytest.raises(ValueError):
        ReceiptDesk(INFO, _terms(), painter, folder=tmp_path, kept=0)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path, answer_timeout=1.0)


def test_the_kiosk_prints_the_reversal_failure_slip_once(rig: Rig) -> None:
    receipts: list[Receipt] = []
    rig.acquirer.set_faults("close,only=0200+0400+0401")  # no answer to the sale, nor to its reversal
    with kiosk_on(rig, language="en", receipts=receipts) as kiosk:
        play(
            kiosk,
            "ENTER",
            "1",
            *typed("4500"),
            "ENTER",
            "CARD INSERT visa-credit",
            "EXPECT Cardholder: enter your PIN",
            *typed("1234"),
            "ENTER",
            "EXPECT A reversal waits",
            "F3",
            "WAIT 300",
        )
    kinds = [r.kind for r in receipts]
    assert kinds.count("reversal_failure") == 1, kinds
    slip_receipt = next(r for r in receipts if r.kind == "reversal_failure")
    assert slip_receipt.original is not None and slip_receipt.original.type is TxnType.SALE
    merchant = slips_of(slip_receipt, INFO, _terms(), datetime.now().astimezone())[0]
    assert MASKED.search(merchant.text()) and "(98)" in merchant.text()
