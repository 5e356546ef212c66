"""What each step of the kernel leaves in the context: one frozen record per step (Book 3 10).

A step writes its record once, in its own field of `KernelContext`
(firmware.emv.kernel_context); the steps after it read it. None there means
the step has not run (or, for a step that may be skipped, did not apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.emv.action import CardDecision
from firmware.emv.application import ApplicationData
from firmware.emv.genac import CryptogramType, GenerateAcResponse
from firmware.emv.kernel_config import ApplicationParameters
from firmware.emv.oda import OdaMethod, OdaResult, StaticData
from firmware.emv.online import HostDecision, OnlineResponse

__all__ = [
    "ApplicationRead",
    "Authorisation",
    "CardholderVerification",
    "Completion",
    "FirstAc",
    "OfflineAuthentication",
]


@dataclass(frozen=True)
class ApplicationRead:
    """Read step: the application's data, checked, and the terminal's parameters for it."""

    app: ApplicationData
    pan: str
    pan_sequence_number: int | None
    params: ApplicationParameters

    @property
    def aip(self) -> bytes:
        return self.app.options.aip

    @property
    def rid(self) -> bytes:
        return self.app.selected.aid[:5]


@dataclass(frozen=True)
class OfflineAuthentication:
    """Offline data authentication step: the method, its result (None for no method), the static data."""

    method: OdaMethod
    result: OdaResult | None = None
    static: StaticData | None = None


@dataclass(frozen=True)
class CardholderVerification:
    """Cardholder verification step: CVM Results (9F34) and what the caller must do next."""

    results: bytes
    signature_required: bool = False
    online_pin_block: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FirstAc:
    """Terminal action analysis, the first GENERATE AC and card action analysis."""

    requested: CryptogramType
    answer: GenerateAcResponse
    decision: CardDecision


@dataclass(frozen=True)
class Authorisation:
    """Online authorisation step: field 55 as sent, the host's answer (None: unable to go online)."""

    field55: bytes
    response: OnlineResponse | None = None
    decision: HostDecision | None = None
    failure: str = ""  # why the host callback failed, when it did


@dataclass(frozen=True)
class Completion:
    """Second GENERATE AC: what the terminal asked for, the card's answer and what it means."""

    asked: CryptogramType
    answer: GenerateAcResponse
    decision: CardDecision
