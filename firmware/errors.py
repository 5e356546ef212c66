"""The project's one exception hierarchy.

Malformed input raises one of these, naming where it broke (offset, tag,
status word, field). A decline or a failed check of a card is an outcome,
never an exception.
"""

from __future__ import annotations

__all__ = [
    "AmountError",
    "ApduError",
    "CardDataError",
    "CardRemovedError",
    "ConfigError",
    "CryptoError",
    "DamagedStoreError",
    "EmvError",
    "EvidenceError",
    "HostConnectionLostError",
    "HostError",
    "HostTimeoutError",
    "HostUnreachableError",
    "ImageBuildError",
    "ImageRefusedError",
    "KeyBlockError",
    "KeyExhaustedError",
    "KeyStoreError",
    "MacMismatchError",
    "MalformedFileError",
    "MessageFieldError",
    "MessageFormatError",
    "MigrationError",
    "NoCardError",
    "NoReaderError",
    "PosError",
    "ReaderError",
    "RolledBackError",
    "RuleViolation",
    "SelectionError",
    "SensitiveDataError",
    "SlotError",
    "StatusWordError",
    "StoreError",
    "TamperedRecordError",
    "TlvError",
    "TransactionInputError",
    "UpdateError",
    "VerificationError",
]


class PosError(Exception):
    """Base of every error this firmware raises on purpose."""


class ConfigError(PosError):
    """A configuration file or value is missing or wrong."""


class EmvError(PosError):
    """Something in the card dialogue broke."""


class TlvError(EmvError):
    """Malformed BER-TLV data; says the offset (and tag, when known)."""

    def __init__(self, message: str, offset: int, tag: int | None = None) -> None:
        where = f" at offset {offset}" + (f" (tag {tag:X})" if tag is not None else "")
        super().__init__(message + where)
        self.offset = offset
        self.tag = tag


class ApduError(EmvError):
    """A command or response APDU that is malformed (too short, too long)."""


class StatusWordError(EmvError):
    """The card answered a status word that the command does not allow."""

    def __init__(self, command: str, sw: int, message: str = "") -> None:
        text = f"{command}: card answered SW {sw:04X}"
        super().__init__(text + (f" ({message})" if message else ""))
        self.command = command
        self.sw = sw


class CardDataError(EmvError):
    """Card data that is well-formed TLV but wrong for EMV (missing tag, bad AFL)."""

    def __init__(self, message: str, tag: int | None = None) -> None:
        super().__init__(message + (f" (tag {tag:X})" if tag is not None else ""))
        self.tag = tag


class SelectionError(EmvError):
    """No application that both the card and the terminal support."""


class TransactionInputError(EmvError):
    """The caller asked for a transaction the kernel cannot carry (amount of more than 12 digits...)."""


class AmountError(PosError):
    """An amount typed by a person that is not a sum of money (three decimals, a sign, a letter...)."""

    def __init__(self, message: str, field: str = "amount") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class EvidenceError(PosError):
    """Evidence of a reverse request (order, name, contact...) missing or wrong; names the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RuleViolation(PosError):
    """A reverse transaction the rules or terms refuse before anything is sent; `.rule` is its id."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule


class ReaderError(PosError):
    """The card reader or the PC/SC service failed."""


class NoReaderError(ReaderError):
    """No reader is connected, or none of the given name."""


class NoCardError(ReaderError):
    """The reader holds no card."""


class CardRemovedError(ReaderError):
    """The card left the reader during a dialogue."""


class CryptoError(PosError):
    """A cryptographic operation could not be carried out (bad key, bad length)."""


class VerificationError(CryptoError):
    """A MAC, signature or check value did not verify."""


class KeyBlockError(CryptoError):
    """A TR-31 key block that is malformed, fails its MAC or is not allowed here; names the field.

    `field` is the part of the block to blame, as TR-31 names it: a header
    field ("version id", "length", "key usage", "algorithm", "mode of use",
    "key version number", "exportability", "number of optional blocks"), an
    optional block by its ID ("KS", "KC"), "optional blocks", "key data",
    "key length" or "MAC"; or what came with the block: "KBPK", "ksn";
    "key block" for the block as a whole (not printable ASCII).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class KeyExhaustedError(CryptoError):
    """A DUKPT device has used every key its transaction counter allows."""


class HostError(PosError):
    """The dialogue with the acquirer host failed."""


class MessageFormatError(HostError):
    """A host message (or the kernel's view of an answer) that cannot be used; `field` names the field.

    `field` is None only when no one field is to blame.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MessageFieldError(MessageFormatError):
    """A host message field that cannot be encoded or decoded: says which field and where."""

    field: str

    def __init__(self, message: str, field: str, offset: int | None = None) -> None:
        where = f" (field {field}" + (f", offset {offset})" if offset is not None else ")")
        super().__init__(message + where, field)
        self.offset = offset


class HostTimeoutError(HostError):
    """The host did not answer in time."""


class HostUnreachableError(HostError):
    """No connection to the host could be made: the request was not sent."""


class HostConnectionLostError(HostError):
    """The connection broke after the request went out, before a whole answer came back."""


class MacMismatchError(HostError, VerificationError):
    """A host answer whose MAC does not verify."""


class StoreError(PosError):
    """The durable store could not read or write a record."""


class KeyStoreError(StoreError):
    """The key store is missing, locked or damaged."""


class TamperedRecordError(StoreError, VerificationError):
    """A stored record whose signature does not verify."""


class RolledBackError(StoreError):
    """A file that is not the one this terminal last wrote: older, edited, or missing while it existed.

    The anti-rollback record (`firmware.keys.monotonic`) names another state for it; `path` is the
    file refused. Nothing is changed: the file stays where it was found, for the technician.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class DamagedStoreError(StoreError):
    """A store file that cannot be read as one; it was kept aside (`kept_aside`), never deleted."""

    def __init__(self, message: str, path: str, kept_aside: str) -> None:
        super().__init__(message)
        self.path = path
        self.kept_aside = kept_aside


class MalformedFileError(StoreError):
    """A file too large to read, or JSON the guarded loader refuses (NaN, too deep, a huge number)."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class SensitiveDataError(StoreError, ValueError):
    """Data refused by the store because it looks like a clear PAN, track data or PIN; names the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UpdateError(PosError):
    """A firmware image, a slot or a data migration that the updater refuses or cannot handle."""


class ImageRefusedError(UpdateError):
    """A firmware image refused before anything is installed; `reason` is its code (`Refusal`).

    The message is one line naming the reason: the file, the field or the key to blame.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class ImageBuildError(UpdateError):
    """An image cannot be built: a wheel missing for the target, a signing key that cannot be read."""


class SlotError(UpdateError):
    """The A/B slots cannot do what was asked (nothing to roll back to, a slot on trial, a damaged link)."""


class MigrationError(UpdateError):
    """A data migration failed, or the record of migrations is damaged; names the migration."""
