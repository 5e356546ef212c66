"""The business layer: orders and journal, reverse-transaction rules and terms, evidence,
customer notices, write-ahead reversal, and the signed outbox with its uploader.

It sits above `firmware.emv` (it adapts the kernel's online callback), `firmware.host`
(messages and the link), `firmware.keys` and `firmware.store`, and below the command
line (`firmware.cli`) and the kiosk screens, which both call the same service.

Modules:
    model       the vocabulary: TxnType, TxnStatus, Evidence, JournalEntry, CashRefund
"""
