"""The kiosk's loop and input: keys from a PC keyboard, a Linux keypad through SDL and the touch
keypad; fields in fen and multi-tap; work off the loop; redraws only on a change; an idle loop
that sleeps; a restart that shows what waits for the host; SIGTERM; the scripted keypad."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pygame
import pytest

from firmware.__main__ import main as pos_terminal
from firmware.app import Kiosk, ScriptError, parse_script
from firmware.screens.entry import AmountField, DateTimeField, MultiTapField
from firmware.screens.idle import IdleScreen
from firmware.screens.jobs import Done, Failed, JobDone, JobRunner
from firmware.screens.keys import LINUX_KEYPAD, LINUX_TO_SDL_SCANCODE, PC_KEYBOARD, Key, key_of
from firmware.screens.menu import MainMenu
from firmware.screens.sale import new_order_number
from firmware.txn.model import TxnStatus
from tests.kiosk_rig import KioskProcess, kiosk_on, play, typed
from tests.txn_rig import Rig, assert_books_balance, rig_fixture

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 30.0  # a bound on waiting for a thread or a process, never an expectation of speed


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(tmp_path)


# ----- input -------------------------------------------------------------------------------------


def _keydown(key: int = 0, scancode: int = 0) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=key, scancode=scancode, mod=0)


def test_the_pc_keyboard_mapping() -> None:
    assert key_of(_keydown(pygame.K_RETURN)) is Key.ENTER
    assert key_of(_keydown(pygame.K_KP_ENTER)) is Key.ENTER
    assert key_of(_keydown(pygame.K_ESCAPE)) is Key.CANCEL
    assert key_of(_keydown(pygame.K_BACKSPACE)) is Key.CLEAR
    assert key_of(_keydown(pygame.K_F4)) is Key.F4
    assert key_of(_keydown(pygame.K_UP)) is Key.UP and key_of(_keydown(pygame.K_DOWN)) is Key.DOWN
    assert [key_of(_keydown(getattr(pygame, f"K_{d}"))) for d in range(10)] == [
        Key(str(d)) for d in range(10)
    ]
    assert key_of(_keydown(pygame.K_a)) is None
    assert set(PC_KEYBOARD.values()) == set(Key)


def test_a_linux_keypad_reaches_every_key_through_sdl_scancodes() -> None:
    assert set(LINUX_KEYPAD.values()) == set(Key)
    for code, key in LINUX_KEYPAD.items():
        assert key_of(_keydown(scancode=LINUX_TO_SDL_SCANCODE[code])) is key, code
    assert key_of(_keydown(scancode=155)) is Key.CANCEL  # KEY_CANCEL (223) as SDL_SCANCODE_CANCEL
    assert (
        LINUX_TO_SDL_SCANCODE[28] == pygame.KSCAN_RETURN
        and LINUX_TO_SDL_SCANCODE[14] == pygame.KSCAN_BACKSPACE
    )


def test_amounts_are_fen_from_the_first_key() -> None:
    field = AmountField()
    for key in (Key.D0, Key.D1, Key.D2, Key.D3, Key.D4):
        field.press(key)
    assert (field.value, field.shown) == (1234, "12.34")
    field.press(Key.CLEAR)
    assert (field.value, field.shown) == (123, "1.23")
    for _ in range(20):
        field.press(Key.D9)
    assert len(field.digits) == 12  # field 4 of ISO 8583


def test_multi_tap_letters_modes_and_the_next_key() -> None:
    field = MultiTapField(40)
    now = 100.0
    for key in (Key.D5, Key.D5, Key.D5, Key.D4, Key.D4, Key.D4, Key.D0):
        field.press(key, now)
    assert field.value == "LI "
    field.press(Key.D4, now)
    field.press(Key.F2, now)  # next letter on the same key
    field.press(Key.D4, now)
    assert field.value == "LI GG"
    field.press(Key.D2, now)
    field.press(Key.D2, now + 5)  # too late to cycle: a new letter
    assert field.finish() == "LI GGAA"
    field.press(Key.F1, now)
    field.press(Key.D3, now)
    assert field.finish() == "LI GGAAd"


def test_a_date_and_time_is_a_whole_real_date() -> None:
    field = DateTimeField()
    for d in "2025013":
        field.press(Key(d))
    assert field.value(None) is None and field.shown == "2025-01-3_ __:__"
    field.press(Key.D1)
    assert field.value(None) is not None
    for d in "2561":
        field.press(Key(d))
    assert field.value(None) is None  # 25:61


def test_kiosk_order_numbers_are_digits_the_store_keeps(rig: Rig) -> None:
    from firmware.screens.base import Context
    from firmware.store.sensitive import check_storable

    with kiosk_on(rig) as kiosk:
        ctx: Context = kiosk.ctx
        orders = [new_order_number(ctx, rnd) for rnd in range(100)]
    assert all(len(o) == 14 and o.isdigit() for o in orders)
    assert len(set(orders)) >= 90  # a moved last digit may meet the next value
    for order in orders:
        check_storable(order, "order")  # the store's own rule: 14 digits that pass Luhn are refused


def test_the_touch_keypad_is_the_keypad(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        rect = next(rect for rect, key in kiosk.layout.keys if key is Key.ENTER)
        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=rect.center, button=1))
        kiosk.step(wait=False)
        assert isinstance(kiosk.top, MainMenu)


def test_f4_switches_the_language_on_the_idle_screen(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        play(kiosk, "EXPECT 终端号 TERM0001", "F4", "EXPECT Terminal TERM0001", "F4", "EXPECT 终端号")


def test_a_script_is_checked_line_by_line() -> None:
    steps = parse_script(
        "# a sale\nENTER\n1\nWAIT 10\nCARD INSERT visa-credit\nSHOT a-1\nEXPECT 12.34 元\nCARD REMOVE\n"
    )
    assert [s.verb for s in steps] == ["KEY", "KEY", "WAIT", "CARD_INSERT", "SHOT", "EXPECT", "CARD_REMOVE"]
    assert steps[5].arg == "12.34 元"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split("```text\n# a sale of 12.34\n", 1)[1].split("```", 1)[0]
    verbs = [s.verb for s in parse_script(example)]
    assert verbs[:7] == ["KEY"] * 7 and verbs[7:] == ["CARD_INSERT", "EXPECT", "WAIT", "SHOT"]
    for bad in ("ENTER ENTER", "WAIT soon", "CARD", "SHOT ../x", "EXPECT", "PRESS 1"):
        with pytest.raises(ScriptError, match="line 1"):
            parse_script(bad)


# ----- the loop ----------------------------------------------------------------------------------


def test_work_runs_off_the_loop_and_a_failure_is_an_outcome() -> None:
    woken = threading.Event()
    runner = JobRunner(woken.set, after=lambda: "after")
    release = threading.Event()
    slow = runner.start("owner", lambda job: release.wait(WAIT_S) and 42)
    failing = runner.start("owner", lambda job: 1 / 0)
    assert runner.poll() == []  # the caller was not held
    release.set()
    deadline = time.monotonic() + WAIT_S
    messages: list[JobDone] = []
    while len(messages) < 2 and time.monotonic() < deadline:
        woken.wait(0.1)
        messages += [m for m in runner.poll() if isinstance(m, JobDone)]
    assert [m.job for m in messages] == [slow, failing]
    assert messages[0].outcome == Done(42) and messages[0].after == "after"
    assert isinstance(messages[1].outcome, Failed) and isinstance(
        messages[1].outcome.error, ZeroDivisionError
    )
    assert runner.stop(WAIT_S)


def _settle(kiosk: Kiosk) -> None:
    """Step until no background job (the queue refresh, the uploader) is left to report."""
    deadline = time.monotonic() + WAIT_S
    while kiosk.jobs.busy() and time.monotonic() < deadline:
        kiosk.step()
    assert not kiosk.jobs.busy()
    kiosk.step()


class _HandClock:
    """The kiosk's clock (`ctx.clock`), moved by the test: `tick()` turns one second."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += timedelta(seconds=1)


