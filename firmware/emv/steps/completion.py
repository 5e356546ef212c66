"""Completion: a refund's host decision, the second GENERATE AC, the outcome (Book 3 10.7, 10.11).

`complete_refund` ends a refund on the host's word alone (the card gave its
AAC). `second_generate_ac` asks the card for a TC when the host approved the
whole amount, an AAC when it did not; when the terminal was unable to go
online, default action analysis chooses (8A Y3 or Z3). It leaves
`ctx.completion`; a CDA signature that fails there declines. `conclude`
turns host and card decisions into the outcome, after the '72' scripts ran.
"""

from __future__ import annotations

from firmware.emv.action import CardDecision, default_action_analysis, second_ac_decision
from firmware.emv.genac import CryptogramType
from firmware.emv.kernel_context import Ending, KernelContext, TerminalResponseCode
from firmware.emv.kernel_outputs import Authorisation, Completion
from firmware.emv.online import HostDecision, OnlineResponse
from firmware.emv.result import Outcome
from firmware.emv.steps.first_ac import action_codes
from firmware.emv.steps.generate_ac import generate_ac

__all__ = ["complete_refund", "conclude", "second_generate_ac"]


def _authorisation(ctx: KernelContext) -> Authorisation:
    if ctx.authorisation is None:
        raise AssertionError("online authorisation has not run")
    return ctx.authorisation


def complete_refund(ctx: KernelContext) -> Ending | None:
    """A refund: the card gave its AAC; the host alone approves the credit."""
    if not ctx.refund:
        return None
    authorisation = _authorisation(ctx)
    response = authorisation.response
    if response is None:
        ctx.set_response_code(TerminalResponseCode.UNABLE_ONLINE_DECLINED)
        return Ending(Outcome.DECLINED_OFFLINE, "refund needs the host: " + _unable_online(ctx, "declined"))
    if authorisation.decision is HostDecision.APPROVED:
        return Ending(Outcome.APPROVED_ONLINE)
    if authorisation.decision is HostDecision.APPROVED_OTHER_AMOUNT:
        return Ending(Outcome.HOST_APPROVED_CARD_DECLINED, _other_amount(ctx, response))
    return Ending(Outcome.DECLINED_ONLINE, f"host declined ({response.response_code})")


def second_generate_ac(ctx: KernelContext) -> Ending | None:
    authorisation = _authorisation(ctx)
    if authorisation.response is None:
        tac, iac = action_codes(ctx)
        asked = default_action_analysis(ctx.tvr.to_bytes(), tac, iac)
        if asked is CryptogramType.TC:
            ctx.set_response_code(TerminalResponseCode.UNABLE_ONLINE_APPROVED)
        else:
            ctx.set_response_code(TerminalResponseCode.UNABLE_ONLINE_DECLINED)
    elif authorisation.decision is HostDecision.APPROVED:
        asked = CryptogramType.TC
    else:
        asked = CryptogramType.AAC
    answer = generate_ac(ctx, asked, second=True)
    decision = second_ac_decision(asked, answer.cryptogram_type)
    if decision is CardDecision.APPROVE and ctx.ac.cda_failed:
        decision = CardDecision.DECLINE  # Book 2 6.6.2: a TC whose CDA signature fails declines
    ctx.completion = Completion(asked, answer, decision)
    return None


def conclude(ctx: KernelContext) -> Ending:
    authorisation = _authorisation(ctx)
    if ctx.completion is None:
        raise AssertionError("the second GENERATE AC has not run")
    approved = ctx.completion.decision is CardDecision.APPROVE
    response = authorisation.response
    if response is None:
        if approved:
            return Ending(Outcome.APPROVED_OFFLINE, _unable_online(ctx, "card approved"))
        return Ending(Outcome.DECLINED_OFFLINE, _unable_online(ctx, "card declined"))
    if approved:
        return Ending(Outcome.APPROVED_ONLINE)
    if authorisation.decision is HostDecision.APPROVED_OTHER_AMOUNT:
        return Ending(Outcome.HOST_APPROVED_CARD_DECLINED, _other_amount(ctx, response))
    if ctx.host_approved:
        return Ending(Outcome.HOST_APPROVED_CARD_DECLINED, "card declined after host approval")
    return Ending(Outcome.DECLINED_ONLINE, f"host declined ({response.response_code})")


def _unable_online(ctx: KernelContext, then: str) -> str:
    failure = _authorisation(ctx).failure
    return f"unable to go online{f' ({failure})' if failure else ''}; {then}"


def _other_amount(ctx: KernelContext, response: OnlineResponse) -> str:
    approved = response.approved_amount
    said = f"{approved} approved" if approved is not None else "no approved amount given"
    return (
        f"host approved another amount than {ctx.txn.amount} ({response.response_code}, {said}):"
        " the terminal does not complete a partial approval; declined, the authorisation to be reversed"
    )
