"""What every operation of the business layer works with: the books, the wire, the keys, the clock.

One `TxnContext` is made by the composition root (or a test) and handed to
the operations (`authorise`, `reverse`, `uploader`, `settlement`); none of
them opens a file, a socket or a clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firmware.errors import StoreError
from firmware.host.messages import TerminalIdentity
from firmware.host.spec import IsoMessage
from firmware.keys.signing import RecordSigner
from firmware.keys.store import KeyStore
from firmware.txn.book import Book
from firmware.txn.model import JournalEntry
from firmware.txn.pan_vault import PanVault
from firmware.txn.stored_request import StoredRequest
from firmware.txn.terms import Terms
from firmware.txn.wire import Wire

__all__ = ["TxnContext"]


@dataclass(frozen=True)
class TxnContext:
    book: Book
    wire: Wire
    keys: KeyStore
    vault: PanVault
    signer: RecordSigner
    identity: TerminalIdentity
    terms: Terms
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0)

    def now(self) -> datetime:
        return self.clock()

    def pan_binding(self, batch: int, trace: int) -> str:
        """What a sealed PAN is bound to: the card payment (sale, pre-authorisation) it was read for."""
        return f"{self.identity.terminal_id}|{batch:06d}|{trace:06d}"

    def rebuild(self, stored: Mapping[str, Any], pan_sealed: object, where: str) -> IsoMessage:
        """A stored request made whole again (`StoredRequest`): its PAN unsealed, in memory only."""
        if not isinstance(pan_sealed, str):
            raise StoreError(f"{where}: the stored request has no sealed PAN")
        request = StoredRequest.from_json(stored, where)
        payment = request.original or request
        pan = self.vault.open(pan_sealed, self.pan_binding(payment.batch, payment.trace))
        return request.build(self.identity, pan)

    def date_mmdd(self, entry: JournalEntry) -> str:
        return f"{entry.created:%m%d}"
