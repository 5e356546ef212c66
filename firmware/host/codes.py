"""Code tables of the host messages, one enum each (中国银联 POS 终端消息域说明).

`TransactionCode` is field 60.1, the transaction type code. With the
message type and the processing code (field 3) it says what a request is:

| code | transaction | message |
|---|---|---|
| 00 | network management (sign-on, sign-off, echo, settlement, batch upload) | 0800, 0820, 0500, 0320 |
| 01 | balance inquiry | 0200 |
| 10 / 11 | pre-authorisation / its void | 0100 / 0100 |
| 20 / 21 | pre-authorisation completion / its void | 0200 / 0200 |
| 22 / 23 | sale / its void | 0200 / 0200 |
| 25 | refund | 0220 |
| 30, 32, 34 | adjusts (offline); 32 is this product's tip adjust | 0220 |

The values are the two digits on the wire.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TransactionCode"]


class TransactionCode(StrEnum):
    """Field 60.1, the transaction type code."""

    MANAGEMENT = "00"
    BALANCE_INQUIRY = "01"
    PREAUTH = "10"
    PREAUTH_VOID = "11"
    COMPLETION = "20"  # pre-authorisation completion
    COMPLETION_VOID = "21"
    SALE = "22"
    VOID = "23"  # of a sale
    REFUND = "25"
    OFFLINE_SETTLEMENT = "30"
    TIP_ADJUST = "32"
    ADJUST_ADDED_TIP = "34"
