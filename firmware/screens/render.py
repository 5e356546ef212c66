"""Drawing: cached fonts, the layout of a screen size, and the painter of a `View`.

The screen is portrait, 320x480 by default (480x800 too): every size here
is a 320-wide design size times `scale = width / 320`.

    +--------------------------+  status bar: terminal id, host state, language, clock
    | title                    |  title bar
    | body lines (scrolled)    |
    | hint line                |
    | F1  F2  F3  F4           |  on-screen touch keypad (if the configuration shows it)
    | 1   2   3   Cancel       |
    | 4   5   6   Clear        |
    | 7   8   9   OK           |
    | ▲   0   ▼   OK           |
    +--------------------------+

Fonts are opened once per size and kept (`Fonts`): opening a font on every
redraw makes a redraw some 20 times slower. The painter keeps each text it
rendered and each wrap it worked out (up to 512, then it starts again): a
redraw mostly repeats the last one, and blitting a kept image is some 30
times cheaper than rendering the text again. The CJK font is WenQuanYi Micro
Hei (Debian `fonts-wqy-microhei`); without it the painter still runs with
pygame's default font, which has no 汉字 (the catalogue test refuses that).

`Painter.draw(view, status)` returns the logical lines it drew (those at
least partly visible), which is the screen's text for EXPECT checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pygame

from firmware.screens.base import Line, Style, View
from firmware.screens.keys import Key

__all__ = [
    "CJK_FONT_PATHS",
    "Fonts",
    "Layout",
    "Painter",
    "StatusBar",
    "find_font",
    "wrap",
]

CJK_FONT_PATHS: Final = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)

BACKGROUND: Final = (250, 250, 247)
INK: Final = (20, 24, 28)
DIM_INK: Final = (100, 106, 112)
TITLE_BG: Final = (22, 78, 140)
TITLE_INK: Final = (255, 255, 255)
STATUS_BG: Final = (30, 34, 40)
STATUS_INK: Final = (220, 224, 228)
GOOD_INK: Final = (16, 128, 56)
BAD_INK: Final = (190, 30, 30)
WARN_BG: Final = (255, 214, 90)
SELECTED_BG: Final = (210, 228, 250)
KEY_BG: Final = (228, 230, 234)
KEY_EDGE: Final = (170, 174, 180)
KEY_COLOURS: Final = {
    Key.ENTER: (40, 160, 80),  # green
    Key.CANCEL: (210, 50, 50),  # red
    Key.CLEAR: (240, 190, 40),  # yellow
}
ONLINE_INK: Final = (90, 210, 120)
OFFLINE_INK: Final = (250, 110, 100)

_DESIGN_WIDTH: Final = 320
_IMAGE_CACHE: Final = 512  # rendered texts kept (a screen holds ~40); cleared whole when full
_SIZES: Final = {"status": 14, "title": 20, "body": 17, "big": 36, "hint": 14, "key": 18, "fkey": 14}


def find_font(candidates: Iterable[str] = CJK_FONT_PATHS) -> str | None:
    for path in candidates:
        if Path(path).is_file():
            return path
    return None


class Fonts:
    """pygame fonts by role, opened once per pixel size (TTC index 0: Micro Hei)."""

    def __init__(self, path: str | None, scale: float) -> None:
        self.path = path
        self.scale = scale
        self._cache: dict[int, pygame.font.Font] = {}

    def size(self, role: str) -> int:
        return max(8, round(_SIZES[role] * self.scale))

    def get(self, role: str) -> pygame.font.Font:
        px = self.size(role)
        font = self._cache.get(px)
        if font is None:
            font = pygame.font.Font(self.path, px)
            self._cache[px] = font
        return font


def wrap(font: pygame.font.Font, text: str, width: int) -> list[str]:
    """`text` in lines no wider than `width`: at spaces where there are some, else between characters."""
    if font.size(text)[0] <= width:
        return [text]
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.size(candidate)[0] <= width:
            current = candidate
            continue
        if current:
            out.append(current)
            current = ""
        for char in word:  # a word too long alone (or CJK text without spaces): break it anywhere
            if font.size(current + char)[0] > width and current:
                out.append(current)
                current = ""
            current += char
    if current:
        out.append(current)
    return out


@dataclass(frozen=True)
class StatusBar:
    left: str
    network: str
    online: bool | None
    right: str


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    scale: float
    status: pygame.Rect
    title: pygame.Rect
    body: pygame.Rect
    hint: pygame.Rect
    keypad: pygame.Rect | None
    keys: tuple[tuple[pygame.Rect, Key], ...]

    @classmethod
    def of(cls, width: int, height: int, *, touch_keypad: bool) -> Layout:
        s = width / _DESIGN_WIDTH
        pad = round(6 * s)
        status = pygame.Rect(0, 0, width, round(22 * s))
        title = pygame.Rect(0, status.bottom, width, round(34 * s))
        keypad: pygame.Rect | None = None
        keys: list[tuple[pygame.Rect, Key]] = []
        bottom = height
        if touch_keypad:
            f_row = round(28 * s)
            row = round(36 * s)
            keypad = pygame.Rect(0, height - f_row - 4 * row - pad, width, f_row + 4 * row + pad)
            bottom = keypad.top
            col = (width - pad) // 4
            top = keypad.top + pad // 2
            for i, key in enumerate((Key.F1, Key.F2, Key.F3, Key.F4)):
                keys.append((pygame.Rect(pad + i * col, top, col - pad, f_row - pad), key))
            grid = (
                (Key.D1, Key.D2, Key.D3, Key.CANCEL),
                (Key.D4, Key.D5, Key.D6, Key.CLEAR),
                (Key.D7, Key.D8, Key.D9, Key.ENTER),
                (Key.UP, Key.D0, Key.DOWN, Key.ENTER),
            )
            for r, keys_in_row in enumerate(grid):
                y = top + f_row + r * row
                for c, key in enumerate(keys_in_row):
                    if key is Key.ENTER and r == 3:
                        continue  # ENTER is one tall key over the last two rows
                    height_px = 2 * row - pad if key is Key.ENTER else row - pad
                    keys.append((pygame.Rect(pad + c * col, y, col - pad, height_px), key))
        hint = pygame.Rect(pad, bottom - round(22 * s), width - 2 * pad, round(22 * s))
        body = pygame.Rect(pad, title.bottom + pad, width - 2 * pad, hint.top - title.bottom - 2 * pad)
        return cls(width, height, s, status, title, body, hint, keypad, tuple(keys))

    def key_at(self, pos: tuple[int, int]) -> Key | None:
        for rect, key in self.keys:
            if rect.collidepoint(pos):
                return key
        return None


class Painter:
    def __init__(self, surface: pygame.Surface, fonts: Fonts, layout: Layout) -> None:
        self.surface = surface
        self.fonts = fonts
        self.layout = layout
        self._scaled: dict[tuple[int, int], pygame.Surface] = {}
        self._images: dict[tuple[str, str, tuple[int, int, int]], pygame.Surface] = {}
        self._wrapped: dict[tuple[str, str, int], list[str]] = {}

    def _image(self, text: str, role: str, colour: tuple[int, int, int]) -> pygame.Surface:
        """The rendered text, kept: a redraw mostly draws what the last one drew (keys, labels, lines)."""
        key = (text, role, colour)
        image = self._images.get(key)
        if image is None:
            if len(self._images) >= _IMAGE_CACHE:
                self._images.clear()
            image = self.fonts.get(role).render(text, True, colour)
            self._images[key] = image
        return image

    def _wrap(self, role: str, text: str, width: int) -> list[str]:
        key = (role, text, width)
        pieces = self._wrapped.get(key)
        if pieces is None:
            if len(self._wrapped) >= _IMAGE_CACHE:
                self._wrapped.clear()
            pieces = wrap(self.fonts.get(role), text, width)
            self._wrapped[key] = pieces
        return pieces

    def _text(
        self, text: str, role: str, colour: tuple[int, int, int], pos: tuple[int, int], *, right: bool = False
    ) -> pygame.Rect:
        image = self._image(text, role, colour)
        rect = image.get_rect()
        if right:
            rect.topright = pos
        else:
            rect.topleft = pos
        self.surface.blit(image, rect)
        return rect

    def draw(self, view: View, status: StatusBar, key_labels: dict[Key, str]) -> list[str]:
        """Draw the whole screen; the logical lines shown (title, visible body lines, hint)."""
        lay, surface = self.layout, self.surface
        surface.fill(BACKGROUND)
        shown: list[str] = []
        # status bar
        pygame.draw.rect(surface, STATUS_BG, lay.status)
        pad = round(6 * lay.scale)
        y = lay.status.top + (lay.status.height - self.fonts.get("status").get_height()) // 2
        self._text(status.left, "status", STATUS_INK, (pad, y))
        net_colour = STATUS_INK if status.online is None else ONLINE_INK if status.online else OFFLINE_INK
        clock = self._text(status.right, "status", STATUS_INK, (lay.width - pad, y), right=True)
        self._text(status.network, "status", net_colour, (clock.left - 2 * pad, y), right=True)
        shown.append(f"{status.left} {status.network} {status.right}")
        # title
        pygame.draw.rect(surface, TITLE_BG, lay.title)
        title_font = self.fonts.get("title")
        self._text(
            view.title,
            "title",
            TITLE_INK,
            (pad, lay.title.top + (lay.title.height - title_font.get_height()) // 2),
        )
        shown.append(view.title)
        # body: a picture (a receipt) or lines
        if isinstance(view.image, pygame.Surface):
            self._picture(view.image, view.scroll)
            shown.extend(line.text for line in view.lines)
        else:
            shown.extend(self._body(view.lines, view.scroll))
        # hint
        if view.hint:
            for text in self._wrap("hint", view.hint, lay.hint.width)[:1]:
                self._text(text, "hint", DIM_INK, (lay.hint.left, lay.hint.top))
            shown.append(view.hint)
        if lay.keypad is not None and view.keypad:
            self._keypad(key_labels)
        return shown

    def _picture(self, image: pygame.Surface, scroll: int) -> None:
        """`image` fitted to the body's width, `scroll` body lines down, with a frame and scroll marks."""
        rect = self.layout.body
        key = (id(image), rect.width)
        scaled = self._scaled.get(key)
        if scaled is None:
            width = rect.width - 2
            height = max(1, round(image.get_height() * width / image.get_width()))
            scaled = pygame.transform.smoothscale(image, (width, height))
            self._scaled = {key: scaled}  # the one picture on screen
        step = self.fonts.get("body").get_linesize()
        top = min(scroll * step, max(0, scaled.get_height() - rect.height))
        self.surface.set_clip(rect)
        self.surface.blit(scaled, (rect.left + 1, rect.top - top))
        self.surface.set_clip(None)
        pygame.draw.rect(self.surface, KEY_EDGE, rect, width=1)
        if top > 0:
            self._text("▲", "hint", DIM_INK, (rect.right - 2, rect.top), right=True)
        if top + rect.height < scaled.get_height():
            bottom = rect.bottom - self.fonts.get("hint").get_height()
            self._text("▼", "hint", DIM_INK, (rect.right - 2, bottom), right=True)

    def _body(self, body: Sequence[Line], scroll: int) -> list[str]:
        lay = self.layout
        rect = lay.body
        y = rect.top
        shown: list[str] = []
        gap = round(2 * lay.scale)
        more_below = False
        for index, line in enumerate(body):
            if index < scroll:
                continue
            role = "big" if line.style is Style.BIG else "body"
            font = self.fonts.get(role)
            pieces = self._wrap(role, line.text, rect.width - 2 * gap) if line.text else [""]
            height = len(pieces) * font.get_linesize() + gap
            if y + font.get_linesize() > rect.bottom:
                more_below = True
                break
            colour = {
                Style.DIM: DIM_INK,
                Style.GOOD: GOOD_INK,
                Style.BAD: BAD_INK,
            }.get(line.style, INK)
            if line.style is Style.WARN:
                pygame.draw.rect(self.surface, WARN_BG, (rect.left, y, rect.width, height))
            if line.style is Style.SELECTED:
                pygame.draw.rect(self.surface, SELECTED_BG, (rect.left, y, rect.width, height))
            for piece in pieces:
                if y + font.get_linesize() > rect.bottom:
                    more_below = True
                    break
                self._text(piece, role, colour, (rect.left + gap, y))
                y += font.get_linesize()
            y += gap
            shown.append(line.text)
            if more_below:
                break
        arrow_font = self.fonts.get("hint")
        if scroll > 0:
            self._text("▲", "hint", DIM_INK, (rect.right, rect.top), right=True)
        if more_below:
            self._text("▼", "hint", DIM_INK, (rect.right, rect.bottom - arrow_font.get_height()), right=True)
        return shown

    def _keypad(self, labels: dict[Key, str]) -> None:
        for rect, key in self.layout.keys:
            colour = KEY_COLOURS.get(key, KEY_BG)
            pygame.draw.rect(self.surface, colour, rect, border_radius=round(5 * self.layout.scale))
            pygame.draw.rect(
                self.surface, KEY_EDGE, rect, width=1, border_radius=round(5 * self.layout.scale)
            )
            role = "fkey" if key in (Key.F1, Key.F2, Key.F3, Key.F4) else "key"
            ink = TITLE_INK if key in (Key.ENTER, Key.CANCEL) else INK
            image = self._image(labels.get(key, key.value), role, ink)
            self.surface.blit(image, image.get_rect(center=rect.center))
