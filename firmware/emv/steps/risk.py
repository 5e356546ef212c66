"""Terminal risk management step: exception file, floor limit, random selection, velocity (Book 3 10.6).

The exception file is checked and 'merchant forced online' set for every
card; the rest only when the AIP asks for it, and never for a refund. The
velocity check reads ATC (9F36) and Last Online ATC Register (9F13) with GET
DATA. Only TVR and TSI bits.
"""

from __future__ import annotations

from firmware.emv.kernel_config import pan_fingerprint
from firmware.emv.kernel_context import AipBit, Ending, KernelContext
from firmware.emv.risk import RiskInputs, exception_file_bits, terminal_risk_management
from firmware.emv.steps.card import TransportCard
from firmware.emv.tvr import TsiBit, TvrBit

__all__ = ["manage_risk"]


def manage_risk(ctx: KernelContext) -> Ending | None:
    read, config, card = ctx.application, ctx.config, ctx.data.card
    ctx.tvr.set(exception_file_bits(read.pan, config.exception_file))
    if ctx.txn.merchant_forced_online:
        ctx.tvr.set(TvrBit.MERCHANT_FORCED_ONLINE)
    if ctx.refund or not read.aip[0] & AipBit.TERMINAL_RISK_MANAGEMENT:
        return None
    params = read.params
    logged = 0
    log = ctx.services.transaction_log
    if config.floor_limit_uses_transaction_log and log is not None:
        logged = log(pan_fingerprint(read.pan, config.exception_file.salt))
    atc = last_online = None
    velocity = params.velocity_checking and 0x9F14 in card and 0x9F23 in card
    if velocity:
        reader = TransportCard(ctx.transport)
        atc = reader.get_data(0x9F36)
        last_online = reader.get_data(0x9F13)
    inputs = RiskInputs(
        amount=ctx.txn.amount,
        floor_limit=params.floor_limit,
        random_selection_threshold=params.random_selection_threshold,
        random_target_percent=params.random_target_percent,
        random_max_target_percent=params.random_max_target_percent,
        random_number=ctx.txn.random_selection_number,
        velocity_checking=velocity,
        logged_amount=logged,
    )
    ctx.tvr.set(terminal_risk_management(inputs, card, atc, last_online))
    ctx.tsi.set(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)
    return None
