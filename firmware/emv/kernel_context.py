"""The one context the kernel's steps share, as jPOS participants share one Context (Book 3 10).

Inputs are set once when the transaction starts: the transport to the card,
the caller's `TransactionInput` and the `KernelServices`. Each step leaves
its output in its own named field, a frozen record written by that step
only (`read`, `oda`, `cardholder`, `first_ac`, `authorisation`,
`completion`; firmware.emv.kernel_outputs); a step that has not run leaves
None. What EMV itself lets
every step add to grows as the steps go: the TVR and TSI, the data objects
a DOL or field 55 may name (`data`), the GENERATE AC exchange (`ac`, written
by `firmware.emv.steps.generate_ac` only) and the issuer script results.

A step ends the transaction by returning an `Ending`; a card that breaks the
dialogue mid-step raises `Terminate` (or an error of `firmware.errors`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from firmware.emv import tlv
from firmware.emv.application import ApplicationData
from firmware.emv.application_list import ApplicationList
from firmware.emv.capk import CapkStore
from firmware.emv.cvm import OnlinePinBlock, PinEntry
from firmware.emv.genac import GenerateAcResponse
from firmware.emv.kernel_config import KernelConfig
from firmware.emv.kernel_outputs import (
    ApplicationRead,
    Authorisation,
    CardholderVerification,
    Completion,
    FirstAc,
    OfflineAuthentication,
)
from firmware.emv.online import HostDecision, OnlineHandler
from firmware.emv.result import Outcome
from firmware.emv.scripts import ScriptResult
from firmware.emv.selection import Chooser
from firmware.emv.transaction import (
    TransactionInput,
    TransactionType,
    amount_n12,
    bcd_digits,
    date_n6,
    time_n6,
)
from firmware.emv.transport import Transport
from firmware.emv.tvr import Tsi, Tvr

__all__ = [
    "AipBit",
    "CryptogramExchange",
    "DataObjects",
    "Ending",
    "KernelContext",
    "KernelServices",
    "Step",
    "TerminalResponseCode",
    "Terminate",
    "TransactionLog",
    "build_field55",
]

TransactionLog = Callable[[str], int]


class AipBit(enum.IntFlag):
    """Application Interchange Profile (82) byte 1, Book 3 Annex C1, as the steps read it."""

    CARDHOLDER_VERIFICATION = 0x10
    TERMINAL_RISK_MANAGEMENT = 0x08
    ISSUER_AUTHENTICATION = 0x04


class TerminalResponseCode(enum.StrEnum):
    """Authorisation Response Codes (8A) the terminal sets itself (Book 4 Annex A6)."""

    OFFLINE_APPROVED = "Y1"
    OFFLINE_DECLINED = "Z1"
    UNABLE_ONLINE_APPROVED = "Y3"
    UNABLE_ONLINE_DECLINED = "Z3"


@dataclass(frozen=True)
class KernelServices:
    """What the kernel needs besides the card: configuration, keys and the caller's callbacks.

    `random_bytes` pads an enciphered PIN (Book 2 7.1). `pin_entry` None
    means no PIN pad; `online` None means the terminal cannot go online.
    `transaction_log(pan_fingerprint) -> amount` gives the amount already
    approved offline for this card (floor limit check, Book 3 10.6.1).
    """

    terminal: ApplicationList
    config: KernelConfig
    capks: CapkStore
    random_bytes: Callable[[int], bytes]
    pin_entry: PinEntry | None = None
    online_pin_block: OnlinePinBlock | None = None
    online: OnlineHandler | None = None
    transaction_log: TransactionLog | None = None
    choose: Chooser | None = None


def build_field55(source: Mapping[int, bytes], tags: tuple[int, ...]) -> bytes:
    """ICC data for ISO 8583 field 55: each listed tag present in `source`, in list order."""
    return b"".join(tlv.encode(tag, source[tag]) for tag in tags if tag in source)


@dataclass(frozen=True)
class Ending:
    """A step's word that the transaction is over, and why."""

    outcome: Outcome
    reason: str = ""


