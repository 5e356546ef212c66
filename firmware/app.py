"""The kiosk loop: keypad events -> screens -> the terminal service, never blocking on card or host.

    kiosk = Kiosk(service, info, slot, verify_supervisor=..., options=KioskOptions())
    kiosk.run()           # until SIGTERM / SIGINT / the window closed; then kiosk.close()

How it waits: `pygame.time.Clock.tick(fps)` (SDL_Delay, a real sleep) then
`pygame.event.get()`. `pygame.event.wait()` polls SDL's queue every
millisecond under the kmsdrm, fbcon and dummy drivers; measured on the
build machine (dummy driver, 5 s idle): `event.wait(100)` 1.2 % of a core,
`tick(10)` 0.08 %, `tick(20)` 0.15 %, `tick(30)` 0.29 %, and 60 per second
0.8 % (bench/bench_kiosk.py). The default is 60 per second: a key reaches the
screen in about one frame (median 9 ms), within the 1 % idle budget. The screen is redrawn only when
something changed: a key, a job's message, a card, or (for a screen that
shows time) the second of the clock the screens show (`ctx.clock`, the
wall clock unless one is given); every screen when its minute turns.

Card and host work runs on one worker thread (`firmware.screens.jobs`);
it wakes the loop with a pygame user event, and the loop takes the
messages from the runner's queue. SIGTERM and SIGINT set a flag the loop
reads at its next wake-up; `close()` lets the running job end (its own
time-outs bound it) and leaves the display. A restart opens the same books,
and the idle screen shows what still waits for the host (`service.queue()`).

Health (systemd, `firmware.sdnotify`): `on_ready()` is called once, from
the loop, when the idle screen has been drawn and the books have been read
(the first queue view came back); `heartbeat()` every `heartbeat_every`
seconds after that, from the loop too, so a loop that hangs stops the pings
and the watchdog restarts the kiosk.

`CardSlot` holds the card the terminal sees (a `CardReader`): the
composition root fills it (a simulated card: `CARD INSERT`; a PC/SC reader
later); a payment gets a session over it that ends, as if the card were
pulled, when the card leaves the slot or the operator cancels.

The scripted keypad (`run_script`, `pos-terminal --headless --script`):
one token a line; `#` starts a comment (after a token too, but not after
EXPECT, whose text is taken whole):

    ENTER, CANCEL, CLEAR, F1-F4, UP, DOWN, 0-9    a key, posted as the PC keyboard's KEYDOWN
    WAIT ms                                       run the loop for that long
    CARD INSERT profile | CARD REMOVE             the card slot
    SHOT name                                     the screen as DIR/name.png (once it is not busy)
    EXPECT text                                   the screen's text holds `text` (waits up to
                                                  `expect_timeout` seconds for work to finish)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

from firmware.emv.reader import CardReader
from firmware.errors import CardRemovedError, NoCardError, PosError
from firmware.screens.base import (
    Context,
    Kind,
    NetworkState,
    Receipt,
    Screen,
    TerminalInfo,
    Transition,
)
from firmware.screens.jobs import Done, Failed, JobDone, JobRunner, PinRequest
from firmware.screens.keys import PC_KEYBOARD, Key, key_of
from firmware.screens.text import tr
from firmware.txn.model import JournalEntry
from firmware.txn.service import TerminalService
from firmware.txn.terms import Language

os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # no audio: spares SDL's 100 ms audio probe

import pygame

from firmware.screens.idle import IdleScreen
from firmware.screens.render import Fonts, Layout, Painter, StatusBar, find_font
from firmware.screens.slip import SlipPainter

__all__ = [
    "CardSlot",
    "Kiosk",
    "KioskOptions",
    "ScriptError",
    "ScriptStep",
    "parse_script",
    "run_script",
]

DEFAULT_FPS: Final = 20
EXPECT_TIMEOUT: Final = 30.0
_HOST_DOWN: Final = ("HostUnreachableError", "HostTimeoutError", "HostConnectionLostError")


@dataclass(frozen=True)
class KioskOptions:
    width: int = 320
    height: int = 480
    language: Language = Language.ZH
    touch_keypad: bool = True
    fps: int = DEFAULT_FPS
    headless: bool = False
    font_path: str | None = None  # None: the first CJK font found


class _Session:
    """One payment's view of the card: it ends (CardRemovedError) when the card leaves or is abandoned."""

    def __init__(self, slot: CardSlot, reader: CardReader, aborted: threading.Event) -> None:
        self._slot = slot
        self._reader = reader
        self._aborted = aborted
        self.name = reader.name

    def _check(self) -> None:
        if self._aborted.is_set():
            raise CardRemovedError("the operator cancelled: the card session is ended")
        if self._slot.current() is not self._reader:
            raise CardRemovedError("the card was removed")

    def power_on(self) -> bytes:
        self._check()
        return self._reader.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        self._check()
        return self._reader.transmit(apdu)

    def power_off(self) -> None:
        self._reader.power_off()