def test_redraws_only_when_something_changed(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        clock = _HandClock(kiosk.ctx.clock().replace(hour=9, minute=0, second=0))
        kiosk.ctx.clock = clock
        play(kiosk, "ENTER", "EXPECT 主菜单")
        _settle(kiosk)
        before = kiosk.redraws
        for _ in range(10):
            kiosk.step()
        clock.tick()
        for _ in range(10):
            kiosk.step()
        assert kiosk.redraws == before  # the menu shows no time and the minute stayed: nothing to redraw
        play(kiosk, "DOWN")
        assert kiosk.redraws == before + 1  # the key, and nothing else (no job under way)
        play(kiosk, "CANCEL", "EXPECT 终端号")
        assert isinstance(kiosk.top, IdleScreen)
        _settle(kiosk)
        before = kiosk.redraws
        for _ in range(10):
            kiosk.step()
        assert kiosk.redraws == before  # the clock's second did not turn
        for second in range(1, 4):
            clock.tick()
            kiosk.step()
            kiosk.step()
            assert kiosk.redraws == before + second  # the idle screen's clock: once a second
        assert "09:00:04" in kiosk.screen_text()  # one second on the menu, three here


def test_the_status_bar_minute_turns_on_a_screen_that_shows_no_clock(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        clock = _HandClock(kiosk.ctx.clock().replace(hour=9, minute=59, second=58))
        kiosk.ctx.clock = clock
        play(kiosk, "ENTER", "EXPECT 主菜单", "EXPECT 09:59")
        _settle(kiosk)
        clock.tick()
        kiosk.step()
        assert "09:59" in kiosk.screen_text()  # 09:59:59: the minute has not turned
        clock.tick()
        kiosk.step()
        assert "10:00" in kiosk.screen_text() and "09:59" not in kiosk.screen_text()


def test_the_idle_loop_sleeps(rig: Rig) -> None:
    with kiosk_on(rig) as kiosk:
        play(kiosk, "EXPECT TERM0001")
        _settle(kiosk)
        wakeups = 0
        began, cpu_began = time.monotonic(), time.thread_time()
        while time.monotonic() - began < 2.0:
            kiosk.step()
            wakeups += 1
        elapsed, cpu = time.monotonic() - began, time.thread_time() - cpu_began
    # the loop's own thread: a slow or loaded machine only lowers both numbers
    assert wakeups <= elapsed * kiosk.options.fps + 2  # Clock.tick sleeps between wake-ups
    assert cpu < 0.5 * elapsed, f"{cpu:.2f} s of CPU in {elapsed:.2f} s idle: the loop is not sleeping"


def test_a_restart_shows_the_reversal_left_waiting_and_retry_sends_it(rig: Rig) -> None:
    rig.acquirer.set_faults("drop,only=0200,times=1")  # the 0200 gets no answer...
    rig.link.down_after(1)  # ...and then the network is gone: the reversal cannot go up
    with kiosk_on(rig) as kiosk:
        play(
            kiosk,
            "ENTER",
            "1",
            *typed("2500"),
            "ENTER",
            "CARD INSERT visa-credit",
            "EXPECT 请持卡人输入密码",
            *typed("1234"),
            "ENTER",
            "EXPECT 交易失败",
            "EXPECT 冲正待上送",
        )
    rig.reopen()  # the terminal restarts over the same books
    rig.link.down_after(None)
    with kiosk_on(rig) as kiosk:
        play(kiosk, "EXPECT 1笔冲正待上送", "F3", "EXPECT 冲正", "ENTER", "EXPECT 已送达")
        play(kiosk, "CANCEL", "EXPECT 终端号")
        assert "冲正待上送" not in kiosk.screen_text()
    assert all(e.status is not TxnStatus.PENDING for e in rig.service.journal())
    assert_books_balance(rig)


# ----- pos-terminal ------------------------------------------------------------------------------


def test_pos_terminal_plays_a_script_and_writes_its_shots(rig: Rig, tmp_path: Path) -> None:
    rig.service.close()
    script = tmp_path / "sale.txt"
    script.write_text(
        "EXPECT TERM0001\nSHOT idle\nENTER\n1\n1\n0\n0\n0\nENTER\nCARD INSERT visa-credit\n"
        "EXPECT PIN\n1\n2\n3\n4\nENTER\nEXPECT Approved\nSHOT approved\n",
        encoding="utf-8",
    )
    shots = tmp_path / "shots"
    argv = ["--data-dir", str(rig.data_dir), "--host", f"127.0.0.1:{rig.sim.port}", "--plain", "--lang", "en"]
    assert pos_terminal([*argv, "--headless", "--script", str(script), "--shots", str(shots)]) == 0
    assert (shots / "idle.png").is_file() and (shots / "approved.png").is_file()
    script.write_text("EXPECT nothing like this\n", encoding="utf-8")
    assert pos_terminal([*argv, "--headless", "--script", str(script)]) == 1
    rig.reopen()
    assert_books_balance(rig)


def test_sigterm_stops_the_kiosk_cleanly(rig: Rig, tmp_path: Path) -> None:
    rig.service.close()
    kiosk = KioskProcess(rig, tmp_path)
    try:
        kiosk.wait_for(lambda said: any(m.startswith("READY=1") for m in said), "READY=1")  # up and idle
        assert kiosk.stop() == 0, kiosk.stderr()  # the loop saw the signal: a clean exit, not a kill
    finally:
        kiosk.close()
    rig.reopen()
    assert_books_balance(rig)
