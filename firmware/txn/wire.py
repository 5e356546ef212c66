"""One request to the acquirer and what its fate means for the money.

`Wire.exchange` seals the request with the session MAC, sends it, checks the
answer's MAC and that it answers this request (type, trace, terminal). Its
errors say whether money may have moved, which decides reversal and retry:

- `NotSent` (HostUnreachableError): no connection, nothing left the terminal;
- `NoValidAnswer`: the request left, and no answer that can be trusted came
  back (timeout, connection lost, garbage, an answer to another request):
  the host may have acted on it, field 39 of its reversal is ``98``;
- `AnswerMacFailed` (MacMismatchError): an answer came whose MAC does not
  verify, or with no MAC at all (even the declines a host sends unMACed, A0,
  77 and 97: a man in the middle could forge them to have a request that the
  host approved disarmed); field 39 of the reversal is ``A0``.

All three are HostErrors, so the EMV kernel reads any of them as "unable to
go online". The wording of the errors never carries card data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from firmware.errors import (
    HostError,
    HostUnreachableError,
    MacMismatchError,
)
from firmware.host.channel import HostLink
from firmware.host.mac import MessageMac
from firmware.host.messages import send
from firmware.host.spec import IsoMessage
from firmware.txn.model import ReversalReason

__all__ = ["AnswerMacFailed", "NoValidAnswer", "NotSent", "Wire", "WireError"]


class WireError(HostError):
    """The request got no answer the terminal may act on; `reversal_reason` says why (None: not sent)."""

    reversal_reason: ReversalReason | None = None


class NotSent(WireError):
    """Nothing reached the host."""


class NoValidAnswer(WireError):
    reversal_reason = ReversalReason.NO_ANSWER


class AnswerMacFailed(WireError):
    reversal_reason = ReversalReason.BAD_MAC


@dataclass(frozen=True)
class Wire:
    link: HostLink
    mac: MessageMac
    timeout: float | None = None

    def exchange(self, request: Mapping[str, str]) -> IsoMessage:
        """Send `request`; the checked answer, or a WireError saying whether money may have moved."""
        try:
            return send(self.link, request, self.mac, self.timeout, allow_unmaced_decline=False)
        except HostUnreachableError as exc:
            raise NotSent(f"host unreachable: {exc}") from None
        except MacMismatchError as exc:
            raise AnswerMacFailed(f"answer MAC does not verify: {exc}") from None
        except HostError as exc:
            raise NoValidAnswer(f"no valid answer: {exc}") from None
