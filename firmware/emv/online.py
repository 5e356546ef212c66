"""The kernel's door to the acquirer host: what it hands over and what it gets back.

The kernel calls `online(request) -> OnlineResponse | None` (`OnlineHandler`).
None means the terminal could not go online, and so does a `HostError`
raised by the callback (firmware.errors: `HostTimeoutError`,
`HostUnreachableError`, `HostConnectionLostError`, `MacMismatchError`,
`MessageFormatError`): the kernel goes on as 'unable to go online' (Book 3
10.7, default action analysis). Any other exception is a bug of the caller:
the kernel lets it out of `process_transaction` unchanged, with the card's
ARQC still open, so the caller treats it as 'may need reversal'. Building
the ISO 8583 message and its MAC is the caller's business: the request
carries what the message needs, the clear PAN and track 2 only in memory
(never in `repr` or `to_log`).

`host_decision` reads the answer against the amount asked: only an approval
of the whole amount lets the kernel ask the card for a TC. A partial
approval (ISO 8583 response code '10', or an approved amount other than the
one asked) is an authorisation the terminal does not complete: the card is
asked for an AAC and the caller reverses what the host approved.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from datetime import datetime

from firmware.emv.transaction import TransactionType
from firmware.errors import MessageFormatError

__all__ = ["HostDecision", "OnlineHandler", "OnlineRequest", "OnlineResponse", "host_decision"]


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
    # 5F34 as read from the card (0-99), for ISO 8583 field 23; None when the card has none.
    pan_sequence_number: int | None = None
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
    """The host's answer: 8A response code, 91 issuer authentication data, 71/72 scripts, 89 auth code.

    A value that cannot be one of these raises MessageFormatError whose
    `field` is the attribute's name ("response_code", ...).

    `approved_amount` (minor units) is the amount the host says it approved,
    when its answer says one (a partial approval); None when it does not.
    """

    response_code: str
    issuer_authentication_data: bytes | None = None
    issuer_scripts: bytes = b""
    authorisation_code: str | None = None
    approved_amount: int | None = None

    def __post_init__(self) -> None:
        if len(self.response_code) != 2 or not self.response_code.isascii():
            raise MessageFormatError(
                f"response code '{self.response_code}' is not 2 characters (8A)", "response_code"
            )
        data = self.issuer_authentication_data
        if data is not None and not 8 <= len(data) <= 16:
            raise MessageFormatError(
                f"issuer authentication data of {len(data)} bytes (8 to 16, 91)", "issuer_authentication_data"
            )
        if self.authorisation_code is not None and (
            len(self.authorisation_code) != 6 or not self.authorisation_code.isascii()
        ):
            raise MessageFormatError(
                f"authorisation code '{self.authorisation_code}' is not 6 characters", "authorisation_code"
            )
        if self.approved_amount is not None and self.approved_amount < 0:
            raise MessageFormatError(f"approved amount {self.approved_amount} is negative", "approved_amount")


class HostDecision(enum.Enum):
    APPROVED = "approved"  # the whole amount asked for
    APPROVED_OTHER_AMOUNT = "approved another amount"  # a partial approval: not completed, reversed
    DECLINED = "declined"


def host_decision(
    response: OnlineResponse, amount: int, approval_codes: Set[str], partial_approval_codes: Set[str]
) -> HostDecision:
    """What the host's answer means for a transaction of `amount` (minor units).

    An approval code approves the whole amount unless the answer names
    another approved amount. A partial approval code ('10') approves the
    whole amount only when the answer names exactly that amount: without an
    approved amount it says that less was approved, not how much.
    """
    code = response.response_code
    approved = response.approved_amount
    if code in partial_approval_codes:
        return HostDecision.APPROVED if approved == amount else HostDecision.APPROVED_OTHER_AMOUNT
    if code not in approval_codes:
        return HostDecision.DECLINED
    if approved is not None and approved != amount:
        return HostDecision.APPROVED_OTHER_AMOUNT
    return HostDecision.APPROVED


OnlineHandler = Callable[[OnlineRequest], "OnlineResponse | None"]
"""The host callback: the host's answer, or None when there is none; raises only `HostError` on purpose.

A `HostError` (timeout, unreachable, connection lost, MAC mismatch, message
format) means 'unable to go online', like None. Anything else it raises is a
bug and leaves the kernel unchanged.
"""
