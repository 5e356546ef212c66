"""Errors of the simulated outside world (`sim/` has its own hierarchy).

A card command that fails is not an exception to the caller: handlers raise
`SwError` (or a `CardCryptoStatus`: `WrongLength`, `ConditionsNotSatisfied`,
...) and the card turns it into a status word in one place. The other
classes are for callers (broken profile, bad TLV, missing PKI file, no card,
a broken vpcd link, card or issuer cryptography given the wrong input).

Every error class of `sim/` lives here; the modules that raise them
re-export theirs (`sim.emvcrypto.CryptoInputError` is this module's).
`sim/` never shares an error with `firmware/`.
"""

from __future__ import annotations

__all__ = [
    "CardAbsent",
    "CardCryptoStatus",
    "CardPulled",
    "ConditionsNotSatisfied",
    "CryptoConfigError",
    "CryptoInputError",
    "Field55Error",
    "HostCodecError",
    "HostConfigError",
    "IncorrectP1P2",
    "KitExists",
    "MacMismatchError",
    "PkiError",
    "ProfileError",
    "SecureMessagingFailed",
    "SimCryptoError",
    "SimError",
    "SwError",
    "TlvError",
    "VpcdError",
    "WrongData",
    "WrongLength",
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


class KitExists(HostConfigError):
    """`pos-sim kit`: the directory holds a kit already and --force was not given."""


class VpcdError(SimError):
    """The vpcd link broke in a way the card cannot answer (bad address, short message)."""


# --- card and issuer cryptography (sim.emvcrypto, sim.cvn, sim.cardcrypto, sim.issuer) ---


class SimCryptoError(SimError):
    """Base of every error the simulated card and issuer cryptography raises."""


class CryptoInputError(SimCryptoError):
    """An input of the wrong shape: a key of the wrong length, a PAN with a letter, ..."""


class CryptoConfigError(SimCryptoError):
    """A card profile's crypto config is missing something or has a wrong value."""


class Field55Error(SimCryptoError):
    """Field 55 is not well-formed BER-TLV; says the offset and, when known, the tag."""

    def __init__(self, message: str, offset: int, tag: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.tag = tag


class CardCryptoStatus(SimCryptoError, SwError):
    """A refusal the card answers with a status word: ``sw`` (e.g. 0x6985)."""

    default_sw = 0x6F00

    def __init__(self, message: str, sw: int | None = None) -> None:
        SwError.__init__(self, self.default_sw if sw is None else sw, message)


class WrongLength(CardCryptoStatus):
    """Command data of the wrong length: 6700."""

    default_sw = 0x6700


class ConditionsNotSatisfied(CardCryptoStatus):
    """The command comes at the wrong point of the transaction: 6985."""

    default_sw = 0x6985


class SecureMessagingFailed(CardCryptoStatus):
    """A script command's MAC does not verify: 6988 (6987 when SM is missing)."""

    default_sw = 0x6988


class WrongData(CardCryptoStatus):
    """Command data that is malformed once deciphered: 6A80."""

    default_sw = 0x6A80


class IncorrectP1P2(CardCryptoStatus):
    """A GENERATE AC reference control parameter that is no AC type: 6A86."""

    default_sw = 0x6A86
