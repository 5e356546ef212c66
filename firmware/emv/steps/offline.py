"""Offline data authentication step: SDA, DDA or the key recovery of CDA (Book 3 10.3, Book 2 5-6).

Leaves `ctx.oda` (method, result, static data) and the TVR/TSI bits of
`firmware.emv.oda`; 9F45 (SDA) or 9F4C (DDA) joins the data objects. A
failed authentication is an outcome in the TVR, never an exception. CDA's
GENERATE AC half is checked by `firmware.emv.steps.generate_ac`.
"""

from __future__ import annotations

from firmware.emv import apdu
from firmware.emv.kernel_context import Ending, KernelContext
from firmware.emv.kernel_outputs import OfflineAuthentication
from firmware.emv.oda import (
    OdaMethod,
    OdaResult,
    StaticData,
    build_static_data,
    perform_dda,
    perform_sda,
    prepare_cda,
    record_not_performed,
    select_method,
)

__all__ = ["authenticate_offline"]


def authenticate_offline(ctx: KernelContext) -> Ending | None:
    read = ctx.application
    method = select_method(read.aip, ctx.config.capabilities)
    if method is OdaMethod.NONE:
        record_not_performed(ctx.tvr)
        ctx.oda = OfflineAuthentication(method)
        return None
    records = {(record.sfi, record.number): record.data for record in read.app.records.records}
    static = build_static_data(read.app.options.afl, records, read.aip, ctx.data.card.get(0x9F4A))
    result = _perform(ctx, method, static)
    ctx.data.dynamic.update(result.data_objects)
    ctx.oda = OfflineAuthentication(method, result, static)
    return None


def _perform(ctx: KernelContext, method: OdaMethod, static: StaticData) -> OdaResult:
    read, capks, card = ctx.application, ctx.services.capks, ctx.data.card
    today = ctx.txn.now.date()
    if method is OdaMethod.SDA:
        return perform_sda(capks, card, static, ctx.tvr, today, tsi=ctx.tsi, rid=read.rid)
    if method is OdaMethod.CDA:
        return prepare_cda(capks, card, static, ctx.tvr, today, tsi=ctx.tsi, rid=read.rid)

    def internal_authenticate(ddol_data: bytes) -> bytes:
        return ctx.transport.send(apdu.internal_authenticate(ddol_data)).data

    return perform_dda(
        capks,
        card,
        static,
        internal_authenticate,
        ctx.data.terminal_side(),
        ctx.tvr,
        today,
        default_ddol=read.params.default_ddol or None,
        tsi=ctx.tsi,
        rid=read.rid,
    )
