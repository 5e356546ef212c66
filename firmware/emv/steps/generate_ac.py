"""GENERATE AC, first or second, with its CDOL, TC hash and CDA check (Book 3 9.2, 10.8; Book 2 6.6).

The one writer of `ctx.ac` and of the card's answer among the data objects.
The first and the completion steps call `generate_ac`; it asks for a CDA
signature when CDA's key recovery passed and the cryptogram asked is not an
AAC, and marks `ctx.ac.cda_failed` (and the TVR) when that signature does
not verify. A card without the CDOL asked for ends the transaction.
"""

from __future__ import annotations

from firmware.emv import tlv
from firmware.emv.genac import (
    CryptogramType,
    GenerateAcResponse,
    build_cdol_data,
    generate_ac_command,
    parse_generate_ac_response,
    tc_hash_value,
)
from firmware.emv.kernel_context import KernelContext, Terminate
from firmware.emv.oda import OdaMethod, verify_cda
from firmware.emv.tvr import TsiBit, TvrBit

__all__ = ["generate_ac"]

TAG_TC_HASH = 0x98
TAG_SIGNED_DYNAMIC_DATA = 0x9F4B


def generate_ac(ctx: KernelContext, kind: CryptogramType, *, second: bool) -> GenerateAcResponse:
    read = ctx.application
    cdol_tag = 0x8D if second else 0x8C
    cdol = ctx.data.card.get(cdol_tag)
    if cdol is None:
        raise Terminate(f"card has no CDOL{2 if second else 1} ({cdol_tag:X})")
    if TAG_TC_HASH in (tag for tag, _ in tlv.parse_dol(cdol)):
        ctx.data.dynamic[TAG_TC_HASH] = _tc_hash(ctx)
    cdol_data = build_cdol_data(cdol, ctx.source(), cdol_tag)
    if not second:
        ctx.ac.cdol1_data = cdol_data
        ctx.tsi.set(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)
    cda = _cda_wanted(ctx, kind)
    response = ctx.transport.send(generate_ac_command(kind, cdol_data, cda=cda))
    answer = parse_generate_ac_response(response.data, cda_requested=cda)
    card_answer = {tag: value for tag, value in answer.objects.items() if tag != TAG_SIGNED_DYNAMIC_DATA}
    if cda and answer.cryptogram_type is not CryptogramType.AAC:
        assert ctx.oda is not None and ctx.oda.result is not None and ctx.oda.result.icc_key is not None
        checked = verify_cda(
            ctx.oda.result.icc_key,
            response.data,
            read.app.options.pdol_data,
            ctx.ac.cdol1_data + (cdol_data if second else b""),
            ctx.txn.unpredictable_number,
            tvr=ctx.tvr,
        )
        if checked.ok:
            card_answer.update(checked.data_objects)
        else:
            ctx.ac.cda_failed = True
    ctx.data.card_answer = card_answer
    ctx.ac.last = answer
    ctx.ac.advice_required = ctx.ac.advice_required or answer.advice_required
    return answer


def _tc_hash(ctx: KernelContext) -> bytes:
    """Book 3 9.2.2: SHA-1 over the TDOL data; the card's TDOL (97) or else the default one."""
    tdol = ctx.data.card.get(0x97)
    if tdol is None:
        tdol = ctx.application.params.default_tdol
        ctx.tvr.set(TvrBit.DEFAULT_TDOL_USED)
    return tc_hash_value(tdol, ctx.source())


def _cda_wanted(ctx: KernelContext, kind: CryptogramType) -> bool:
    oda = ctx.oda
    return (
        oda is not None
        and oda.method is OdaMethod.CDA
        and oda.result is not None
        and oda.result.ok
        and not ctx.ac.cda_failed
        and kind is not CryptogramType.AAC
    )
