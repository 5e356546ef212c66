"""Order numbers the terminal makes up for a sale given none, never readable as a card number.

The store refuses to keep a value whose digits, read together, could be a card
number: 13 to 19 digits in a row, or a value of digit groups only, that pass
the Luhn check (`firmware.store.sensitive`). A made-up number whose digits
would pass has its last digit moved on by one, which always fails the check
(the last digit is not doubled, so the sum moves by 1 or -9).

- `keypad_order`: digits only, so it can be typed again at the keypad to find
  the order: YYMMDDhhmmss and two random digits (the kiosk).
- `generated_order`: YYYYMMDD-HHMMSS-xxxx, four random hex digits (the
  service's default, `pos-txn sale` without --order).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from firmware.store.sensitive import luhn_valid

__all__ = ["generated_order", "keypad_order", "not_a_card_number"]

_DIGIT_GROUPS: Final = re.compile(r"[0-9]+(?:[ -][0-9]+)*")


def not_a_card_number(order: str) -> str:
    """`order` with its last digit moved on when it is 13 to 19 digits (in groups apart by spaces or
    dashes, or not) that together pass the Luhn check; any other value as it is."""
    if not _DIGIT_GROUPS.fullmatch(order):
        return order
    digits = order.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return order
    return order[:-1] + str((int(order[-1]) + 1) % 10)


def keypad_order(now: datetime, random_digits: int) -> str:
    """YYMMDDhhmmss and `random_digits` (0..99) as two digits: 14 digits, never Luhn-valid."""
    if not 0 <= random_digits <= 99:
        raise ValueError("two random digits: 0 to 99")
    return not_a_card_number(f"{now:%y%m%d%H%M%S}{random_digits:02d}")


def generated_order(now: datetime, random_bytes: bytes) -> str:
    """YYYYMMDD-HHMMSS-xxxx: date, time and two random bytes as hex; its 18 digits never Luhn-valid.

    Hex digits alone (about one value in seven) make a value of digit groups only, which the store
    reads as a card number when the 18 digits pass the Luhn check.
    """
    if len(random_bytes) != 2:
        raise ValueError("two random bytes")
    return not_a_card_number(f"{now:%Y%m%d}-{now:%H%M%S}-{random_bytes.hex()}")
