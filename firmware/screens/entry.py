"""What the keypad types into: amounts in fen, digits, a date and time, letters by multi-tap, secrets.

No pygame and no float here: each field takes `Key`s and says what it holds.

- `AmountField`: digits shift in from the right as fen ("1","2","3","4" ->
  12.34); CLEAR takes the last one back; at most 12 digits (ISO 8583 field
  4). `value` is an int of fen, `shown` is `format_amount(value)`.
- `DigitField`: up to `max_len` digits (phone number, last four, order number).
- `DateTimeField`: YYYYMMDD then optional HHMM, shown as "2025-01-31 14:05"
  with "_" for what is still to type; `value(tz)` is None until a real date.
- `MultiTapField`: letters on the digit keys (ITU E.161: 2 ABC ... 9 WXYZ,
  0 space, 1 . - '); pressing the same key again within `TAP_SECONDS`
  cycles its letters (F2 takes the letter at once, for two letters on one
  key); F1 cycles the mode ABC -> abc -> 123.
- `SecretField`: digits shown as "*" (supervisor password, PIN).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Final

from firmware.screens.keys import Key
from firmware.txn.money import format_amount

__all__ = [
    "MAX_AMOUNT_DIGITS",
    "TAP_LETTERS",
    "TAP_SECONDS",
    "AmountField",
    "DateTimeField",
    "DigitField",
    "MultiTapField",
    "SecretField",
    "TapMode",
]

MAX_AMOUNT_DIGITS: Final = 12
TAP_SECONDS: Final = 1.0
TAP_LETTERS: Final = {
    "1": ".-'",
    "2": "ABC",
    "3": "DEF",
    "4": "GHI",
    "5": "JKL",
    "6": "MNO",
    "7": "PQRS",
    "8": "TUV",
    "9": "WXYZ",
    "0": " ",
}


@dataclass
class AmountField:
    digits: str = ""

    def press(self, key: Key) -> bool:
        if key.digit is not None:
            if len(self.digits) >= MAX_AMOUNT_DIGITS or (not self.digits and key.digit == "0"):
                return False
            self.digits += key.digit
            return True
        if key is Key.CLEAR and self.digits:
            self.digits = self.digits[:-1]
            return True
        return False

    @property
    def value(self) -> int:
        return int(self.digits or "0")

    @property
    def shown(self) -> str:
        return format_amount(self.value)

    def set(self, fen: int) -> None:
        self.digits = str(fen) if fen > 0 else ""


@dataclass
class DigitField:
    max_len: int
    digits: str = ""

    def press(self, key: Key) -> bool:
        if key.digit is not None and len(self.digits) < self.max_len:
            self.digits += key.digit
            return True
        if key is Key.CLEAR and self.digits:
            self.digits = self.digits[:-1]
            return True
        return False

    @property
    def shown(self) -> str:
        return self.digits


@dataclass
class SecretField(DigitField):
    @property
    def shown(self) -> str:
        return "*" * len(self.digits)


@dataclass
class DateTimeField:
    """YYYYMMDD, then optionally HHMM (ENTER after the date alone means 00:00)."""

    digits: str = ""

    def press(self, key: Key) -> bool:
        if key.digit is not None and len(self.digits) < 12:
            self.digits += key.digit
            return True
        if key is Key.CLEAR and self.digits:
            self.digits = self.digits[:-1]
            return True
        return False

    @property
    def shown(self) -> str:
        d = self.digits.ljust(12, "_")
        return f"{d[0:4]}-{d[4:6]}-{d[6:8]} {d[8:10]}:{d[10:12]}"

    def value(self, tz: tzinfo | None) -> datetime | None:
        """The date and time typed, in `tz`; None while it is not a whole, real date (and time)."""
        if len(self.digits) not in (8, 12):
            return None
        text = self.digits if len(self.digits) == 12 else self.digits + "0000"
        try:
            when = datetime.strptime(text, "%Y%m%d%H%M")
        except ValueError:
            return None
        return when.replace(tzinfo=tz)

    def set(self, when: datetime) -> None:
        self.digits = f"{when:%Y%m%d%H%M}"


class TapMode:
    UPPER = "ABC"
    LOWER = "abc"
    DIGITS = "123"
    ORDER: Final = (UPPER, LOWER, DIGITS)


@dataclass
class MultiTapField:
    max_len: int
    mode: str = TapMode.UPPER
    text: str = ""
    _pending_key: str | None = None
    _pending_index: int = 0
    _pending_at: float = 0.0
    modes: tuple[str, ...] = field(default=TapMode.ORDER)

    def _commit(self) -> None:
        if self._pending_key is not None:
            self.text += self._pending_char()
            self._pending_key = None

    def _pending_char(self) -> str:
        assert self._pending_key is not None
        letters = TAP_LETTERS[self._pending_key]
        char = letters[self._pending_index % len(letters)]
        return char.lower() if self.mode == TapMode.LOWER else char

    def press(self, key: Key, now: float) -> bool:
        digit = key.digit
        if key is Key.F1:
            self._commit()
            self.mode = self.modes[(self.modes.index(self.mode) + 1) % len(self.modes)]
            return True
        if key is Key.F2:  # take the letter now: the next tap on the same key starts a new one
            self._commit()
            return True
        if key is Key.CLEAR:
            if self._pending_key is not None:
                self._pending_key = None
                return True
            if self.text:
                self.text = self.text[:-1]
                return True
            return False
        if digit is None:
            return False
        if self.mode == TapMode.DIGITS:
            self._commit()
            if len(self.text) < self.max_len:
                self.text += digit
                return True
            return False
        if self._pending_key == digit and now - self._pending_at <= TAP_SECONDS:
            self._pending_index += 1
            self._pending_at = now
            return True
        self._commit()
        if len(self.text) >= self.max_len:
            return False
        self._pending_key, self._pending_index, self._pending_at = digit, 0, now
        return True

    @property
    def value(self) -> str:
        """What was typed, the letter being chosen included."""
        return self.text + (self._pending_char() if self._pending_key is not None else "")

    @property
    def shown(self) -> str:
        return self.value + "_"

    def finish(self) -> str:
        self._commit()
        return self.text

    def set(self, text: str) -> None:
        self.text, self._pending_key = text, None