class CardSlot:
    """The card the terminal sees; `notify(present)` is called (from any thread) when it changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reader: CardReader | None = None
        self.notify: Callable[[bool], None] = lambda present: None

    def insert(self, reader: CardReader) -> None:
        with self._lock:
            self._reader = reader
        self.notify(True)

    def remove(self) -> None:
        with self._lock:
            self._reader = None
        self.notify(False)

    def current(self) -> CardReader | None:
        with self._lock:
            return self._reader

    def present(self) -> bool:
        return self.current() is not None

    def reader(self, aborted: threading.Event) -> CardReader:
        reader = self.current()
        if reader is None:
            raise NoCardError("no card in the slot")
        return _Session(self, reader, aborted)


def _status_minute(when: datetime) -> str:
    """The time as the status bar shows it."""
    return f"{when:%H:%M}"


class Kiosk:
    def __init__(
        self,
        service: TerminalService,
        info: TerminalInfo,
        slot: CardSlot,
        *,
        verify_supervisor: Callable[[str], bool],
        receipts: Callable[[Receipt], None] = lambda receipt: None,
        options: KioskOptions = KioskOptions(),
        clock: Callable[[], datetime] | None = None,
        on_ready: Callable[[], None] = lambda: None,
        heartbeat: Callable[[], None] = lambda: None,
        heartbeat_every: float | None = None,
    ) -> None:
        self.options = options
        self.on_ready, self.heartbeat, self.heartbeat_every = on_ready, heartbeat, heartbeat_every
        self.ready = False  # the idle screen drawn and the books read: on_ready() was called
        self._books_read = False
        self._last_beat = 0.0
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # no sound: spares SDL's 100 ms audio probe
        if options.headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
        pygame.display.init()
        pygame.font.init()
        flags = 0
        self.surface = pygame.display.set_mode((options.width, options.height), flags)
        pygame.display.set_caption("POS")
        self._caption = "POS"
        self.wake_event = pygame.event.custom_type()
        self.card_event = pygame.event.custom_type()
        self.layout = Layout.of(options.width, options.height, touch_keypad=options.touch_keypad)
        self.fonts = Fonts(options.font_path or find_font(), self.layout.scale)
        self.painter = Painter(self.surface, self.fonts, self.layout)
        self.slip_painter = SlipPainter(self.fonts.path)
        self.slot = slot
        slot.notify = self._card_changed
        self.jobs = JobRunner(self._wake, after=service.queue)
        self.ctx = Context(
            service=service,
            info=info,
            jobs=self.jobs,
            card=slot,
            clock=clock or (lambda: datetime.now().astimezone()),
            verify_supervisor=verify_supervisor,
            receipts=receipts,
            language=options.language,
            render_slip=self.slip_painter.render,
        )
        self._flagged_reversals: set[int] | None = None  # printed already (None: not read yet)
        self.stack: list[Screen] = [IdleScreen(self.ctx)]
        self.ticker = pygame.time.Clock()
        self.stopping = False
        self.dirty = True
        self.redraws = 0
        self.shown: list[str] = []
        self._second = -1
        self._shown_minute = ""
        self._refresh_queue()

    # ----- signals and threads -----------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop at its next wake-up (at most 1/fps seconds)."""

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _wake(self) -> None:  # from the worker thread
        try:
            pygame.event.post(pygame.event.Event(self.wake_event))
        except pygame.error:
            pass  # the display is gone: the loop has ended

    def _card_changed(self, present: bool) -> None:  # from any thread
        try:
            pygame.event.post(pygame.event.Event(self.card_event, present=present))
        except pygame.error:
            pass

    def _refresh_queue(self) -> None:
        self.jobs.start(None, lambda job: None, "refresh")

    # ----- the loop ----------------------------------------------------------------------------

    @property
    def top(self) -> Screen:
        return self.stack[-1]

    def run(self) -> None:
        while not self.stopping:
            self.step()

    def step(self, *, wait: bool = True) -> None:
        """One wake-up: sleep (unless `wait` is False), take the events and messages, redraw if needed."""
        if wait:
            self.ticker.tick(self.options.fps)
        for event in pygame.event.get():
            self._event(event)
        for message in self.jobs.poll():
            self._message(message)
        shown = self.ctx.clock()  # the clock the screens show: its second and minute drive the redraws
        second = int(shown.timestamp())
        if second != self._second:
            self._second = second
            if self.top.ticks or self._shown_minute != _status_minute(shown):
                self.dirty = True  # ticking screens each second; all when the minute turns
        if self.dirty:
            self.redraw()
        if not self.ready and self._books_read and self.redraws and isinstance(self.stack[0], IdleScreen):
            self.ready = True
            self.on_ready()
        if self.ready and self.heartbeat_every is not None:
            now = time.monotonic()
            if now - self._last_beat >= self.heartbeat_every:
                self._last_beat = now
                self.heartbeat()

    def _event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.stopping = True
        elif event.type == pygame.KEYDOWN:
            key = key_of(event)
            if key is not None:
                self.press(key)
        elif event.type == pygame.MOUSEBUTTONDOWN and getattr(event, "button", 1) == 1:
            key = self.layout.key_at(event.pos) if self.top.view().keypad else None
            if key is not None:
                self.press(key)
        elif event.type == self.card_event:
            self._apply(self.top, self.top.on_card(bool(event.present)))
        elif event.type == pygame.VIDEOEXPOSE:
            self.dirty = True

    def press(self, key: Key) -> None:
        self._apply(self.top, self.top.handle(key))

    def _message(self, message: JobDone | PinRequest) -> None:
        owner = message.job.owner
        if isinstance(message, JobDone):
            self._note_network(message)
            if isinstance(message.after, dict):
                self.ctx.queue_view = message.after
                self._books_read = True
                self._reversal_slips(message)
            self.dirty = True
            if isinstance(owner, Screen) and owner in self.stack:
                self._apply(owner, owner.on_job(message))
        elif isinstance(owner, Screen) and owner in self.stack:
            self._apply(owner, owner.on_pin(message))
        else:
            message.answer(None)

    def _reversal_slips(self, done: JobDone) -> None:
        """A reversal newly flagged (its tries used up) gets its slip, once; those flagged before the
        kiosk started were printed when they were flagged."""
        flagged = {
            int(row["trace"]): row
            for row in self.ctx.queue_view.get("flagged", [])
            if row.get("kind") == "reversal" and isinstance(row.get("trace"), int)
        }
        if self._flagged_reversals is None:
            self._flagged_reversals = set(flagged)
            return
        value = done.outcome.value if isinstance(done.outcome, Done) else None
        entry = getattr(value, "entry", None)
        for trace in sorted(set(flagged) - self._flagged_reversals):
            self._flagged_reversals.add(trace)
            original = entry if isinstance(entry, JournalEntry) and entry.trace == trace else None
            self.ctx.receipts(Receipt("reversal_failure", flagged[trace], self.ctx.language, original))

    def _note_network(self, done: JobDone) -> None:
        if isinstance(done.outcome, Failed):
            if type(done.outcome.error).__name__ in _HOST_DOWN:
                self.ctx.network = NetworkState.OFFLINE
            return
        value = done.outcome.value
        stopped = getattr(value, "stopped", None) or getattr(getattr(value, "drained", None), "stopped", None)
        if stopped or getattr(value, "reversal_pending", False):
            self.ctx.network = NetworkState.OFFLINE
        elif getattr(done.job, "label", "") in ("host", "card"):
            self.ctx.network = NetworkState.ONLINE

    def _apply(self, owner: Screen, transition: Transition) -> None:
        """Apply a screen's transition; screens above `owner` (a PIN entry...) go first."""
        if transition.kind is Kind.STAY:
            self.dirty = True
            return
        while self.stack[-1] is not owner and len(self.stack) > 1:
            self.stack.pop()
        if transition.kind is Kind.PUSH and transition.screen is not None:
            self.stack.append(transition.screen)
        elif transition.kind is Kind.REPLACE and transition.screen is not None:
            if len(self.stack) > 1:
                self.stack[-1] = transition.screen
            else:
                self.stack.append(transition.screen)
        elif transition.kind is Kind.POP:
            if len(self.stack) > 1:
                self.stack.pop()
        elif transition.kind is Kind.HOME:
            del self.stack[1:]
        elif transition.kind is Kind.HOME_THEN and transition.screen is not None:
            del self.stack[1:]
            self.stack.append(transition.screen)
        self.dirty = True

    # ----- drawing -----------------------------------------------------------------------------

    def status_bar(self) -> StatusBar:
        ctx = self.ctx
        network = ctx.network
        label = tr(f"network.{network.value}", ctx.language)
        online = None if network is NetworkState.UNKNOWN else network is NetworkState.ONLINE
        return StatusBar(
            ctx.info.terminal_id,
            label,
            online,
            f"{'中' if ctx.language is Language.ZH else 'EN'} {self._shown_minute}",
        )

    def key_labels(self, softkeys: Sequence[tuple[Key, str]]) -> dict[Key, str]:
        lang = self.ctx.language
        labels = {
            Key.ENTER: tr("key.enter", lang),
            Key.CANCEL: tr("key.cancel", lang),
            Key.CLEAR: tr("key.clear", lang),
            Key.UP: "▲",
            Key.DOWN: "▼",
        }
        labels.update(dict(softkeys))
        return labels

    def redraw(self) -> None:
        view = self.top.view()
        self._shown_minute = _status_minute(self.ctx.clock())
        caption = f"POS {self.ctx.info.terminal_id} · {view.title}"
        if caption != self._caption:  # a desktop window names the screen it shows
            pygame.display.set_caption(caption)
            self._caption = caption
        self.shown = self.painter.draw(view, self.status_bar(), self.key_labels(view.softkeys))
        if self.layout.keypad is not None and view.keypad:
            self.shown += [f"{key.value} {label}" for key, label in view.softkeys]
        pygame.display.flip()
        self.redraws += 1
        self.dirty = False

    def screen_text(self) -> str:
        return "\n".join(self.shown)

    def shot(self, path: Path) -> None:
        self.redraw()
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))

    def close(self, timeout: float | None = 60.0) -> None:
        self.jobs.stop(timeout)
        pygame.display.quit()


