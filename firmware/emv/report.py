"""The technician's card read: which application, with what data, and the report of it.

A technician reads a card without a sale: `transaction_data_for_read` gives
the PDOL the zero amounts, today and an unpredictable number;
`technician_chooser` stands in for the cardholder when the card offers
several applications (EMV Book 1 12.4); `read_for_technician` reads the
application and checks it is the one the technician named; `read_report`
turns what was read into plain data (a JSON-ready dict) where every card
value is masked where sensitive (`firmware.emv.mask`).

Plain data in, plain data out: nothing here parses a command line or
writes anywhere. Errors are the project's own: a card that does not offer
the named application is a `SelectionError`; what the card or reader gets
wrong comes up unchanged from `read_application`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from firmware.emv.application import ApplicationData, read_application
from firmware.emv.application_list import ApplicationList
from firmware.emv.mask import display_tags
from firmware.emv.selection import Candidate, Chooser
from firmware.emv.transport import Transport
from firmware.errors import SelectionError

__all__ = [
    "expiry_text",
    "read_for_technician",
    "read_report",
    "technician_chooser",
    "transaction_data_for_read",
]


def transaction_data_for_read(now: datetime, random_bytes: Callable[[int], bytes]) -> dict[int, bytes]:
    """PDOL data for a read without a sale: zero amounts, goods and services, today."""
    return {
        0x9F02: bytes(6),
        0x9F03: bytes(6),
        0x9C: b"\x00",
        0x9A: bytes.fromhex(now.strftime("%y%m%d")),
        0x9F21: bytes.fromhex(now.strftime("%H%M%S")),
        0x9F37: random_bytes(4),
    }


def expiry_text(value: bytes | None) -> str | None:
    """'5F24' (YYMMDD) as YYYY-MM; years 50-99 are 19xx (Book 4 Annex A)."""
    if value is None or len(value) != 3 or not value.hex().isdigit():
        return None
    digits = value.hex()
    year = int(digits[:2])
    return f"{1900 + year if year >= 50 else 2000 + year}-{digits[2:4]}"


def technician_chooser(aid: bytes | None) -> Chooser:
    """The technician stands in for the cardholder: the application `aid` names
    (an AID or its beginning), or without one the first offered (highest priority)."""

    def choose(candidates: Sequence[Candidate]) -> Candidate | None:
        if aid is None:
            return candidates[0]
        return next((candidate for candidate in candidates if candidate.aid.startswith(aid)), None)

    return choose


def read_for_technician(
    transport: Transport,
    config: ApplicationList,
    terminal_data: Mapping[int, bytes],
    *,
    now: datetime,
    random_bytes: Callable[[int], bytes],
    aid: bytes | None = None,
) -> ApplicationData:
    """Read the application `aid` names (or the highest priority one) of the powered card.

    `terminal_data` holds the terminal's own data objects (kernel configuration)
    for the PDOL. Raises SelectionError when the card does not offer `aid`.
    """
    data = read_application(
        transport,
        config,
        transaction_data={**terminal_data, **transaction_data_for_read(now, random_bytes)},
        choose=technician_chooser(aid),
    )
    if aid is not None and not data.selected.aid.startswith(aid):
        # A single candidate is selected without asking (Book 1 12.4): check it is the one named.
        raise SelectionError(f"the card offers no application {aid.hex().upper()}")
    return data


def read_report(transport: Transport, data: ApplicationData) -> dict[str, object]:
    """The read as plain data: reader, ATR, selection, application, records and
    the APDU trace; every card value in it is masked where sensitive."""
    fci = data.selected.fci
    records: list[dict[str, object]] = [
        {
            "sfi": record.sfi,
            "record": record.number,
            "oda": record.for_oda,
            "tags": display_tags(record.tags) if record.tags else {},
            **({} if record.tags else {"length": len(record.data)}),
        }
        for record in data.records.records
    ]
    application: Mapping[str, object] = {
        "aid": data.selected.aid.hex().upper(),
        "label": data.selected.label,
        "preferred_name": fci.preferred_name,
        "priority": f"{fci.priority:02X}" if fci.priority is not None else None,
        "language": fci.language_preference,
        "pdol": fci.pdol.hex().upper() if fci.pdol is not None else None,
    }
    return {
        "reader": transport.reader_name,
        "atr": (transport.atr or b"").hex().upper(),
        "selection": {
            "method": data.selection_method,
            "candidates": [
                {"aid": candidate.aid.hex().upper(), "label": candidate.display_name}
                for candidate in data.candidates
            ],
            "notes": list(data.selection_notes),
        },
        "application": dict(application),
        "pan": data.masked_pan,
        "expiry": expiry_text(data.records.tags.get(0x5F24)),
        "aip": data.options.aip.hex().upper(),
        "afl": data.options.afl.hex().upper(),
        "gpo_format": f"{data.options.response_format:02X}",
        "missing_mandatory": [f"{tag:X}" for tag in data.records.missing_mandatory],
        "oda_record_invalid": data.records.oda_record_invalid,
        "records": records,
        "trace": transport.display_trace(),
    }
