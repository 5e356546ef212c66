"""The kernel's door to the acquirer host: what it hands over and what it gets back.

The kernel calls `online(request) -> OnlineResponse | None`; None means the
terminal could not go online (no link, timeout). Building the ISO 8583
message and its MAC is the caller's business: the request carries what the
message needs, the clear PAN and track 2 only in memory (never in `repr`
or `to_log`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from firmware.emv.transaction import TransactionType
from firmware.errors import MessageFormatError

__all__ = ["OnlineHandler", "OnlineRequest", "OnlineResponse"]


@dataclass(frozen=True)
class OnlineRequest:
    """An authorisation (ARQC) or, for a refund, the card's AAC going to the host."""

    field55: bytes
    masked_pan: str
    amount: int
    amount_other: int
    currency_code: int
    transaction_type: TransactionType
    transmitted_at: datetime
    sequence_counter: int
    aid: bytes
    cryptogram_type: str
    expiry: str | None = None
    pan_sequence_number: str | None = None
    pan: str = field(default="", repr=False)
    track2: bytes | None = field(default=None, repr=False)
    online_pin_block: bytes | None = field(default=None, repr=False)

    def to_log(self) -> dict[str, object]:
        return {
            "masked_pan": self.masked_pan,
            "amount": self.amount,
            "amount_other": self.amount_other,
            "currency_code": self.currency_code,
            "transaction_type": f"{int(self.transaction_type):02X}",
            "sequence_counter": self.sequence_counter,
            "aid": self.aid.hex().upper(),
            "cryptogram_type": self.cryptogram_type,
            "online_pin": self.online_pin_block is not None,
            "field55": self.field55.hex().upper(),
        }


@dataclass(frozen=True)
class OnlineResponse:
    """The host's answer: 8A response code, 91 issuer authentication data, 71/72 scripts, 89 auth code."""

    response_code: str
    issuer_authentication_data: bytes | None = None
    issuer_scripts: bytes = b""
    authorisation_code: str | None = None

    def __post_init__(self) -> None:
        if len(self.response_code) != 2 or not self.response_code.isascii():
            raise MessageFormatError(f"response code '{self.response_code}' is not 2 characters (8A)")
        data = self.issuer_authentication_data
        if data is not None and not 8 <= len(data) <= 16:
            raise MessageFormatError(f"issuer authentication data of {len(data)} bytes (8 to 16, 91)")
        if self.authorisation_code is not None and (
            len(self.authorisation_code) != 6 or not self.authorisation_code.isascii()
        ):
            raise MessageFormatError(f"authorisation code '{self.authorisation_code}' is not 6 characters")


OnlineHandler = Callable[[OnlineRequest], "OnlineResponse | None"]