class Terminate(Exception):
    """The card dialogue cannot go on (card not accepted, data missing): the transaction stops here."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- what the steps add to as they go -----------------------------------------------------------


def transaction_data(txn: TransactionInput) -> dict[int, bytes]:
    """The data objects of the caller's transaction input (amounts, date, time, type, 9F37, 9F41)."""
    return {
        0x9F02: amount_n12(txn.amount),
        0x9F03: amount_n12(txn.amount_other),
        0x81: min(txn.amount, 0xFFFFFFFF).to_bytes(4, "big"),
        0x9F04: min(txn.amount_other, 0xFFFFFFFF).to_bytes(4, "big"),
        0x9A: date_n6(txn.now.date()),
        0x9F21: time_n6(txn.now),
        0x9C: bytes([int(txn.transaction_type)]),
        0x9F37: txn.unpredictable_number,
        0x9F41: bcd_digits(txn.sequence_counter, 4),
    }


@dataclass
class DataObjects:
    """Every data object a DOL or field 55 may name, by where it comes from."""

    transaction: dict[int, bytes]
    card: dict[int, bytes] = field(default_factory=dict)  # FCI, GPO answer, records; 84
    terminal: dict[int, bytes] = field(default_factory=dict)  # kernel config, application parameters
    # Made on the way: 9F45/9F4C (ODA), 9F34 (CVM), 98 (TC hash), 8A, 89, 91, 9F5B.
    dynamic: dict[int, bytes] = field(default_factory=dict)
    # The last GENERATE AC answer (9F27, 9F36, 9F26, 9F10..., 9F26 and 9F4C from a verified CDA
    # signature), replaced whole by each answer so that one answer's CID never stands next to
    # another answer's cryptogram.
    card_answer: dict[int, bytes] = field(default_factory=dict)

    def terminal_side(self) -> dict[int, bytes]:
        """The terminal's data and the transaction's, as a PDOL or DDOL may name them."""
        return {**self.terminal, **self.transaction}

    def source(self, tvr: Tvr, tsi: Tsi) -> dict[int, bytes]:
        """All of them with the TVR (95) and TSI (9B) as they stand; later sources win."""
        results = {0x95: tvr.to_bytes(), 0x9B: tsi.to_bytes()}
        terminal = {**self.terminal, **self.transaction, **self.dynamic, **results}
        return {**self.card, **terminal, **self.card_answer}


@dataclass
class CryptogramExchange:
    """What the GENERATE AC commands leave; written by `firmware.emv.steps.generate_ac` only."""

    cdol1_data: bytes = b""
    cda_failed: bool = False
    last: GenerateAcResponse | None = None
    advice_required: bool = False


@dataclass
class KernelContext:
    transport: Transport
    txn: TransactionInput
    services: KernelServices
    data: DataObjects
    tvr: Tvr = field(default_factory=Tvr)
    tsi: Tsi = field(default_factory=Tsi)
    ac: CryptogramExchange = field(default_factory=CryptogramExchange)
    scripts: list[ScriptResult] = field(default_factory=list)
    # The application as the card gave it, kept for the result even when its data is then refused.
    selected: ApplicationData | None = None
    read: ApplicationRead | None = None
    oda: OfflineAuthentication | None = None
    cardholder: CardholderVerification | None = None
    first_ac: FirstAc | None = None
    authorisation: Authorisation | None = None
    completion: Completion | None = None

    @classmethod
    def start(cls, transport: Transport, txn: TransactionInput, services: KernelServices) -> KernelContext:
        return cls(transport, txn, services, DataObjects(transaction_data(txn)))

    @property
    def config(self) -> KernelConfig:
        return self.services.config

    @property
    def refund(self) -> bool:
        return self.txn.transaction_type is TransactionType.REFUND

    @property
    def application(self) -> ApplicationRead:
        """The read step's output, for the steps after it."""
        if self.read is None:
            raise AssertionError("the application has not been read")
        return self.read

    @property
    def host_answered(self) -> bool:
        return self.authorisation is not None and self.authorisation.response is not None

    @property
    def host_approved(self) -> bool:
        """The host approved (some amount): a transaction that now fails must be reversed."""
        decision = self.authorisation.decision if self.authorisation is not None else None
        return decision is not None and decision is not HostDecision.DECLINED

    def source(self) -> dict[int, bytes]:
        return self.data.source(self.tvr, self.tsi)

    def set_response_code(self, code: str) -> None:
        """Authorisation Response Code (8A): the host's, or the terminal's own (Book 4 Annex A6)."""
        self.data.dynamic[0x8A] = code.encode("ascii")


Step = Callable[[KernelContext], "Ending | None"]
