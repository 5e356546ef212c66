"""The EMV transaction on the terminal side, from application selection to the last script (Book 3 10).

One `KernelContext` (firmware.emv.kernel_context) goes through these steps,
in this order; each is one function `step(ctx) -> Ending | None` that leaves
its output in its own field of the context, and an `Ending` stops the list:

    1  read_application_data        selection, GPO, READ RECORD     firmware.emv.steps.read
    2  authenticate_offline         offline data authentication     firmware.emv.steps.offline
    3  check_restrictions           processing restrictions         firmware.emv.steps.restrictions
    4  verify_cardholder            cardholder verification         firmware.emv.steps.cardholder
    5  manage_risk                  terminal risk management        firmware.emv.steps.risk
    6  first_generate_ac            terminal action analysis, first GENERATE AC, card action analysis
                                                                    firmware.emv.steps.first_ac
    7  authorise_online             online authorisation            firmware.emv.steps.authorisation
    8  complete_refund              a refund's host decision        firmware.emv.steps.completion
    9  authenticate_issuer          issuer authentication           firmware.emv.steps.issuer
    10 run_scripts_before_final_ac  issuer scripts '71'             firmware.emv.steps.issuer
    11 second_generate_ac           completion, second GENERATE AC  firmware.emv.steps.completion
    12 run_scripts_after_final_ac   issuer scripts '72'             firmware.emv.steps.issuer
    13 conclude                     the outcome                     firmware.emv.steps.completion

Both GENERATE AC go through firmware.emv.steps.generate_ac (CDOL, TC hash,
CDA check); the card commands of steps 4 and 5 through
firmware.emv.steps.card.

Everything from outside comes in as a parameter: the reader, the clock and
unpredictable number (in `TransactionInput`), random padding bytes, the PIN
pad (`pin_entry`), the online PIN block encryption (`online_pin_block`), the
host (`online`). A decline is an outcome; a card that breaks the protocol
or leaves ends the transaction as TERMINATED (or, after the host approved,
HOST_APPROVED_CARD_DECLINED so the caller reverses it). The host callback's
own errors (`firmware.errors.HostError`) mean 'unable to go online'.

What raises: errors of the caller's own making (configuration), and any
exception of the host callback other than a HostError, unchanged, whatever
its kind. It comes after the first GENERATE AC: the card holds an open ARQC
and the request may have reached the host, so the caller treats it as 'may
need reversal' (the write-ahead reversal stays armed; a note on the
exception says so). The kernel sends the card nothing more; the card
session ends when the caller powers the card off (`run_transaction` does).
"""

from __future__ import annotations

import time

from firmware.clocks import MonotonicClock
from firmware.emv.kernel_context import (
    Ending,
    KernelContext,
    KernelServices,
    Step,
    Terminate,
    build_field55,
)
from firmware.emv.oda import OdaMethod
from firmware.emv.reader import CardReader
from firmware.emv.result import Outcome, TransactionResult
from firmware.emv.steps.authorisation import HostCallbackError, authorise_online
from firmware.emv.steps.cardholder import verify_cardholder
from firmware.emv.steps.completion import complete_refund, conclude, second_generate_ac
from firmware.emv.steps.first_ac import first_generate_ac
from firmware.emv.steps.issuer import (
    authenticate_issuer,
    run_scripts_after_final_ac,
    run_scripts_before_final_ac,
)
from firmware.emv.steps.offline import authenticate_offline
from firmware.emv.steps.read import read_application_data
from firmware.emv.steps.restrictions import check_restrictions
from firmware.emv.steps.risk import manage_risk
from firmware.emv.transaction import TransactionInput
from firmware.emv.transport import Transport
from firmware.errors import CardRemovedError, EmvError, NoCardError, ReaderError, StatusWordError

__all__ = [
    "STEPS",
    "KernelServices",
    "build_field55",
    "process_transaction",
    "run_transaction",
]

STEPS: tuple[Step, ...] = (
    read_application_data,
    authenticate_offline,
    check_restrictions,
    verify_cardholder,
    manage_risk,
    first_generate_ac,
    authorise_online,
    complete_refund,
    authenticate_issuer,
    run_scripts_before_final_ac,
    second_generate_ac,
    run_scripts_after_final_ac,
    conclude,
)

MAY_NEED_REVERSAL = (
    "raised by the host callback after the first GENERATE AC: the card's ARQC is open and the"
    " request may have reached the host; treat the transaction as 'may need reversal'"
)


def _run(ctx: KernelContext) -> Ending:
    for step in STEPS:
        ending = step(ctx)
        if ending is not None:
            return ending
    raise AssertionError("the last step always ends the transaction")


