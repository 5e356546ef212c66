"""The receipt printer: slips (firmware.txn.receipts) as ESC/POS bytes, written to the printer's device."""
