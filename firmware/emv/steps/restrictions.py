"""Processing restrictions step: versions, Application Usage Control, dates (Book 3 10.4).

Only TVR bits: what the card's data restricts is for action analysis to weigh.
"""

from __future__ import annotations

from firmware.emv.kernel_context import Ending, KernelContext
from firmware.emv.restrictions import RestrictionContext, check_processing_restrictions
from firmware.emv.transaction import bcd_digits

__all__ = ["check_restrictions"]


def check_restrictions(ctx: KernelContext) -> Ending | None:
    config, txn = ctx.config, ctx.txn
    context = RestrictionContext(
        terminal_version=ctx.application.params.version,
        terminal_country=bcd_digits(config.country_code, 2),
        terminal_is_atm=config.is_atm,
        transaction_type=txn.transaction_type,
        service=txn.service,
        amount_other=txn.amount_other,
        today=txn.now.date(),
    )
    ctx.tvr.set(check_processing_restrictions(ctx.data.card, context))
    return None
