"""The two kinds of clock the firmware is handed (DESIGN: clock and randomness are passed in).

- `MonotonicClock`: seconds as a float from a clock that never goes back
  (`time.monotonic`, `time.perf_counter`). Only differences between two
  readings mean anything: timeouts, response times, lock-out periods.
- `WallClock`: the date and time of day (`datetime.now`), which an operator
  or the host may set, forwards or back. It dates records and messages; it
  never measures how long something took.

Nothing here reads a clock: callers take one of these as a parameter, so a
test can pin it. Imports nothing of the firmware (any layer may use it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

__all__ = ["MonotonicClock", "WallClock"]

MonotonicClock = Callable[[], float]
WallClock = Callable[[], datetime]
