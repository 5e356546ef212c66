"""Terminal action analysis (EMV Book 3 10.7) and card action analysis (10.8).

The terminal compares the TVR with the issuer action codes (IAC, from the
card: 9F0E denial, 9F0F online, 9F0D default) and its own terminal action
codes (TAC) to decide which cryptogram to ask for. The card answers with
its own decision in the CID; it may only lower what was asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from firmware.emv.genac import CryptogramType
from firmware.emv.tvr import TVR_LENGTH, action_code_matches
from firmware.errors import CardDataError

__all__ = [
    "ActionCodes",
    "CardDecision",
    "card_action_analysis",
    "default_action_analysis",
    "issuer_action_codes",
    "second_ac_decision",
    "terminal_action_analysis",
]

_ZEROS = bytes(TVR_LENGTH)
_ONES = b"\xff" * TVR_LENGTH


@dataclass(frozen=True)
class ActionCodes:
    denial: bytes
    online: bytes
    default: bytes

    def __post_init__(self) -> None:
        for name in ("denial", "online", "default"):
            if len(getattr(self, name)) != TVR_LENGTH:
                raise ValueError(f"action code '{name}' must be {TVR_LENGTH} bytes")


def issuer_action_codes(card: Mapping[int, bytes]) -> ActionCodes:
    """IACs from the card; absent ones take the Book 3 10.7 defaults (denial 00.., online, default FF..)."""

    def get(tag: int, absent: bytes) -> bytes:
        value = card.get(tag)
        if value is None:
            return absent
        if len(value) != TVR_LENGTH:
            raise CardDataError(f"issuer action code of {len(value)} bytes", tag)
        return value

    return ActionCodes(denial=get(0x9F0E, _ZEROS), online=get(0x9F0F, _ONES), default=get(0x9F0D, _ONES))


def terminal_action_analysis(
    tvr: bytes,
    tac: ActionCodes,
    iac: ActionCodes,
    *,
    online_capable: bool,
    online_only: bool = False,
) -> CryptogramType:
    """The cryptogram to ask for in the first GENERATE AC (Book 3 10.7).

    Denial codes first (any match: AAC); then, on a terminal that can go
    online, the online codes (match: ARQC, else TC; an online-only terminal
    always asks ARQC); on an offline-only terminal the default codes (match:
    AAC, else TC).
    """
    if action_code_matches(tvr, iac.denial) or action_code_matches(tvr, tac.denial):
        return CryptogramType.AAC
    if online_capable:
        if online_only or action_code_matches(tvr, iac.online) or action_code_matches(tvr, tac.online):
            return CryptogramType.ARQC
        return CryptogramType.TC
    return default_action_analysis(tvr, tac, iac)


def default_action_analysis(tvr: bytes, tac: ActionCodes, iac: ActionCodes) -> CryptogramType:
    """Offline-only terminals, and a transaction that could not go online (Book 3 10.7): TC or AAC."""
    if action_code_matches(tvr, iac.default) or action_code_matches(tvr, tac.default):
        return CryptogramType.AAC
    return CryptogramType.TC


class CardDecision(enum.Enum):
    DECLINE = "decline"
    APPROVE = "approve"
    GO_ONLINE = "go online"


# What the card may answer to each request at the first GENERATE AC (Book 3 9.3, Table 13).
_ALLOWED_FIRST: dict[CryptogramType, frozenset[CryptogramType]] = {
    CryptogramType.AAC: frozenset({CryptogramType.AAC}),
    CryptogramType.ARQC: frozenset({CryptogramType.AAC, CryptogramType.ARQC}),
    CryptogramType.TC: frozenset({CryptogramType.AAC, CryptogramType.ARQC, CryptogramType.TC}),
}


def card_action_analysis(requested: CryptogramType, answered: CryptogramType) -> CardDecision:
    """The card's answer to the first GENERATE AC (Book 3 10.8).

    A card that answers a higher cryptogram than requested breaks the
    protocol: CardDataError (the kernel terminates).
    """
    if answered not in _ALLOWED_FIRST[requested]:
        raise CardDataError(f"card answered {answered.name} to a request for {requested.name}", 0x9F27)
    if answered is CryptogramType.AAC:
        return CardDecision.DECLINE
    if answered is CryptogramType.ARQC:
        return CardDecision.GO_ONLINE
    return CardDecision.APPROVE


def second_ac_decision(requested: CryptogramType, answered: CryptogramType) -> CardDecision:
    """The card's answer to the second GENERATE AC: TC approves, AAC declines; ARQC is not allowed."""
    if answered is CryptogramType.ARQC or (requested is CryptogramType.AAC and answered is CryptogramType.TC):
        raise CardDataError(f"card answered {answered.name} to a final request for {requested.name}", 0x9F27)
    return CardDecision.APPROVE if answered is CryptogramType.TC else CardDecision.DECLINE
