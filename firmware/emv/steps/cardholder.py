"""Cardholder verification step (Book 3 10.5, Book 2 7.1 for the enciphered PIN key).

Walks the card's CVM list through `firmware.emv.cvm` with the card behind a
`TransportCard`. Leaves `ctx.cardholder` (CVM Results 9F34, whether a
signature is due, the online PIN block) and its TVR bits. A refund, or a
card whose AIP does not ask for it, gets CVM Results 3F0000 ('no CVM
performed').
"""

from __future__ import annotations

from firmware.emv.cvm import CvmContext, RsaPublicKey, perform_cardholder_verification
from firmware.emv.kernel_context import AipBit, Ending, KernelContext
from firmware.emv.kernel_outputs import CardholderVerification
from firmware.emv.oda import StaticData, recover_pin_key
from firmware.emv.steps.card import TransportCard
from firmware.emv.transaction import bcd_digits
from firmware.emv.tvr import TsiBit

__all__ = ["pin_key", "verify_cardholder"]

NOT_PERFORMED = bytes.fromhex("3F0000")
UNATTENDED_TERMINAL_TYPES = (4, 5, 6)  # 9F35 second digit, Book 4 Annex A1


def verify_cardholder(ctx: KernelContext) -> Ending | None:
    read, config, txn = ctx.application, ctx.config, ctx.txn
    if ctx.refund or not read.aip[0] & AipBit.CARDHOLDER_VERIFICATION:
        ctx.data.dynamic[0x9F34] = NOT_PERFORMED
        ctx.cardholder = CardholderVerification(NOT_PERFORMED)
        return None
    context = CvmContext(
        capabilities=config.capabilities,
        transaction_type=txn.transaction_type,
        amount=txn.amount,
        amount_other=txn.amount_other,
        unattended=config.terminal_type % 10 in UNATTENDED_TERMINAL_TYPES,
        in_application_currency=ctx.data.card.get(0x9F42) == bcd_digits(config.currency_code, 2),
    )
    outcome = perform_cardholder_verification(
        ctx.data.card.get(0x8E),
        context,
        card=TransportCard(ctx.transport),
        pan=read.pan,
        pin_entry=ctx.services.pin_entry,
        online_pin_block=ctx.services.online_pin_block,
        pin_key=lambda: pin_key(ctx),
        random_bytes=ctx.services.random_bytes,
    )
    ctx.tvr.set(outcome.tvr)
    if outcome.performed:
        ctx.tsi.set(TsiBit.CARDHOLDER_VERIFICATION_PERFORMED)
    ctx.data.dynamic[0x9F34] = outcome.results
    ctx.cardholder = CardholderVerification(
        outcome.results, outcome.signature_required, outcome.online_pin_block
    )
    return None


def pin_key(ctx: KernelContext) -> RsaPublicKey | None:
    """The key to encipher an offline PIN with, reusing the keys offline data authentication recovered."""
    oda = ctx.oda
    static = oda.static if oda is not None and oda.static is not None else StaticData(b"")
    key = recover_pin_key(
        ctx.services.capks,
        ctx.data.card,
        static,
        ctx.txn.now.date(),
        rid=ctx.application.rid,
        known=oda.result if oda is not None else None,
    )
    if key is None:
        return None
    return RsaPublicKey(key.modulus, int.from_bytes(key.exponent, "big"))
