"""DUKPT: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3:2017), one import point.

The algorithms live in `dukpt_tdes` and `dukpt_aes`; the originating-device
register machinery they share in `dukpt_registers`.
"""

from __future__ import annotations

from firmware.keys import dukpt_aes as aes
from firmware.keys import dukpt_tdes as tdes
from firmware.keys.dukpt_aes import AesDukptTerminal, AesTransactionKeys, KeyType, KeyUsage
from firmware.keys.dukpt_tdes import TdesDukptTerminal, TdesTransactionKeys

__all__ = [
    "AesDukptTerminal",
    "AesTransactionKeys",
    "KeyType",
    "KeyUsage",
    "TdesDukptTerminal",
    "TdesTransactionKeys",
    "aes",
    "tdes",
]
