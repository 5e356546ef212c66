"""The random source the firmware is handed (DESIGN: clock and randomness are passed in).

`Rng(n)` returns `n` random bytes; in the product it is `os.urandom`, in a
test a seeded or counting source, so a transaction replays byte for byte.
Imports nothing of the firmware (any layer may use it).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Rng"]

Rng = Callable[[int], bytes]
