"""Terminal action analysis, the first GENERATE AC and card action analysis (Book 3 10.7-10.8).

Leaves `ctx.first_ac`. The card's answer ends the transaction offline when
it approves (TC, 8A Y1) or declines (AAC, 8A Z1), and when its CDA signature
fails (Book 2 6.6.2: declined; an ARQC is closed with an AAC, 8A Z3). An
ARQC, or the AAC of a refund, goes on to online authorisation.
"""

from __future__ import annotations

from firmware.emv.action import (
    ActionCodes,
    CardDecision,
    card_action_analysis,
    issuer_action_codes,
    terminal_action_analysis,
)
from firmware.emv.genac import CryptogramType
from firmware.emv.kernel_context import Ending, KernelContext, TerminalResponseCode
from firmware.emv.kernel_outputs import FirstAc
from firmware.emv.result import Outcome
from firmware.emv.steps.generate_ac import generate_ac

__all__ = ["action_codes", "first_generate_ac"]


def first_generate_ac(ctx: KernelContext) -> Ending | None:
    requested = _first_cryptogram(ctx)
    answer = generate_ac(ctx, requested, second=False)
    decision = card_action_analysis(requested, answer.cryptogram_type)
    ctx.first_ac = FirstAc(requested, answer, decision)
    if ctx.ac.cda_failed and decision is not CardDecision.DECLINE:
        if decision is CardDecision.GO_ONLINE:
            ctx.set_response_code(TerminalResponseCode.UNABLE_ONLINE_DECLINED)
            generate_ac(ctx, CryptogramType.AAC, second=True)
        else:
            ctx.set_response_code(TerminalResponseCode.OFFLINE_DECLINED)
        return Ending(Outcome.DECLINED_OFFLINE, "CDA failed at the first GENERATE AC")
    if decision is CardDecision.DECLINE:
        if ctx.refund:
            return None  # the host alone approves a refund's credit
        ctx.set_response_code(TerminalResponseCode.OFFLINE_DECLINED)
        return Ending(Outcome.DECLINED_OFFLINE, "card declined (AAC)")
    if decision is CardDecision.APPROVE:
        ctx.set_response_code(TerminalResponseCode.OFFLINE_APPROVED)
        return Ending(Outcome.APPROVED_OFFLINE)
    return None


def action_codes(ctx: KernelContext) -> tuple[ActionCodes, ActionCodes]:
    """The terminal's action codes for this application and the card's (9F0D, 9F0E, 9F0F)."""
    params = ctx.application.params
    tac = ActionCodes(params.tac_denial, params.tac_online, params.tac_default)
    return tac, issuer_action_codes(ctx.data.card)


def _first_cryptogram(ctx: KernelContext) -> CryptogramType:
    if ctx.refund:
        return CryptogramType.AAC  # Book 4: a refund asks the card for an AAC
    tac, iac = action_codes(ctx)
    return terminal_action_analysis(
        ctx.tvr.to_bytes(),
        tac,
        iac,
        online_capable=ctx.config.online_capable,
        online_only=ctx.config.online_only,
    )
