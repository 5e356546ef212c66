"""The kiosk as a person sees it: every catalogue string renders in the CJK font and fits its box,
and every screen, in 中文 and in English, is saved as a PNG and checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pygame
import pytest

from firmware.app import Kiosk
from firmware.screens.render import Fonts, Layout, find_font, wrap
from firmware.screens.text import CATALOGUE, SAMPLE_VALUES, tr
from firmware.txn.model import TxnType
from firmware.txn.terms import Language
from tests.kiosk_rig import kiosk_on, play, tapped, typed
from tests.txn_rig import SUPERVISOR_PASSWORD, Rig, rig_fixture

BODY_LINES = 3  # a body string may wrap to at most this many lines


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def _box(key: str, layout: Layout) -> tuple[str, int, int]:
    """(font role, width, lines) of the box a catalogue string is drawn in."""
    key_width = min(rect.width for rect, _ in layout.keys) - 4
    if key.startswith("key."):
        return "key", key_width, 1
    if key.startswith("soft."):
        return "fkey", key_width, 1
    if key.startswith("hint."):
        return "hint", layout.hint.width, 1
    if key.startswith("network."):
        return "status", layout.width // 3, 1
    if key.startswith("menu.") or key.endswith(".title") or key in ("orders.detail",):
        return "title", layout.title.width - 12, 1
    return "body", layout.body.width - 4, BODY_LINES


@pytest.mark.parametrize("size", [(320, 480), (480, 800)])
def test_every_catalogue_string_renders_with_the_cjk_font_and_fits_its_box(size: tuple[int, int]) -> None:
    path = find_font()
    assert path is not None, "no CJK font: install fonts-wqy-microhei (build.sh setup does)"
    pygame.font.init()
    layout = Layout.of(*size, touch_keypad=True)
    fonts = Fonts(path, layout.scale)
    problems = []
    for key in CATALOGUE:
        for language in Language:
            text = tr(key, language, **SAMPLE_VALUES)
            assert "{" not in text, (key, language, text)
            role, width, lines = _box(key, layout)
            font = fonts.get(role)
            missing = [c for c, m in zip(text, font.metrics(text), strict=True) if m is None]
            if missing:
                problems.append(f"{key} [{language.value}]: no glyph for {missing!r}")
            wrapped = wrap(font, text, width)
            if len(wrapped) > lines or any(font.size(piece)[0] > width for piece in wrapped):
                problems.append(f"{key} [{language.value}]: {text!r}: {len(wrapped)} line(s) of {width}px")
    assert problems == []


def test_the_catalogue_has_both_languages_for_every_string() -> None:
    for key, text in CATALOGUE.items():
        assert text.zh.strip() and text.en.strip(), key
        assert text.zh != text.en or key.startswith(("money", "soft.language")), key


def _distinct_colours(path: Path) -> int:
    image = pygame.image.load(str(path))
    small = pygame.transform.scale(image, (32, 48))
    return len({small.get_at((x, y))[:3] for x in range(32) for y in range(48)})


def _tour(kiosk: Kiosk, rig: Rig, shots: Path, zh: bool) -> list[str]:
    """Every screen, each saved as a shot; returns the names shot."""

    def t(zh_text: str, en_text: str) -> str:
        return zh_text if zh else en_text

    names: list[str] = []
    rig.acquirer.set_faults("delay=0.6,only=0200,times=1")

    def shot(name: str, expect: str) -> list[str]:
        names.append(name)
        return [f"EXPECT {expect}", f"SHOT {name}"]

    play(
        kiosk,
        *shot("idle", "TERM0001"),
        "ENTER",
        *shot("menu", t("主菜单", "Main menu")),
        "1",
        *typed("8888"),
        *shot("sale_amount", "88.88"),
        "ENTER",
        *shot("sale_insert", t("请插入银行卡", "Please insert the card")),
        "CARD INSERT visa-credit",
        *shot("sale_pin", t("请持卡人输入密码", "Cardholder: enter your PIN")),
        *typed("1234"),
        "ENTER",
        *shot("sale_working", t("正在处理", "Processing")),  # the host answers after 0.6 s
        *shot("sale_result", t("交易成功", "Approved")),
        "ENTER",
        *shot("sale_receipt", t("商户存根", "MERCHANT COPY")),
        "F1",
        *shot("sale_receipt_customer", t("持卡人存根", "CUSTOMER COPY")),
        "ENTER",
        "CARD REMOVE",
        shots=shots,
    )
    sale = [e for e in rig.service.journal() if e.type is TxnType.SALE][-1]
    play(
        kiosk,
        "F2",
        *shot("orders_menu", t("按订单号", "By order number")),
        "4",
        *typed("0010"),
        *shot("orders_last4", "0010"),
        "ENTER",
        *shot("orders_list", sale.order),
        "ENTER",
        *shot("order_detail", t("无后续交易", "Nothing since")),
        "CANCEL",
        "CANCEL",
        "CANCEL",
        "CANCEL",
        "ENTER",
        "3",
        *shot("refund_order", t("请输入订单号", "Enter the order number")),
        *typed(sale.order),
        "ENTER",
        *shot("refund_amount", t("请输入退货金额", "Enter the refund amount")),
        *typed("1000"),
        "ENTER",
        *shot("refund_method", t("退回原卡", "To the card")),
        "2",
        *shot("evidence_date", t("原交易日期时间", "Original date and time")),
        *typed(f"{sale.created:%Y%m%d%H%M}"),
        "ENTER",
        *tapped("WANG"),
        *shot("evidence_name", "WANG"),
        "ENTER",
        *typed("13800138000"),
        *shot("evidence_contact", "13800138000"),
        "ENTER",
        *shot("evidence_reason", t("客户退货", "Goods returned")),
        "1",
        *shot("terms", t("交易条款", "Terms")),
        "ENTER",
        *shot("confirm", t("请确认", "Please confirm")),
        "ENTER",
        *typed(SUPERVISOR_PASSWORD),
        *shot("supervisor", "******"),
        "ENTER",
        *shot("cash_refund_result", t("现金退款已登记", "Cash refund recorded")),
        "ENTER",
        *shot("cash_refund_receipt", t("现金退款单", "CASH REFUND")),
        "F1",
        "DOWN",
        "DOWN",
        "DOWN",
        "DOWN",
        *shot("cash_refund_receipt_customer", t("持卡人存根", "CUSTOMER COPY")),
        "ENTER",
        "ENTER",
        "4",
        *typed(sale.order),
        "ENTER",
        *shot("adjust_original", t("请输入原交易金额", "Enter the original amount")),
        "CANCEL",
        "CANCEL",
        "CANCEL",
        "F3",
        *shot("request_status", t("最近的请求", "Recent requests")),
        "ENTER",
        *shot("request_status_retried", t("已送达", "Sent")),
        "CANCEL",
        "ENTER",
        "7",
        *shot("settlement", t("按确认键结算", "OK to settle")),
        "ENTER",
        *shot("settlement_result", t("新批次", "New batch")),
        "ENTER",
        *shot("settlement_receipt", t("结算单", "SETTLEMENT")),
        "ENTER",
        "ENTER",
        "8",
        *shot("sign_on", t("签到成功", "Signed on")),
        shots=shots,
    )
    return names


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_screen_in_both_languages_as_png(rig: Rig, tmp_path: Path, language: str) -> None:
    shots = tmp_path / f"shots-{language}"
    with kiosk_on(rig, language=language) as kiosk:
        names = _tour(kiosk, rig, shots, language == "zh")
    assert len(names) >= 25
    for name in names:
        path = shots / f"{name}.png"
        assert path.is_file(), name
        assert pygame.image.load(str(path)).get_size() == (320, 480), name
        assert _distinct_colours(path) >= 5, f"{name}.png looks blank"


def test_the_larger_panel_scales_the_layout(rig: Rig, tmp_path: Path) -> None:
    with kiosk_on(rig, language="zh", width=480, height=800) as kiosk:
        play(kiosk, "EXPECT TERM0001", "SHOT idle", "ENTER", "EXPECT 主菜单", "SHOT menu", shots=tmp_path)
        assert kiosk.layout.scale == 1.5
    for name in ("idle", "menu"):
        assert pygame.image.load(str(tmp_path / f"{name}.png")).get_size() == (480, 800)
