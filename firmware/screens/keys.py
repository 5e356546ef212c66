"""The keypad: one `Key` enum, and where each key comes from.

The terminal has a hardware keypad: digits, ENTER (green), CANCEL (red),
CLEAR (yellow), F1-F4, UP and DOWN. The same keys come from three places:

- a PC keyboard (development, `pos-terminal` in a window): `PC_KEYBOARD`,
  by SDL key code. Digits (top row and keypad), Enter = ENTER, Escape =
  CANCEL, Backspace (or Delete) = CLEAR, F1-F4, arrow up/down.
- a hardware keypad, seen by Linux as an input device (evdev) and read by
  SDL (kmsdrm / fbcon): `LINUX_KEYPAD` names the Linux input key codes
  (`linux/input-event-codes.h`) the keypad driver may send, and
  `LINUX_TO_SDL_SCANCODE` what SDL 2.28 turns each into
  (`src/events/scancodes_linux.h`), so a key is found by the event's
  scancode. SDL drops KEY_OK (0x160) and KEY_CLEAR (0x163): a keypad
  that sends those needs a keymap (udev hwdb `KEYBOARD_KEY_xx=enter` /
  `=backspace`) to be seen at all.
- the on-screen touch keypad (mouse or touch), laid out by
  `firmware.screens.render.touch_keypad`.

`key_of(event)` gives the Key of a KEYDOWN event, or None.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

import pygame

__all__ = [
    "DIGITS",
    "LINUX_KEYPAD",
    "LINUX_TO_SDL_SCANCODE",
    "PC_KEYBOARD",
    "Key",
    "key_of",
]


class Key(Enum):
    D0 = "0"
    D1 = "1"
    D2 = "2"
    D3 = "3"
    D4 = "4"
    D5 = "5"
    D6 = "6"
    D7 = "7"
    D8 = "8"
    D9 = "9"
    ENTER = "ENTER"  # green: confirm
    CANCEL = "CANCEL"  # red: back, stop
    CLEAR = "CLEAR"  # yellow: delete the last character
    F1 = "F1"
    F2 = "F2"
    F3 = "F3"
    F4 = "F4"
    UP = "UP"
    DOWN = "DOWN"

    @property
    def digit(self) -> str | None:
        """ "0"-"9" for a digit key, None for any other."""
        return self.value if self.value.isdigit() else None

    @classmethod
    def named(cls, name: str) -> Key:
        """The key a script names: "0"-"9", "ENTER", "CANCEL", "CLEAR", "F1"-"F4", "UP", "DOWN"."""
        try:
            return cls(name.upper())
        except ValueError:
            raise ValueError(f"no key {name!r}") from None


DIGITS: Final = tuple(Key(str(d)) for d in range(10))

PC_KEYBOARD: Final[dict[int, Key]] = {
    **{getattr(pygame, f"K_{d}"): Key(str(d)) for d in range(10)},
    **{getattr(pygame, f"K_KP{d}"): Key(str(d)) for d in range(10)},
    pygame.K_RETURN: Key.ENTER,
    pygame.K_KP_ENTER: Key.ENTER,
    pygame.K_ESCAPE: Key.CANCEL,
    pygame.K_BACKSPACE: Key.CLEAR,
    pygame.K_DELETE: Key.CLEAR,
    pygame.K_F1: Key.F1,
    pygame.K_F2: Key.F2,
    pygame.K_F3: Key.F3,
    pygame.K_F4: Key.F4,
    pygame.K_UP: Key.UP,
    pygame.K_DOWN: Key.DOWN,
}

# Linux input key codes (linux/input-event-codes.h) a keypad driver may send.
LINUX_KEYPAD: Final[dict[int, Key]] = {
    11: Key.D0,  # KEY_0
    **{1 + d: Key(str(d)) for d in range(1, 10)},  # KEY_1 (2) .. KEY_9 (10)
    82: Key.D0,  # KEY_KP0
    79: Key.D1,  # KEY_KP1
    80: Key.D2,
    81: Key.D3,
    75: Key.D4,  # KEY_KP4
    76: Key.D5,
    77: Key.D6,
    71: Key.D7,  # KEY_KP7
    72: Key.D8,
    73: Key.D9,
    28: Key.ENTER,  # KEY_ENTER
    96: Key.ENTER,  # KEY_KPENTER
    1: Key.CANCEL,  # KEY_ESC
    223: Key.CANCEL,  # KEY_CANCEL
    128: Key.CANCEL,  # KEY_STOP
    14: Key.CLEAR,  # KEY_BACKSPACE
    111: Key.CLEAR,  # KEY_DELETE
    59: Key.F1,  # KEY_F1
    60: Key.F2,
    61: Key.F3,
    62: Key.F4,
    103: Key.UP,  # KEY_UP
    108: Key.DOWN,  # KEY_DOWN
}

# What SDL 2.28 (scancodes_linux.h) makes of those codes: SDL scancodes (USB HID usage ids).
LINUX_TO_SDL_SCANCODE: Final[dict[int, int]] = {
    11: 39,  # KEY_0 -> SDL_SCANCODE_0
    **{1 + d: 29 + d for d in range(1, 10)},  # KEY_1..KEY_9 -> SDL_SCANCODE_1 (30) .. 9 (38)
    82: 98,  # KEY_KP0 -> SDL_SCANCODE_KP_0
    79: 89,  # KEY_KP1 -> SDL_SCANCODE_KP_1
    80: 90,
    81: 91,
    75: 92,  # KEY_KP4
    76: 93,
    77: 94,
    71: 95,  # KEY_KP7
    72: 96,
    73: 97,
    28: 40,  # KEY_ENTER -> SDL_SCANCODE_RETURN
    96: 88,  # KEY_KPENTER -> SDL_SCANCODE_KP_ENTER
    1: 41,  # KEY_ESC -> SDL_SCANCODE_ESCAPE
    223: 155,  # KEY_CANCEL -> SDL_SCANCODE_CANCEL
    128: 120,  # KEY_STOP -> SDL_SCANCODE_STOP
    14: 42,  # KEY_BACKSPACE -> SDL_SCANCODE_BACKSPACE
    111: 76,  # KEY_DELETE -> SDL_SCANCODE_DELETE
    59: 58,  # KEY_F1 -> SDL_SCANCODE_F1
    60: 59,
    61: 60,
    62: 61,
    103: 82,  # KEY_UP -> SDL_SCANCODE_UP
    108: 81,  # KEY_DOWN -> SDL_SCANCODE_DOWN
}

_BY_SCANCODE: Final[dict[int, Key]] = {LINUX_TO_SDL_SCANCODE[code]: key for code, key in LINUX_KEYPAD.items()}


def key_of(event: pygame.event.Event) -> Key | None:
    """The Key of a KEYDOWN event: by SDL key code (a PC keyboard), else by scancode (a keypad)."""
    if event.type != pygame.KEYDOWN:
        return None
    key = PC_KEYBOARD.get(getattr(event, "key", -1))
    if key is not None:
        return key
    return _BY_SCANCODE.get(getattr(event, "scancode", -1))