def process_transaction(
    transport: Transport, txn: TransactionInput, services: KernelServices
) -> TransactionResult:
    """Run one transaction with a card that is already powered on (the caller powers it off)."""
    ctx = KernelContext.start(transport, txn, services)
    try:
        ending = _settle(ctx)
    except HostCallbackError as failed:
        error = failed.error
    else:
        return transaction_result(ctx, ending)
    error.add_note(MAY_NEED_REVERSAL)
    raise error  # outside the handler: the callback's error keeps its own cause and context


def _settle(ctx: KernelContext) -> Ending:
    """Run the steps; the card's failures and the card leaving become the ending they mean."""
    try:
        return _run(ctx)
    except Terminate as stop:
        return _broken(ctx, stop.reason)
    except (CardRemovedError, ReaderError) as exc:
        if ctx.host_approved:
            return Ending(Outcome.HOST_APPROVED_CARD_DECLINED, f"card removed after host approval: {exc}")
        if ctx.host_answered:
            return Ending(Outcome.DECLINED_ONLINE, f"host declined; card removed: {exc}")
        return Ending(Outcome.TERMINATED, f"card removed: {exc}")
    except StatusWordError as exc:
        return _broken(ctx, f"card refused a command: {exc}")
    except EmvError as exc:
        return _broken(ctx, f"card data or dialogue not acceptable: {exc}")


def _broken(ctx: KernelContext, reason: str) -> Ending:
    if ctx.host_approved:
        return Ending(Outcome.HOST_APPROVED_CARD_DECLINED, reason)
    if ctx.host_answered:
        return Ending(Outcome.DECLINED_ONLINE, reason)
    return Ending(Outcome.TERMINATED, reason)


def transaction_result(ctx: KernelContext, ending: Ending) -> TransactionResult:
    """What the context holds when the transaction ends, as the caller's one result."""
    app, txn, config, outcome = ctx.selected, ctx.txn, ctx.config, ending.outcome
    source = ctx.source()
    last_ac = ctx.ac.last
    authorisation, cardholder, oda = ctx.authorisation, ctx.cardholder, ctx.oda
    response = authorisation.response if authorisation is not None else None
    oda_result = oda.result if oda is not None else None
    response_code = ctx.data.dynamic.get(0x8A)
    return TransactionResult(
        outcome=outcome,
        transaction_type=txn.transaction_type,
        amount=txn.amount,
        amount_other=txn.amount_other,
        currency_code=config.currency_code,
        reason=ending.reason,
        tvr=ctx.tvr.to_bytes(),
        tsi=ctx.tsi.to_bytes(),
        cid=last_ac.cid if last_ac is not None else None,
        cryptogram=source.get(0x9F26) if last_ac is not None else None,
        atc=last_ac.atc if last_ac is not None else None,
        cvm_results=ctx.data.dynamic.get(0x9F34),
        masked_pan=app.masked_pan if app is not None else None,
        aid=app.selected.aid if app is not None else None,
        application_label=app.selected.label if app is not None else None,
        field55=build_field55(source, config.field55_tags) if last_ac is not None else b"",
        authorisation_field55=authorisation.field55 if authorisation is not None else None,
        script_results=tuple(ctx.scripts),
        response_code=response_code.decode("ascii") if response_code is not None else None,
        authorisation_code=response.authorisation_code if response is not None else None,
        approved_amount=response.approved_amount if response is not None else None,
        oda_method=(oda.method if oda is not None else OdaMethod.NONE).value if app is not None else None,
        oda_failure=str(oda_result.failure) if oda_result is not None and oda_result.failure else None,
        signature_required=(
            cardholder is not None and cardholder.signature_required and outcome is not Outcome.TERMINATED
        ),
        advice_required=ctx.ac.advice_required,
        online_pin_block=cardholder.online_pin_block if cardholder is not None else None,
        trace=tuple(ctx.transport.display_trace()),
    )


def run_transaction(
    reader: CardReader,
    txn: TransactionInput,
    services: KernelServices,
    *,
    clock: MonotonicClock = time.perf_counter,
) -> TransactionResult:
    """Power the card on, run one transaction, power it off. `clock` only times the APDU trace."""
    transport = Transport(reader, clock=clock)
    try:
        transport.power_on()
    except NoCardError as exc:
        ctx = KernelContext.start(transport, txn, services)
        return transaction_result(ctx, Ending(Outcome.TERMINATED, f"no card: {exc}"))
    try:
        return process_transaction(transport, txn, services)
    finally:
        transport.power_off()