# ----- the scripted keypad -------------------------------------------------------------------


class ScriptError(PosError):
    """A script line that is not a token, or an EXPECT the screen did not meet (line number given)."""


@dataclass(frozen=True)
class ScriptStep:
    line: int
    verb: str  # KEY, WAIT, CARD_INSERT, CARD_REMOVE, SHOT, EXPECT
    arg: str = ""


_KEYCODE: Final = {key: code for code, key in reversed(list(PC_KEYBOARD.items()))}


def parse_script(text: str) -> list[ScriptStep]:
    steps: list[ScriptStep] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        upper = word.upper()
        if upper != "EXPECT":  # a comment may follow a token; EXPECT's text is taken whole
            rest = rest.split("#", 1)[0]
        rest = rest.strip()
        if upper == "WAIT":
            if not (rest.isascii() and rest.isdigit()):  # '²' and '١٢' are digits to isdigit, not to int
                raise ScriptError(f"line {number}: WAIT takes milliseconds, e.g. WAIT 500")
            steps.append(ScriptStep(number, "WAIT", rest))
        elif upper == "CARD":
            action, _, profile = rest.partition(" ")
            if action.upper() == "INSERT" and profile.strip():
                steps.append(ScriptStep(number, "CARD_INSERT", profile.strip()))
            elif action.upper() == "REMOVE" and not profile:
                steps.append(ScriptStep(number, "CARD_REMOVE"))
            else:
                raise ScriptError(f"line {number}: CARD INSERT profile, or CARD REMOVE")
        elif upper in ("SHOT", "EXPECT"):
            if not rest:
                raise ScriptError(f"line {number}: {upper} needs {'a name' if upper == 'SHOT' else 'text'}")
            if upper == "SHOT" and not all(c.isalnum() or c in "-_." for c in rest):
                raise ScriptError(f"line {number}: a SHOT name has letters, digits, '-', '_' and '.'")
            steps.append(ScriptStep(number, upper, rest))
        else:
            if rest:
                raise ScriptError(f"line {number}: one token a line, not {line!r}")
            try:
                Key.named(word)
            except ValueError:
                raise ScriptError(f"line {number}: no key or command {word!r}") from None
            steps.append(ScriptStep(number, "KEY", word.upper()))
    return steps


