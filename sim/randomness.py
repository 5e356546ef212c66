"""The random source the simulated world is handed (the simulator's own, never the firmware's).

`Rng(n)` returns `n` random bytes: `os.urandom` or `secrets.token_bytes` when
running, a seeded or counting source in a test.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Rng"]

Rng = Callable[[int], bytes]
