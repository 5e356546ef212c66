"""A card payment through the EMV kernel, with the business layer's host callback.

The service hands in the reader, the amount, the PIN source and the online
callback (which builds, stores and sends the authorisation: see
`firmware.txn.authorise`); this module loads the kernel's data once and runs
one transaction. The online PIN block is made under the PIK of the key store,
here and nowhere else; a PIN exists only in memory for the time of the call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from firmware.emv.application_list import ApplicationList, load_application_list
from firmware.emv.capk import CapkStore, load_capk_store
from firmware.emv.cvm import PinKind
from firmware.emv.kernel import KernelServices, run_transaction
from firmware.emv.kernel_config import KernelConfig, load_kernel_config
from firmware.emv.online import OnlineHandler
from firmware.emv.reader import CardReader
from firmware.emv.result import TransactionResult
from firmware.emv.transaction import TransactionInput, TransactionType
from firmware.identity import Identity, load_identity
from firmware.keys.pinblock import encrypt_pin_block
from firmware.keys.store import KeyStore

__all__ = ["KernelSetup", "PinSource", "run_card_payment"]

PIK_NAME = "PIK"

# What the cardholder typed for this kind of PIN (None: bypass / no PIN pad).
PinSource = Callable[[PinKind, "int | None"], "str | None"]


@dataclass(frozen=True)
class KernelSetup:
    """The kernel's data, loaded once: identity, applications, kernel parameters, CA keys."""

    identity: Identity
    applications: ApplicationList
    config: KernelConfig
    capks: CapkStore

    @classmethod
    def load(cls) -> KernelSetup:
        identity = load_identity()
        applications = load_application_list()
        config = load_kernel_config(identity=identity, applications=applications)
        return cls(identity, applications, config, load_capk_store())


def run_card_payment(
    reader: CardReader,
    *,
    setup: KernelSetup,
    keys: KeyStore,
    amount: int,
    refund: bool,
    now: datetime,
    sequence_counter: int,
    random_bytes: Callable[[int], bytes],
    online: OnlineHandler,
    pin: PinSource | None,
) -> TransactionResult:
    """Power the card, run one EMV transaction (purchase, or refund through the chip), power it off."""

    def online_pin_block(clear_pin: str, pan: str) -> bytes:
        return encrypt_pin_block(keys.get(PIK_NAME), clear_pin, pan, 0, random_bytes)

    services = KernelServices(
        terminal=setup.applications,
        config=setup.config,
        capks=setup.capks,
        random_bytes=random_bytes,
        pin_entry=pin,
        online_pin_block=online_pin_block,
        online=online,
    )
    txn = TransactionInput(
        amount=amount,
        now=now,
        unpredictable_number=random_bytes(4),
        random_selection_number=int.from_bytes(random_bytes(3), "big") % 99 + 1,
        sequence_counter=sequence_counter,
        transaction_type=TransactionType.REFUND if refund else TransactionType.PURCHASE,
        merchant_forced_online=True,
    )
    return run_transaction(reader, txn, services)
