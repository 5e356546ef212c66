"""The screen framework: a screen says what it shows, reacts to keys, and asks for work.

A `Screen`:
- `view() -> View`: what is on screen, as text lines with a style each
  (the painter draws exactly that, so `text()` is what a person reads);
- `handle(key) -> Transition`: a keypad key (`firmware.screens.keys.Key`);
- `on_job(done) -> Transition`: the work it started has finished;
- `on_pin(request) -> Transition`: the card asks for a PIN;
- `on_card(present) -> Transition`: a card was inserted or removed;
- `ticks`: True when it shows the time (clock, elapsed): it is redrawn
  once a second, and only then;
- `busy`: True while it waits for a quick look-up in the books (an order,
  the queue, the batch totals); its keys are ignored meanwhile, and a
  script's next key waits for it.

A `Transition` says where to go: stay, push a screen, replace the top one,
pop, or go home (back to the idle screen). Screens never call each other's
methods and never draw outside `view()`.

Every screen gets the `Context`: the terminal service (through jobs only:
`ctx.run(...)` runs a call on the worker thread, so the loop never blocks
and the books are touched by one thread), the card slot, the language, the
clock, the supervisor check, and the `receipts` hook the result screens
call (`firmware.screens.slip.ReceiptDesk`: the slips drawn, saved and printed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from firmware.screens.jobs import Job, JobDone, JobRunner, PinRequest
from firmware.screens.keys import Key
from firmware.screens.text import tr
from firmware.txn.model import JournalEntry
from firmware.txn.service import TerminalService
from firmware.txn.terms import Language

if TYPE_CHECKING:  # the type of what the slot holds; screens never call the reader themselves
    from firmware.emv.reader import CardReader
    from firmware.txn.technician import Technician

__all__ = [
    "CardSlotView",
    "Context",
    "Line",
    "NetworkState",
    "Receipt",
    "Screen",
    "Style",
    "TerminalInfo",
    "Transition",
    "View",
]


class Style(Enum):
    BODY = "body"
    BIG = "big"  # an amount being entered, a result
    DIM = "dim"  # labels, hints
    GOOD = "good"  # approved
    BAD = "bad"  # declined, refused, failed
    WARN = "warn"  # a banner: something waits for the host
    SELECTED = "selected"  # the highlighted menu item


@dataclass(frozen=True)
class Line:
    text: str
    style: Style = Style.BODY


@dataclass(frozen=True)
class View:
    """What a screen shows: a title, body lines (scrolled by `scroll` lines), and a hint line."""

    title: str
    lines: tuple[Line, ...] = ()
    hint: str = ""
    scroll: int = 0
    keypad: bool = True  # the on-screen touch keypad, where the configuration shows one
    softkeys: tuple[tuple[Key, str], ...] = ()  # what F1-F4 do here, shown on their touch keys
    image: object | None = None  # a picture in the body (a pygame Surface: a receipt), scrolled by `scroll`

    def text(self) -> str:
        soft = [f"{key.value} {label}" for key, label in self.softkeys]
        return "\n".join([self.title, *(line.text for line in self.lines), self.hint, *soft])


class Kind(Enum):
    STAY = "stay"
    PUSH = "push"
    REPLACE = "replace"
    POP = "pop"
    HOME = "home"
    HOME_THEN = "home_then"  # back to the idle screen, then this screen on it (a result)


@dataclass(frozen=True)
class Transition:
    kind: Kind
    screen: Screen | None = None

    @staticmethod
    def stay() -> Transition:
        return _STAY

    @staticmethod
    def push(screen: Screen) -> Transition:
        return Transition(Kind.PUSH, screen)

    @staticmethod
    def replace(screen: Screen) -> Transition:
        return Transition(Kind.REPLACE, screen)

    @staticmethod
    def pop() -> Transition:
        return _POP

    @staticmethod
    def home() -> Transition:
        return _HOME

    @staticmethod
    def home_then(screen: Screen) -> Transition:
        return Transition(Kind.HOME_THEN, screen)


_STAY = Transition(Kind.STAY)
_POP = Transition(Kind.POP)
_HOME = Transition(Kind.HOME)


class NetworkState(Enum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class TerminalInfo:
    merchant_name: str
    terminal_id: str
    merchant_id: str
    currency: str


@dataclass(frozen=True)
class Receipt:
    """What a result screen hands to the `receipts` hook: the operation and its result object."""

    kind: str  # sale, void, refund, cash_refund, adjust, settlement, reversal_failure
    result: Any
    language: Language
    original: JournalEntry | None = None  # what a reverse operation or a reversal spoke of


class CardSlotView(Protocol):
    def present(self) -> bool: ...

    def reader(self, aborted: threading.Event) -> CardReader:
        """The card's reader for one payment; `aborted` set ends the card session (as a removal)."""
        ...


@dataclass
class Context:
    service: TerminalService
    info: TerminalInfo
    jobs: JobRunner
    card: CardSlotView
    clock: Callable[[], datetime]
    verify_supervisor: Callable[[str], bool]
    receipts: Callable[[Receipt], None]
    language: Language = Language.ZH
    render_slip: Callable[[Any], object] | None = None  # a Slip as a picture, for the receipt preview
    network: NetworkState = NetworkState.UNKNOWN
    queue_view: dict[str, Any] = field(default_factory=dict)
    technician: Technician | None = None  # the technician menu's tools; set by the composition root

    def t(self, key: str, **values: object) -> str:
        """The catalogue's text for `key` in the current language."""
        return tr(key, self.language, **values)

    def run(
        self, owner: Screen, call: Callable[[Job], Any], label: str = "", *, abortable: bool = False
    ) -> Job:
        return self.jobs.start(owner, call, label, abortable=abortable)

    def toggle_language(self) -> None:
        self.language = Language.EN if self.language is Language.ZH else Language.ZH


class Screen:
    """A screen of the kiosk. Subclasses give `view` and `handle`; the rest has defaults."""

    ticks = False  # redrawn every second (it shows a clock or elapsed time)
    busy = False  # waiting for a quick look-up in the books: keys wait (a script's keys too)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def t(self, key: str, **values: object) -> str:
        return self.ctx.t(key, **values)

    def view(self) -> View:
        raise NotImplementedError

    def handle(self, key: Key) -> Transition:
        return Transition.pop() if key is Key.CANCEL else Transition.stay()

    def on_job(self, done: JobDone) -> Transition:
        return Transition.stay()

    def on_pin(self, request: PinRequest) -> Transition:
        request.answer(None)
        return Transition.stay()

    def on_card(self, present: bool) -> Transition:
        return Transition.stay()

    def text(self) -> str:
        return self.view().text()


def lines(*texts: str | Line, style: Style = Style.BODY) -> tuple[Line, ...]:
    """Lines from texts (a Line keeps its own style)."""
    return tuple(t if isinstance(t, Line) else Line(t, style) for t in texts)


def labelled(pairs: Sequence[tuple[str, str | None]], colon: str) -> tuple[Line, ...]:
    """`label: value` lines, skipping the pairs without a value."""
    return tuple(Line(f"{label}{colon}{value}") for label, value in pairs if value)
