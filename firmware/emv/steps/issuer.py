"""Issuer authentication and issuer script steps (Book 3 10.9, 10.10).

They run only when the host answered. EXTERNAL AUTHENTICATE is sent once
with 91 when the AIP asks for issuer authentication (else 91 goes to the
card in CDOL2); a refusal sets 'issuer authentication failed'. Scripts '71'
run before the second GENERATE AC, '72' after it; a failed command sets the
TVR bit of its template, and the results make 9F5B. A card removed during
'72' scripts leaves the rest not performed (the transaction is complete);
during '71' scripts it ends the transaction.
"""

from __future__ import annotations

from firmware.emv import apdu
from firmware.emv.kernel_context import AipBit, Ending, KernelContext
from firmware.emv.online import OnlineResponse
from firmware.emv.scripts import (
    AFTER_FINAL_GENERATE_AC,
    BEFORE_FINAL_GENERATE_AC,
    ScriptResult,
    ScriptStatus,
    issuer_script_results,
    parse_issuer_scripts,
    run_script,
)
from firmware.emv.tvr import TsiBit, TvrBit
from firmware.errors import CardRemovedError

__all__ = ["authenticate_issuer", "run_scripts_after_final_ac", "run_scripts_before_final_ac"]


def _response(ctx: KernelContext) -> OnlineResponse | None:
    return ctx.authorisation.response if ctx.authorisation is not None else None


def authenticate_issuer(ctx: KernelContext) -> Ending | None:
    response = _response(ctx)
    data = response.issuer_authentication_data if response is not None else None
    if data is None or not ctx.application.aip[0] & AipBit.ISSUER_AUTHENTICATION:
        return None
    answer = ctx.transport.exchange(apdu.external_authenticate(data))
    ctx.tsi.set(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
    if not answer.ok:
        ctx.tvr.set(TvrBit.ISSUER_AUTHENTICATION_FAILED)
    return None


def run_scripts_before_final_ac(ctx: KernelContext) -> Ending | None:
    _run_scripts(ctx, BEFORE_FINAL_GENERATE_AC, TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENERATE_AC)
    return None


def run_scripts_after_final_ac(ctx: KernelContext) -> Ending | None:
    _run_scripts(ctx, AFTER_FINAL_GENERATE_AC, TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENERATE_AC)
    return None


def _run_scripts(ctx: KernelContext, template: int, failed_bit: TvrBit) -> None:
    response = _response(ctx)
    if response is None or not response.issuer_scripts:
        return
    scripts = [s for s in parse_issuer_scripts(response.issuer_scripts) if s.template == template]
    card_gone = False
    for script in scripts:
        ctx.tsi.set(TsiBit.SCRIPT_PROCESSING_PERFORMED)
        if card_gone:
            result = ScriptResult(script.template, script.identifier, ScriptStatus.NOT_PERFORMED)
        else:
            try:
                result = run_script(script, lambda command: ctx.transport.exchange(command).sw)
            except CardRemovedError as exc:
                if template == BEFORE_FINAL_GENERATE_AC:
                    raise
                card_gone = True
                result = ScriptResult(script.template, script.identifier, ScriptStatus.FAILED, 0, str(exc))
        if result.status is ScriptStatus.FAILED:
            ctx.tvr.set(failed_bit)
        ctx.scripts.append(result)
    if ctx.scripts:
        # Issuer Script Results for the advice, reversal or batch field 55 (Book 4 12)
        ctx.data.dynamic[0x9F5B] = issuer_script_results(ctx.scripts)
