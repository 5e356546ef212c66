"""The business layer: orders and journal, reverse-transaction rules and terms, evidence,
customer notices, write-ahead reversal, and the signed outbox with its uploader.

It sits above `firmware.emv` (it adapts the kernel's online callback), `firmware.host`
(messages and the link), `firmware.keys` and `firmware.store`, and below the command
line (`firmware.cli`) and the kiosk screens, which both call the same service.

Modules:
    model       the vocabulary: TxnType, TxnStatus, Evidence, JournalEntry, CashRefund, ArmedReversal
    documents   those at rest: to and from JSON documents, validated when read
    book        the books: the open batch (one crash-safe file), settlement, lookups across batches
    archive     settled batches: immutable archive files and their indexes
    outbox      armed reversals and signed advices / notices waiting for the host, in send order
"""