def run_script(
    kiosk: Kiosk,
    steps: Sequence[ScriptStep],
    *,
    shots: Path | None,
    insert_card: Callable[[str], CardReader],
    expect_timeout: float = EXPECT_TIMEOUT,
) -> None:
    """Play `steps` on the kiosk; ScriptError at the first EXPECT the screen does not meet."""
    kiosk.step(wait=False)
    for step in steps:
        if step.verb == "KEY":
            _settle(kiosk, step, expect_timeout)
            key = Key.named(step.arg)
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=_KEYCODE[key], scancode=0, mod=0))
            kiosk.step(wait=False)
        elif step.verb == "WAIT":
            end = time.monotonic() + int(step.arg) / 1000
            while time.monotonic() < end:
                kiosk.step()
        elif step.verb == "CARD_INSERT":
            kiosk.slot.insert(insert_card(step.arg))
            kiosk.step(wait=False)
        elif step.verb == "CARD_REMOVE":
            kiosk.slot.remove()
            kiosk.step(wait=False)
        elif step.verb == "SHOT":
            _settle(kiosk, step, expect_timeout)
            if shots is not None:
                kiosk.shot(shots / f"{step.arg}.png")
        elif step.verb == "EXPECT":
            _expect(kiosk, step, expect_timeout)


def _settle(kiosk: Kiosk, step: ScriptStep, timeout: float) -> None:
    """Wait while the top screen is busy with a quick look-up (a person would see it, then type)."""
    end = time.monotonic() + timeout
    kiosk.step(wait=False)
    while kiosk.top.busy:
        if time.monotonic() > end:
            raise ScriptError(f"line {step.line}: the screen stayed busy for {timeout:.0f} s")
        kiosk.step()


def _expect(kiosk: Kiosk, step: ScriptStep, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        kiosk.step(wait=False)
        if step.arg in kiosk.screen_text():
            return
        if time.monotonic() > end:
            shown = kiosk.screen_text().replace("\n", " | ")
            raise ScriptError(f"line {step.line}: EXPECT {step.arg!r}: the screen shows: {shown}")
        kiosk.step()


def snapshot(kiosk: Kiosk) -> dict[str, Any]:
    """What the kiosk shows, for a failing test's message."""
    return {"stack": [type(s).__name__ for s in kiosk.stack], "text": kiosk.screen_text()}
