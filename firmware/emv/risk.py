"""Terminal risk management (EMV Book 3 10.6): floor limit, random selection, velocity, exception file.

Pure functions; the kernel fetches what the card must tell (ATC 9F36 and
Last Online ATC Register 9F13 through GET DATA) and passes it in, with the
random number (1..99) drawn by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from firmware.emv.kernel_config import ExceptionFile
from firmware.emv.tvr import TvrBit
from firmware.errors import CardDataError

__all__ = [
    "RiskInputs",
    "exception_file_bits",
    "floor_limit_exceeded",
    "randomly_selected",
    "terminal_risk_management",
    "velocity_bits",
]


def floor_limit_exceeded(amount: int, floor_limit: int, logged_amount: int = 0) -> bool:
    """10.6.1: the amount (plus the logged amount of the same card, if kept) at or above the floor limit."""
    return amount + logged_amount >= floor_limit


def randomly_selected(
    amount: int,
    floor_limit: int,
    threshold: int,
    target_percent: int,
    max_target_percent: int,
    random_number: int,
) -> bool:
    """10.6.2: random transaction selection for amounts below the floor limit.

    Below the threshold the chance is the target percentage; from the
    threshold up to the floor limit it rises linearly towards the maximum
    target percentage. Selected when the random number (1..99) is at or
    below the transaction target percent. Computed in integers, exactly.
    """
    if not 1 <= random_number <= 99:
        raise ValueError("the random number is 1..99")
    if amount >= floor_limit:
        return False
    if amount < threshold:
        return random_number <= target_percent
    # random <= (max - target) * (amount - threshold) / (floor - threshold) + target
    span = floor_limit - threshold
    return random_number * span <= (max_target_percent - target_percent) * (amount - threshold) + (
        target_percent * span
    )


def _counter(value: bytes | None) -> int | None:
    """A 2-byte counter from GET DATA; one of another length is no usable answer: not returned."""
    if value is None or len(value) != 2:
        return None
    return int.from_bytes(value, "big")


def velocity_bits(
    lower_limit: bytes | None,
    upper_limit: bytes | None,
    atc: bytes | None,
    last_online_atc: bytes | None,
) -> TvrBit:
    """10.6.3: consecutive offline transactions since the last online one, against 9F14 and 9F23.

    No check unless the card has both limits. If the ATC or the last online
    ATC cannot be had (not returned, or not the 2 bytes of a counter) or the
    ATC is not above it, both 'limit exceeded' bits are set and the
    transaction goes on. A last online ATC of zero means a new card.
    """
    if lower_limit is None or upper_limit is None:
        return TvrBit(0)
    if len(lower_limit) != 1:
        raise CardDataError(f"lower consecutive offline limit of {len(lower_limit)} bytes", 0x9F14)
    if len(upper_limit) != 1:
        raise CardDataError(f"upper consecutive offline limit of {len(upper_limit)} bytes", 0x9F23)
    counter = _counter(atc)
    last_online = _counter(last_online_atc)
    bits = TvrBit(0)
    both = TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED | TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
    if counter is None or last_online is None or counter <= last_online:
        bits |= both
    else:
        offline_run = counter - last_online
        if offline_run > lower_limit[0]:
            bits |= TvrBit.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
        if offline_run > upper_limit[0]:
            bits |= TvrBit.UPPER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
    if last_online == 0:
        bits |= TvrBit.NEW_CARD
    return bits


def exception_file_bits(pan: str, exception_file: ExceptionFile) -> TvrBit:
    """Book 3 10.6 / Book 4 (terminal exception file): the card on the hot list."""
    return TvrBit.CARD_ON_EXCEPTION_FILE if exception_file.contains(pan) else TvrBit(0)


@dataclass(frozen=True)
class RiskInputs:
    amount: int
    floor_limit: int
    random_selection_threshold: int
    random_target_percent: int
    random_max_target_percent: int
    random_number: int
    velocity_checking: bool
    logged_amount: int = 0


def terminal_risk_management(
    inputs: RiskInputs,
    card: Mapping[int, bytes],
    atc: bytes | None,
    last_online_atc: bytes | None,
) -> TvrBit:
    """Floor limit, random selection and velocity checking together (the exception file is separate)."""
    bits = TvrBit(0)
    if floor_limit_exceeded(inputs.amount, inputs.floor_limit, inputs.logged_amount):
        bits |= TvrBit.EXCEEDS_FLOOR_LIMIT
    elif randomly_selected(
        inputs.amount,
        inputs.floor_limit,
        inputs.random_selection_threshold,
        inputs.random_target_percent,
        inputs.random_max_target_percent,
        inputs.random_number,
    ):
        bits |= TvrBit.RANDOMLY_SELECTED_FOR_ONLINE
    if inputs.velocity_checking:
        bits |= velocity_bits(card.get(0x9F14), card.get(0x9F23), atc, last_online_atc)
    return bits
