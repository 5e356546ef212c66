"""The business layer: orders and journal, reverse-transaction rules and terms, evidence,
customer notices, write-ahead reversal, and the signed outbox with its uploader.

It sits above `firmware.emv` (it adapts the kernel's online callback), `firmware.host`
(messages and the link), `firmware.keys` and `firmware.store`, and below the command
line (`firmware.cli`) and the kiosk screens, which both call the same service.

Modules:
    model       the vocabulary: TxnType, TxnStatus, Evidence, JournalEntry, CashRefund, ArmedReversal
    money       amounts typed by a person to fen and back, no float
    evidence    the evidence of a reverse request, checked and normalised, errors naming the field
    terms       the terms (交易条款) of reverse transactions, loaded from firmware/data/terms.json
    rules       void, refund, cash refund and adjust: a Decision or a RuleViolation with its rule id
    notice      the customer notice: a JSON record without clear card data, its text in zh / en
    documents   those at rest: to and from JSON documents, validated when read
    book        the books: the open batch (one crash-safe file), settlement, lookups across batches
    archive     settled batches: immutable archive files and their indexes
    outbox      armed reversals and signed advices / notices waiting for the host, in send order
"""
