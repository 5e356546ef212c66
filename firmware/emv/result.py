"""The one result of an EMV transaction, for the caller, the host message and the logs.

No clear PAN, track data or PIN block ever appears in `to_dict` / `to_json`:
the PAN is masked (first 6, last 4), field 55 holds no PAN or track data,
the online PIN block (already encrypted under the PIK) stays out of both.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from firmware.emv.scripts import ScriptResult, issuer_script_results
from firmware.emv.transaction import TransactionType
from firmware.emv.tvr import Tsi, Tvr

__all__ = ["Outcome", "TransactionResult"]


class Outcome(enum.Enum):
    APPROVED_OFFLINE = "APPROVED_OFFLINE"
    APPROVED_ONLINE = "APPROVED_ONLINE"
    DECLINED_OFFLINE = "DECLINED_OFFLINE"
    DECLINED_ONLINE = "DECLINED_ONLINE"
    # The host approved but the transaction is not completed: the card refused
    # (AAC at the second GENERATE AC, or the card left before it), or the host
    # approved another amount than the one asked (a partial approval, which the
    # terminal does not take; the card is asked for an AAC). The caller must
    # reverse the authorisation.
    HOST_APPROVED_CARD_DECLINED = "HOST_APPROVED_CARD_DECLINED"
    # The card dialogue stopped: card removed, not accepted, malformed data.
    TERMINATED = "TERMINATED"


@dataclass(frozen=True)
class TransactionResult:
    outcome: Outcome
    transaction_type: TransactionType
    amount: int
    amount_other: int
    currency_code: int
    reason: str = ""
    tvr: bytes = bytes(5)
    tsi: bytes = bytes(2)
    cid: int | None = None
    cryptogram: bytes | None = None
    atc: bytes | None = None
    cvm_results: bytes | None = None
    masked_pan: str | None = None
    aid: bytes | None = None
    application_label: str | None = None
    # ICC data for the host message of the final state (TC for batch/advice, AAC for a reversal).
    field55: bytes = b""
    # ICC data as sent in the online authorisation (the ARQC), None if not online.
    authorisation_field55: bytes | None = None
    script_results: tuple[ScriptResult, ...] = ()
    # Authorisation Response Code (8A): the host's, or the terminal's own when it decided without
    # the host (Book 4 Annex A6: Y1/Z1 offline approved/declined, Y3/Z3 unable to go online).
    response_code: str | None = None
    authorisation_code: str | None = None
    # The amount the host said it approved (a partial approval), None when it named none.
    approved_amount: int | None = None
    oda_method: str | None = None
    oda_failure: str | None = None
    signature_required: bool = False
    advice_required: bool = False
    online_pin_block: bytes | None = field(default=None, repr=False)
    trace: tuple[dict[str, object], ...] = field(default=(), repr=False)

    @property
    def approved(self) -> bool:
        return self.outcome in (Outcome.APPROVED_OFFLINE, Outcome.APPROVED_ONLINE)

    @property
    def reversal_required(self) -> bool:
        return self.outcome is Outcome.HOST_APPROVED_CARD_DECLINED

    @property
    def issuer_script_results(self) -> bytes:
        """9F5B, for the advice or the next message to the host."""
        return issuer_script_results(self.script_results)

    @property
    def tvr_bits(self) -> list[str]:
        return Tvr.from_bytes(self.tvr).names()

    @property
    def tsi_bits(self) -> list[str]:
        return Tsi.from_bytes(self.tsi).names()

    def to_dict(self, *, with_trace: bool = True) -> dict[str, object]:
        def hex_or_none(value: bytes | None) -> str | None:
            return value.hex().upper() if value is not None else None

        out: dict[str, object] = {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "transaction_type": f"{int(self.transaction_type):02X}",
            "amount": self.amount,
            "amount_other": self.amount_other,
            "currency_code": self.currency_code,
            "masked_pan": self.masked_pan,
            "aid": hex_or_none(self.aid),
            "application_label": self.application_label,
            "tvr": self.tvr.hex().upper(),
            "tvr_bits": self.tvr_bits,
            "tsi": self.tsi.hex().upper(),
            "tsi_bits": self.tsi_bits,
            "cid": f"{self.cid:02X}" if self.cid is not None else None,
            "cryptogram": hex_or_none(self.cryptogram),
            "atc": hex_or_none(self.atc),
            "cvm_results": hex_or_none(self.cvm_results),
            "signature_required": self.signature_required,
            "advice_required": self.advice_required,
            "oda_method": self.oda_method,
            "oda_failure": self.oda_failure,
            "response_code": self.response_code,
            "authorisation_code": self.authorisation_code,
            "approved_amount": self.approved_amount,
            "online_pin": self.online_pin_block is not None,
            "reversal_required": self.reversal_required,
            "field55": self.field55.hex().upper(),
            "authorisation_field55": hex_or_none(self.authorisation_field55),
            "issuer_script_results": self.issuer_script_results.hex().upper(),
            "scripts": [result.to_dict() for result in self.script_results],
        }
        if with_trace:
            out["trace"] = list(self.trace)
        return out

    def to_json(self, *, with_trace: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(with_trace=with_trace), indent=indent, ensure_ascii=False)
