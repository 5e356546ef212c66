"""The technician menu driven by keypad events alone: the password (wrong, locked, a factory one to
change), keys and a TMK load from a USB stick then sign-on, parameters and terms, the reader test,
the log export (nothing clear in it) and a firmware update from a file (refusals in one line);
then every technician screen in 中文 and English as PNG, each checked for glyphs and fit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psec
import pygame
import pytest

from firmware.__main__ import technician_tools
from firmware.app import Kiosk
from firmware.errors import ConfigError, ImageRefusedError
from firmware.keys.device import load_device_key
from firmware.keys.layout import KeyLayout, open_password_store
from firmware.keys.passwords import PasswordStore
from firmware.keys.working_keys import TMK_NAME
from firmware.screens.common import EntryScreen
from firmware.screens.keys import Key
from firmware.screens.render import wrap
from firmware.screens.technician import PATH_LETTERS, TechnicianMenu
from firmware.txn.model import ReverseOperation, TxnType
from firmware.txn.rules import terms_lines
from firmware.txn.technician import MediaPathError, Technician, TechnicianSettings, load_technician_settings
from firmware.txn.terms import Language
from firmware.update.slots import status
from tests.flash_fixtures import OTHER, PRODUCTION, TARGET, build, small_source, trust
from tests.kiosk_rig import kiosk_on, play, typed
from tests.txn_rig import KBPK, TMK, Rig, rig_fixture

TECH_PASSWORD = "135790246801"  # a technician password: 12 characters or more
FACTORY_PASSWORD = "111111111111"
VISA_PAN = "4761739001010010"
VISA_MASKED = "476173******0010"
LOGIN = ["ENTER", "9", *typed(TECH_PASSWORD), "ENTER"]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


def technician(
    rig: Rig,
    tmp_path: Path,
    *,
    factory: bool = False,
    max_failures: int = 5,
    log_file: Path | None = None,
) -> Technician:
    layout = KeyLayout.under(rig.data_dir)
    device_key = load_device_key(layout.device_key_path)
    passwords = PasswordStore(layout.passwords_path, device_key, time.monotonic, max_failures=max_failures)
    if factory:
        passwords.install_factory_passwords({"technician": FACTORY_PASSWORD})
    else:
        assert passwords.set_first_password("technician", TECH_PASSWORD)
    media = tmp_path / "media"
    (media / "usb").mkdir(parents=True, exist_ok=True)
    settings = TechnicianSettings(media, tmp_path / "root", log_file, log_lines=50)
    return Technician(rig.service, passwords, settings, rig.data_dir, target=TARGET)


@contextmanager
def technician_kiosk(rig: Rig, tech: Technician | None, language: str = "zh") -> Iterator[Kiosk]:
    with kiosk_on(rig, language=language) as kiosk:
        kiosk.ctx.technician = tech
        yield kiosk


def path_keys(path: str) -> list[str]:
    """The keys of `path` in the path field (lower case first; key 1: / . _ -; F1 to digits and back)."""
    keys: list[str] = []
    last, digits = "", False
    for char in path:
        if char.isdigit():
            if not digits:
                keys.append("F1")  # abc -> 123
                digits = True
            keys.append(char)
            last = ""
            continue
        if digits:
            keys += ["F1", "F1"]  # 123 -> ABC -> abc
            digits = False
        letter = char.upper()
        key = next(k for k, letters in PATH_LETTERS.items() if letter in letters)
        if key == last:
            keys.append("F2")
        keys.extend([key] * (PATH_LETTERS[key].index(letter) + 1))
        last = key
    return keys


def write_kit(directory: Path, key_version: str = "01") -> Path:
    """A TMK key block and its KBPK file, as `pos-sim kit` writes them (the rig's TEST TMK and KBPK)."""
    directory.mkdir(parents=True, exist_ok=True)
    block = psec.tr31.wrap(KBPK, f"B0000K0TD{key_version}N0000", TMK)
    (directory / "tmk.tr31").write_text(str(block) + "\n", encoding="ascii")
    (directory / "kbpk.hex").write_text(KBPK.hex().upper() + "\n", encoding="ascii")
    return directory


# ----- the password ------------------------------------------------------------------------------


def test_wrong_passwords_are_counted_then_the_role_is_locked(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path, max_failures=3)
    with technician_kiosk(rig, tech) as kiosk:
        play(kiosk, "ENTER", "9", "EXPECT 请输入技术员密码", *typed("1234"), "EXPECT ****")
        play(kiosk, "ENTER", "EXPECT 密码错误（连续 1 次）")
        play(kiosk, *typed("999999"), "ENTER", "EXPECT 密码错误（连续 2 次）")
        play(kiosk, *typed("999999"), "ENTER", "EXPECT 已锁定，请 1800 秒后再试")
        play(kiosk, *typed(TECH_PASSWORD), "ENTER", "EXPECT 已锁定")  # the right one, but locked
        assert isinstance(kiosk.top, EntryScreen)
        assert TECH_PASSWORD not in kiosk.screen_text()


def test_a_factory_password_must_be_changed_before_the_menu(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path, factory=True)
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(
            kiosk,
            "ENTER",
            "9",
            *typed(FACTORY_PASSWORD),
            "ENTER",
            "EXPECT A factory password: set a new one first",
            *typed("123"),
            "ENTER",
            "EXPECT At least 12 digits",
            *typed("456789012"),
            "ENTER",
            "EXPECT The new password again",
            *typed("999999"),
            "ENTER",
            "EXPECT The two differ: type it again",
            *typed(TECH_PASSWORD),
            "ENTER",
            *typed(TECH_PASSWORD),
            "ENTER",
            "EXPECT Password changed",
            "ENTER",
            "EXPECT Reader test",
        )
        assert isinstance(kiosk.top, TechnicianMenu)
    assert tech.passwords.verify("technician", TECH_PASSWORD).authenticated
    assert not tech.passwords.verify("technician", FACTORY_PASSWORD).authenticated


def test_no_technician_tools_is_said_so(rig: Rig) -> None:
    with technician_kiosk(rig, None, "en") as kiosk:
        play(kiosk, "ENTER", "9", "EXPECT Technician tools not configured here", "ENTER", "EXPECT Main menu")


# ----- keys ---------------------------------------------------------------------------------------


def test_keys_by_kcv_then_a_tmk_from_the_stick_and_sign_on_again(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    write_kit(tech.media_dir / "usb" / "kit")
    before = {info.name: info for info in rig.service.ctx.keys.list()}
    with technician_kiosk(rig, tech) as kiosk:
        play(kiosk, *LOGIN, "1", f"EXPECT {TMK_NAME}  tdes  v1  KCV {before[TMK_NAME].kcv}")
        play(
            kiosk,
            "F1",
            "EXPECT 选择主密钥块文件",
            "EXPECT usb/kit/tmk.tr31",
            "1",
            "EXPECT 选择保护密钥文件",
            "EXPECT 手动输入路径",
            "DOWN",  # the KBPK typed, this time
            "ENTER",
            "EXPECT 输入路径",
            *path_keys("usb/kit/kbpk.hex"),
            "EXPECT usb/kit/kbpk.hex",
            "ENTER",
            "EXPECT 装载主密钥",
            "EXPECT 保护密钥：",
            "ENTER",
            "EXPECT 主密钥已装载",
            f"EXPECT 版本 2 KCV {before[TMK_NAME].kcv}",
            "EXPECT 密钥块 B 密钥版本 01",
            "ENTER",  # sign on again
            "EXPECT 签到成功",
            "CANCEL",
            "EXPECT 密钥管理",
            f"EXPECT {TMK_NAME}  tdes  v2  KCV {before[TMK_NAME].kcv}",
            "EXPECT （密钥块版本 01）",
        )
        shown = kiosk.screen_text()
        play(kiosk, "CANCEL", "EXPECT 技术员菜单")  # the flow's steps took the keys list's place
        assert isinstance(kiosk.top, TechnicianMenu) and len(kiosk.stack) == 3
    after = {info.name: info for info in rig.service.ctx.keys.list()}
    assert after[TMK_NAME].version == 2 and after[TMK_NAME].block_version == "01"
    for secret in (TMK.hex(), KBPK.hex()):
        assert secret.upper() not in shown.upper()


def test_an_older_key_block_is_refused_on_screen(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    kit = write_kit(tech.media_dir / "usb" / "kit", "02")
    tech.load_tmk(kit / "tmk.tr31", kit / "kbpk.hex")
    write_kit(kit, "01")
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(
            kiosk,
            *LOGIN,
            "1",
            "F1",
            "1",
            "1",
            "ENTER",
            "EXPECT Refused",
            "EXPECT not newer than the installed",
        )
        play(kiosk, "CANCEL", "EXPECT Keys", "EXPECT v2")


def test_paths_outside_the_media_directory_are_refused(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    (tmp_path / "secret.hex").write_text("00" * 16)
    for typed_path in ("../secret.hex", str(tmp_path / "secret.hex"), "usb/../../secret.hex"):
        with pytest.raises(MediaPathError):
            tech.media_file(typed_path)
    with pytest.raises(MediaPathError):
        tech.load_tmk(tmp_path / "secret.hex", tmp_path / "secret.hex")
    (tech.media_dir / "usb" / "link.tr31").symlink_to(tmp_path / "secret.hex")
    assert tech.files(".tr31") == []
    with pytest.raises(MediaPathError):
        tech.media_file("usb/link.tr31")


# ----- parameters and terms -----------------------------------------------------------------------


def test_parameters_and_terms_are_shown_read_only_and_scroll(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    terms = rig.service.ctx.terms
    last = terms_lines(ReverseOperation.ADJUST, terms, Language.EN)[-1]
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(
            kiosk,
            *LOGIN,
            "2",
            "EXPECT MAC: x9.19",
            "EXPECT Sign-on key scheme: 003",
            "EXPECT Terminal id: TERM0001",
            "EXPECT Merchant id: 123456789012345",
        )
        assert last not in kiosk.screen_text()
        play(kiosk, *(["DOWN"] * 40), f"EXPECT {last}")
        assert "Terminal id" not in kiosk.screen_text()
        play(kiosk, *(["UP"] * 40), "EXPECT MAC: x9.19", "ENTER", "EXPECT Reader test")


# ----- reader test --------------------------------------------------------------------------------


def test_the_reader_test_reads_the_card_in_the_slot(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    with technician_kiosk(rig, tech) as kiosk:
        play(kiosk, *LOGIN, "3", "EXPECT 请插入测试卡", "CARD INSERT visa-credit")
        play(
            kiosk,
            "EXPECT AID：A0000000031010",
            f"EXPECT 卡号：{VISA_MASKED}",
            "EXPECT 有效期：",
            "EXPECT APDU",
        )
        first = kiosk.screen_text()
        play(kiosk, "ENTER", f"EXPECT {VISA_MASKED}")  # read again
        play(kiosk, "CARD REMOVE", "CANCEL", "EXPECT 技术员菜单", "CARD INSERT mastercard-credit", "3")
        play(kiosk, "EXPECT AID：A0000000041010")
    assert VISA_PAN not in first
    assert "毫秒" in first


def test_a_reader_test_without_a_card_says_so(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(kiosk, *LOGIN, "3", "EXPECT Insert a card", "ENTER", "EXPECT Insert a card")


# ----- log export ---------------------------------------------------------------------------------


def _sale(kiosk: Kiosk) -> None:
    play(
        kiosk,
        "ENTER",
        "1",
        *typed("4321"),
        "ENTER",
        "CARD INSERT visa-credit",
        "EXPECT 请持卡人输入密码",
        *typed("1234"),
        "ENTER",
        "EXPECT 交易成功",
        "ENTER",  # the receipt
        "EXPECT 签购单预览",
        "ENTER",  # back to idle
        "CARD REMOVE",
    )


def test_log_export_to_the_stick_holds_no_clear_pan_nor_key(rig: Rig, tmp_path: Path) -> None:
    log = tmp_path / "terminal.log"
    log.write_text("".join(f"line {n}\n" for n in range(200)) + f"card {VISA_PAN} seen\n")
    tech = technician(rig, tmp_path, log_file=log)
    with technician_kiosk(rig, tech) as kiosk:
        _sale(kiosk)
        play(
            kiosk,
            *LOGIN,
            "4",
            "EXPECT 选择导出目录",
            "EXPECT usb",
            "1",
            "EXPECT 将导出",
            "ENTER",
            "EXPECT 已导出",
            "EXPECT 交易 1 笔",
            "EXPECT 日志 50 行",
        )
    exports = list((tech.media_dir / "usb").iterdir())
    assert len(exports) == 1 and exports[0].name.startswith("pos-export-TERM0001-")
    files = {path.name: path.read_text(encoding="utf-8") for path in exports[0].iterdir()}
    assert sorted(files) == ["journal.json", "log.txt", "queue.json"]
    journal = json.loads(files["journal.json"])
    sales = [entry for entry in journal["entries"] if entry["type"] == TxnType.SALE.value]
    assert [(s["amount"], s["masked_pan"]) for s in sales] == [(4321, VISA_MASKED)]
    assert json.loads(files["queue.json"])["batch"] == rig.service.ctx.book.batch
    log_lines = files["log.txt"].splitlines()
    assert len(log_lines) == 50 and log_lines[-1] == f"card {VISA_MASKED} seen"
    everything = "\n".join(files.values()).upper()
    for secret in (VISA_PAN, TMK.hex().upper(), KBPK.hex().upper()):
        assert secret not in everything


# ----- firmware update ----------------------------------------------------------------------------


def test_firmware_update_from_a_file_verifies_confirms_installs_and_asks_for_a_restart(
    rig: Rig, tmp_path: Path
) -> None:
    tech = technician(rig, tmp_path)
    trust(rig.data_dir, PRODUCTION)
    source = small_source(tmp_path / "src")
    usb = tech.media_dir / "usb"
    build(source, usb, "1.0.0")
    build(source, usb / "x-arch", "1.1.0", arch="aarch64")
    build(source, usb / "y-key", "1.2.0", OTHER)
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(
            kiosk,
            *LOGIN,
            "5",
            "EXPECT usb/pos-terminal-1.0.0-x86_64.img",
            "1",
            "EXPECT The image checks out",
            "EXPECT Version 1.0.0 (now none)",
            "EXPECT x86_64 / Python 3.11",
            "ENTER",
            "EXPECT 1.0.0 installed into slot a",
            "EXPECT Restart the terminal to run it",
            "ENTER",
            "EXPECT Firmware update",
        )
        now = status(tech.settings.slots_root, rig.data_dir)
        assert now.current == "a" and str(now.slot("a").version) == "1.0.0"
        play(kiosk, "5", "1", "EXPECT Image refused", "EXPECT not-newer: image 1.0.0 is not above")
        play(kiosk, "CANCEL", "5", "2", "EXPECT Image refused", "EXPECT wrong-architecture")
        play(kiosk, "CANCEL", "5", "3", "EXPECT Image refused", "EXPECT unknown-key")
    with pytest.raises(ImageRefusedError):
        tech.check_image(usb / "pos-terminal-1.0.0-x86_64.img")


def test_a_typed_image_path_and_a_second_install_on_trial(rig: Rig, tmp_path: Path) -> None:
    tech = technician(rig, tmp_path)
    trust(rig.data_dir, PRODUCTION)
    source = small_source(tmp_path / "src")
    tech.install_image(build(source, tech.media_dir / "usb", "1.0.0"))
    build(source, tech.media_dir / "usb" / "new", "2.0.0")
    with technician_kiosk(rig, tech, "en") as kiosk:
        play(kiosk, *LOGIN, "5", "EXPECT Type a path", "UP", "ENTER")
        play(kiosk, *path_keys("usb/new/pos-terminal-2.0.0-x86_64.img"), "ENTER")
        play(kiosk, "EXPECT Version 2.0.0 (now 1.0.0)", "ENTER", "EXPECT 2.0.0 installed into slot b")
        play(kiosk, "EXPECT back to slot a unless good within 3 starts", "ENTER", "EXPECT Reader test")
        assert isinstance(kiosk.top, TechnicianMenu) and len(kiosk.stack) == 3
        play(kiosk, "5", "EXPECT Type a path", "UP", "ENTER", *path_keys("usb/nothing.img"), "ENTER")
        play(kiosk, "EXPECT Refused", "EXPECT no file")  # stays on the typed path
    trial = status(tech.settings.slots_root, rig.data_dir).trial
    assert trial is not None and trial.slot == "b"


# ----- every screen, in both languages ------------------------------------------------------------


def _check_fit(kiosk: Kiosk, name: str) -> list[str]:
    """What does not fit on the top screen: a missing glyph, a title or hint wider than its box."""
    view = kiosk.top.view()
    fonts, layout = kiosk.fonts, kiosk.layout
    problems = []
    for role, text in (
        ("title", view.title),
        ("hint", view.hint),
        *(("body", line.text) for line in view.lines),
    ):
        font = fonts.get(role)
        missing = [c for c, m in zip(text, font.metrics(text), strict=True) if m is None]
        if missing:
            problems.append(f"{name}: no glyph for {missing!r} in {text!r}")
    if fonts.get("title").size(view.title)[0] > layout.title.width - 12:
        problems.append(f"{name}: title {view.title!r} too wide")
    if len(wrap(fonts.get("hint"), view.hint, layout.hint.width)) > 1:
        problems.append(f"{name}: hint {view.hint!r} on more than one line")
    key_width = min(rect.width for rect, key in layout.keys if key is Key.F1) - 4
    for _, label in view.softkeys:
        if fonts.get("fkey").size(label)[0] > key_width:
            problems.append(f"{name}: soft key {label!r} too wide")
    return problems


def _tour(kiosk: Kiosk, tech: Technician, shots: Path, zh: bool) -> tuple[list[str], list[str]]:
    def t(zh_text: str, en_text: str) -> str:
        return zh_text if zh else en_text

    names: list[str] = []
    problems: list[str] = []

    def shot(name: str, expect: str, *before: str) -> None:
        play(kiosk, *before, f"EXPECT {expect}", f"SHOT {name}", shots=shots)
        names.append(name)
        problems.extend(_check_fit(kiosk, name))

    shot("tech_login", t("请输入技术员密码", "Technician password"), "ENTER", "9", *typed("1"))
    shot("tech_wrong", t("密码错误", "Wrong password"), "ENTER")
    shot("tech_menu", t("固件升级", "Firmware update"), *typed(TECH_PASSWORD), "ENTER")
    shot("tech_keys", "KCV", "1")
    shot("tech_block_pick", "tmk.tr31", "F1")
    shot("tech_kbpk_pick", "kbpk.hex", "1")
    shot("tech_path", "usb/kit_", "DOWN", "ENTER", *path_keys("usb/kit"))
    shot("tech_tmk_confirm", t("保护密钥", "KBPK"), "CANCEL", "1")
    shot("tech_tmk_loaded", t("主密钥已装载", "TMK loaded"), "ENTER")
    shot("tech_signed_on", t("签到成功", "Signed on"), "ENTER")
    shot("tech_keys_after", "v2", "CANCEL")
    shot("tech_parameters", "x9.19", "CANCEL", "2")
    shot("tech_terms", t("撤销订单", "Cancel order"), *(["DOWN"] * 9))
    shot("tech_reader_insert", t("请插入测试卡", "Insert a card"), "CANCEL", "3")
    shot("tech_reader_result", VISA_MASKED, "CARD INSERT visa-credit")
    shot("tech_export_pick", "usb", "CARD REMOVE", "CANCEL", "4")
    shot("tech_export_confirm", t("将导出", "Exports the queue"), "1")
    shot("tech_exported", t("已导出", "Exported"), "ENTER")
    shot("tech_image_pick", "pos-terminal-1.0.0-x86_64.img", "ENTER", "5")
    shot("tech_image_ok", t("镜像校验通过", "The image checks out"), "1")
    shot("tech_installed", t("请重启终端", "Restart the terminal"), "ENTER")
    shot("tech_image_refused", "not-newer", "ENTER", "5", "1")
    shot("tech_password_old", t("请输入当前密码", "Current password"), "CANCEL", "6")
    return names, problems


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_technician_screen_in_both_languages_as_png(rig: Rig, tmp_path: Path, language: str) -> None:
    tech = technician(rig, tmp_path)
    write_kit(tech.media_dir / "usb" / "kit")
    trust(rig.data_dir, PRODUCTION)
    build(small_source(tmp_path / "src"), tech.media_dir / "usb", "1.0.0")
    shots = tmp_path / f"shots-{language}"
    with technician_kiosk(rig, tech, language) as kiosk:
        names, problems = _tour(kiosk, tech, shots, language == "zh")
    assert problems == []
    assert len(names) >= 20
    for name in names:
        path = shots / f"{name}.png"
        image = pygame.image.load(str(path))
        assert image.get_size() == (320, 480), name
        small = pygame.transform.scale(image, (32, 48))
        assert len({small.get_at((x, y))[:3] for x in range(32) for y in range(48)}) >= 5, name


# ----- settings and wiring ------------------------------------------------------------------------


def test_the_shipped_settings_and_their_refusals(tmp_path: Path) -> None:
    shipped = load_technician_settings()
    assert (shipped.media_dir, shipped.slots_root, shipped.log_file) == (
        Path("/media"),
        Path("/opt/pos-terminal"),
        None,
    )
    bad = tmp_path / "technician.json"
    for document, where in (
        ({"media_dir": "media", "slots_root": "/r", "log_lines": 5}, "media_dir"),
        ({"media_dir": "/m", "slots_root": "/r", "log_lines": 0}, "log_lines"),
        ({"media_dir": "/m", "slots_root": "/r", "log_lines": 5, "usb": "/x"}, "usb"),
    ):
        bad.write_text(json.dumps(document))
        with pytest.raises(ConfigError, match=where):
            load_technician_settings(bad)


def test_the_composition_root_takes_the_directories_from_the_environment(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POS_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("POS_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("POS_LOG_FILE", str(tmp_path / "pos.log"))
    passwords = open_password_store(KeyLayout.under(rig.data_dir), time.monotonic)
    tech = technician_tools(rig.data_dir, rig.service, passwords)
    assert tech.settings.slots_root == tmp_path / "root"
    assert tech.settings.media_dir == tmp_path / "media"
    assert tech.settings.log_file == tmp_path / "pos.log"
    assert tech.login(TECH_PASSWORD) is None  # no technician password set yet
