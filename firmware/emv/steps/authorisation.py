"""Online authorisation step: the request to the caller's host callback (Book 3 10.7, Book 4 12).

Leaves `ctx.authorisation`: field 55 as it goes to the host, the host's
answer and what it decides for this amount (`firmware.emv.online.host_decision`),
or why there is no answer. The host's 8A, 89 and 91 join the data objects.

No callback, a callback answering None, or one raising the host link's own
error (`firmware.errors.HostError`: timeout, unreachable, connection lost,
MAC mismatch, message format) is 'unable to go online': the completion step
decides by default action analysis. Any other exception from the callback
is a bug: it leaves the kernel as `HostCallbackError`, which
`process_transaction` unwraps so the caller sees the callback's own error.
"""

from __future__ import annotations

from firmware.emv.genac import CryptogramType
from firmware.emv.kernel_context import Ending, KernelContext, build_field55
from firmware.emv.kernel_outputs import Authorisation
from firmware.emv.online import OnlineRequest, OnlineResponse, host_decision
from firmware.errors import HostError

__all__ = ["HostCallbackError", "authorise_online"]


class HostCallbackError(Exception):
    """Internal: the host callback raised `error`, not a host error; the kernel's own handlers let it by."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"host callback raised {type(error).__name__}")
        self.error = error


def authorise_online(ctx: KernelContext) -> Ending | None:
    handler = ctx.services.online
    field55 = build_field55(ctx.source(), ctx.config.field55_tags)
    if handler is None:
        ctx.authorisation = Authorisation(field55)
        return None
    try:
        response = handler(_request(ctx, field55))
    except HostError as exc:
        # The card still holds an open ARQC: the transaction goes on as 'unable to go online'
        # (Book 3 10.7). Only the error's type is kept: its text may carry card data.
        ctx.authorisation = Authorisation(field55, failure=f"host callback failed ({type(exc).__name__})")
        return None
    except Exception as exc:
        raise HostCallbackError(exc) from exc
    if response is None:
        ctx.authorisation = Authorisation(field55)
        return None
    _take_response(ctx, response)
    config = ctx.config
    decision = host_decision(
        response, ctx.txn.amount, config.approval_response_codes, config.partial_approval_response_codes
    )
    ctx.authorisation = Authorisation(field55, response, decision)
    return None


def _request(ctx: KernelContext, field55: bytes) -> OnlineRequest:
    read, txn = ctx.application, ctx.txn
    cryptogram = CryptogramType.AAC if ctx.refund else CryptogramType.ARQC
    return OnlineRequest(
        field55=field55,
        masked_pan=read.app.masked_pan or "",
        amount=txn.amount,
        amount_other=txn.amount_other,
        currency_code=ctx.config.currency_code,
        transaction_type=txn.transaction_type,
        transmitted_at=txn.now,
        sequence_counter=txn.sequence_counter,
        aid=read.app.selected.aid,
        cryptogram_type=cryptogram.name,
        expiry=read.app.expiry,
        pan_sequence_number=read.pan_sequence_number,
        pan=read.pan,
        track2=ctx.data.card.get(0x57),
        online_pin_block=ctx.cardholder.online_pin_block if ctx.cardholder is not None else None,
    )


def _take_response(ctx: KernelContext, response: OnlineResponse) -> None:
    ctx.set_response_code(response.response_code)
    if response.authorisation_code is not None:
        ctx.data.dynamic[0x89] = response.authorisation_code.encode("ascii")
    if response.issuer_authentication_data is not None:
        ctx.data.dynamic[0x91] = response.issuer_authentication_data
