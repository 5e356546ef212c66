"""Card risk management: which cryptogram the card answers to a GENERATE AC (pure).

The terminal asks for AAC, TC or ARQC; the card may answer the same or a
"lower" one (TC > ARQC > AAC), never a higher one. The rules come from the
profile's "risk" section.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.profile import RiskRules

__all__ = [
    "AAC",
    "ARC_APPROVED",
    "ARC_UNABLE_ONLINE",
    "ARQC",
    "CID_NAMES",
    "TC",
    "Decision",
    "FirstAcInput",
    "decide_first_ac",
    "decide_second_ac",
]

AAC, TC, ARQC = 0x00, 0x40, 0x80
CID_NAMES = {AAC: "AAC", TC: "TC", ARQC: "ARQC"}
ARC_APPROVED = frozenset({b"00", b"08", b"10", b"11"})
ARC_UNABLE_ONLINE = frozenset({b"Y3", b"Z3"})


@dataclass(frozen=True)
class FirstAcInput:
    requested: int
    tvr: bytes | None  # None: the CDOL does not carry the TVR
    amount: int | None  # minor units (9F02), None when not in the CDOL
    atc: int  # already incremented by this transaction's GET PROCESSING OPTIONS
    last_online_atc: int


@dataclass(frozen=True)
class Decision:
    cid: int
    reason: str


def decide_first_ac(rules: RiskRules, given: FirstAcInput) -> Decision:
    if given.requested == AAC:
        return Decision(AAC, "terminal asked for AAC")
    if given.tvr is not None and any(t & m for t, m in zip(given.tvr, rules.aac_tvr_mask, strict=False)):
        return Decision(AAC, "TVR has a bit the card declines on")
    if given.requested == ARQC:
        return Decision(ARQC, "terminal asked to go online")
    if not rules.offline_allowed:
        return Decision(ARQC, "card never approves offline")
    if rules.arqc_if_tvr_nonzero and given.tvr is not None and any(given.tvr):
        return Decision(ARQC, "TVR is not zero")
    offline_in_a_row = given.atc - given.last_online_atc - 1
    if rules.max_consecutive_offline is not None and offline_in_a_row >= rules.max_consecutive_offline:
        return Decision(ARQC, f"{offline_in_a_row} offline transactions since the last online one")
    if rules.offline_amount_limit is not None and given.amount is not None:
        if given.amount > rules.offline_amount_limit:
            return Decision(ARQC, "amount above the card's offline limit")
    if rules.new_card_online and given.last_online_atc == 0:
        return Decision(ARQC, "new card: first transaction goes online")
    return Decision(TC, "offline approval")


def decide_second_ac(
    rules: RiskRules, requested: int, arc: bytes | None, issuer_auth_attempted: bool
) -> Decision:
    """The card's cap on the second cryptogram.

    Whether the ARPC verified is the cryptogram engine's call (it answers AAC
    when issuer authentication failed); here only whether it was attempted.
    """
    if requested == AAC:
        return Decision(AAC, "terminal asked for AAC")
    if arc is None:
        return Decision(requested, "no authorisation response code in CDOL2")
    if arc in ARC_UNABLE_ONLINE:
        if rules.offline_allowed:
            return Decision(TC, "unable to go online, card approves offline")
        return Decision(AAC, "unable to go online, card never approves offline")
    if arc not in ARC_APPROVED:
        return Decision(AAC, f"issuer declined (ARC {arc.hex().upper()})")
    if rules.issuer_auth_required and not issuer_auth_attempted:
        return Decision(AAC, "issuer approved but issuer authentication was not performed")
    return Decision(TC, "issuer approved")
