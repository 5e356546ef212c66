"""The card as cardholder verification and risk management talk to it: GET DATA, GET CHALLENGE, VERIFY.

`TransportCard` is the kernel's `PinCard` (firmware.emv.cvm) over a
`Transport`. A status word other than 9000 is an answer, not an error: GET
DATA and GET CHALLENGE then give None, VERIFY gives the status word. Reader
errors (card removed) pass through.
"""

from __future__ import annotations

from firmware.emv import apdu, tlv
from firmware.emv.transport import Transport
from firmware.errors import EmvError

__all__ = ["TransportCard"]

CHALLENGE_LENGTH = 8


class TransportCard:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def get_data(self, tag: int) -> bytes | None:
        """The value of `tag` (9F36, 9F13, 9F17...), or None when the card does not give it."""
        response = self._transport.exchange(apdu.get_data(tag))
        if not response.ok:
            return None
        try:
            return tlv.find(response.data, tag)
        except EmvError:
            return None

    def get_challenge(self) -> bytes | None:
        response = self._transport.exchange(apdu.get_challenge())
        return response.data if response.ok and len(response.data) == CHALLENGE_LENGTH else None

    def verify(self, qualifier: int, data: bytes) -> int:
        return self._transport.exchange(apdu.verify(data, qualifier)).sw
