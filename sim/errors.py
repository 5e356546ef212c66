"""Errors of the simulated outside world (`sim/` has its own hierarchy).

A card command that fails is not an exception to the caller: handlers raise
`SwError` and the card turns it into a status word in one place. The other
classes are for callers (broken profile, bad TLV, missing PKI file, no card).
"""

from __future__ import annotations

__all__ = [
    "CardAbsent",
    "CardPulled",
    "HostCodecError",
    "HostConfigError",
    "MacMismatchError",
    "PkiError",
    "ProfileError",
    "SimError",
    "SwError",
    "TlvError",
]


class SimError(Exception):
    """Base of every error `sim/` raises on purpose."""


class SwError(SimError):
    """A card command failed: the card answers this status word (and no data)."""

    def __init__(self, sw: int, reason: str = "") -> None:
        super().__init__(f"SW {sw:04X}" + (f": {reason}" if reason else ""))
        self.sw = sw
        self.reason = reason


class TlvError(SimError):
    """Malformed BER-TLV on the card side; says the offset (and tag, when known)."""

    def __init__(self, message: str, offset: int, tag: int | None = None) -> None:
        where = f" at offset {offset}" + (f" (tag {tag:X})" if tag is not None else "")
        super().__init__(message + where)
        self.offset = offset
        self.tag = tag


class ProfileError(SimError):
    """A card profile (JSON) is missing, malformed or inconsistent; says the profile and field."""

    def __init__(self, profile: str, field: str, message: str) -> None:
        super().__init__(f"profile {profile!r}, {field}: {message}")
        self.profile = profile
        self.field = field


class PkiError(SimError):
    """Test PKI material is missing or does not fit (key too long, file absent)."""


class MacMismatchError(SimError):
    """A MAC that does not verify under the simulated host's key (its own class, not the firmware's)."""


class CardAbsent(SimError, ConnectionError):
    """No card in the reader, or the card was removed (a `ConnectionError`, so an `OSError`)."""


class CardPulled(SimError):
    """Raised by a card whose fault switches say it leaves the reader now.

    The reader that holds the card catches it and behaves as if the card had
    been pulled out: `SimReader` forgets the card, the vpcd link drops.
    """


class HostCodecError(SimError):
    """A message the simulated host cannot decode or encode; says the field number and offset."""

    def __init__(self, field: int, offset: int, message: str) -> None:
        super().__init__(f"field {field} at offset {offset}: {message}")
        self.field = field
        self.offset = offset


class HostConfigError(SimError):
    """A simulated host's terminal table or fault switch that does not make sense."""
