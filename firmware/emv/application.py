"""Initiate application processing and read application data (EMV Book 3 10.1, 10.2).

GET PROCESSING OPTIONS sends the PDOL values in the '83' template and gets
the AIP and the AFL back (format 1 '80' or format 2 '77'). READ RECORD then
follows the AFL. Records are kept twice: as the bytes offline data
authentication signs (Book 3 10.3: the value of '70' for SFI 1-10, the
whole record for SFI 11-30) and as one merged tag dictionary.

`read_application` runs selection, GPO and reading together, going back to
selection when the card answers GPO with '6985' (Book 3 10.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from firmware.emv import tags, tlv
from firmware.emv.apdu import get_processing_options as gpo_command
from firmware.emv.apdu import read_record
from firmware.emv.application_list import ApplicationList
from firmware.emv.carddata import pan_digits
from firmware.emv.mask import mask_pan
from firmware.emv.selection import ApplicationSelector, Candidate, Chooser, Processable, SelectedApplication
from firmware.emv.transport import Transport
from firmware.errors import CardDataError, SelectionError, StatusWordError, TlvError

__all__ = [
    "MANDATORY_TAGS",
    "AflEntry",
    "ApplicationData",
    "ApplicationRecords",
    "ProcessingOptions",
    "Record",
    "build_pdol_data",
    "get_processing_options",
    "parse_afl",
    "parse_processing_options",
    "parse_record",
    "read_application",
    "read_records",
]

# Book 3 7.2: data objects every EMV application must provide.
MANDATORY_TAGS: tuple[int, ...] = (0x5F24, 0x5A, 0x8C, 0x8D)

SW_CONDITIONS_NOT_SATISFIED = 0x6985


@dataclass(frozen=True)
class AflEntry:
    """One 4-byte AFL entry: records `first_record`..`last_record` of file `sfi`,
    the first `oda_records` of which take part in offline data authentication."""

    sfi: int
    first_record: int
    last_record: int
    oda_records: int

    @property
    def record_numbers(self) -> range:
        return range(self.first_record, self.last_record + 1)

    def for_oda(self, number: int) -> bool:
        return self.first_record <= number < self.first_record + self.oda_records


def parse_afl(afl: bytes) -> tuple[AflEntry, ...]:
    """Book 3 10.2: CardDataError for an AFL the terminal must refuse."""
    if len(afl) % 4:
        raise CardDataError(f"AFL of {len(afl)} bytes is not a list of 4-byte entries", 0x94)
    entries: list[AflEntry] = []
    for offset in range(0, len(afl), 4):
        sfi, first, last, oda = afl[offset] >> 3, afl[offset + 1], afl[offset + 2], afl[offset + 3]
        where = f"AFL entry {offset // 4 + 1} ({afl[offset : offset + 4].hex().upper()})"
        if not 1 <= sfi <= 30:
            raise CardDataError(f"{where}: SFI {sfi} out of range 1-30", 0x94)
        if first == 0:
            raise CardDataError(f"{where}: first record is 0", 0x94)
        if last < first:
            raise CardDataError(f"{where}: last record {last} before first record {first}", 0x94)
        if oda > last - first + 1:
            raise CardDataError(f"{where}: {oda} records for ODA out of {last - first + 1}", 0x94)
        entries.append(AflEntry(sfi, first, last, oda))
    return tuple(entries)


@dataclass(frozen=True)
class ProcessingOptions:
    """The card's answer to GET PROCESSING OPTIONS."""

    aip: bytes
    afl: bytes
    entries: tuple[AflEntry, ...]
    response_format: int  # 0x80 (format 1) or 0x77 (format 2)
    # Every data object of the response by tag (format 1: just 82 and 94).
    data: Mapping[int, bytes] = field(default_factory=dict)
    # The PDOL values sent, without the '83' tag and length.
    pdol_data: bytes = b""


def build_pdol_data(pdol: bytes | None, source: Mapping[int, bytes]) -> bytes:
    """The values a PDOL asks for, from `source` (terminal and transaction data), Book 3 5.4."""
    if not pdol:
        return b""
    return tlv.build_dol(tlv.parse_dol(pdol), source, tags.format_of)


def parse_processing_options(data: bytes, pdol_data: bytes = b"") -> ProcessingOptions:
    """Parse a GPO response (Book 3 6.5.8.4); CardDataError or TlvError when malformed."""
    template = tlv.parse_one(data)
    values: dict[int, bytes] = {}
    if template.tag == 0x80:
        if len(template.value) < 2:
            raise CardDataError("format 1 response shorter than an AIP", 0x80)
        values = {0x82: template.value[:2], 0x94: template.value[2:]}
    elif template.tag == 0x77:
        for obj in template.children():
            if obj.tag in values:
                raise CardDataError("format 2 response repeats a data object", obj.tag)
            values[obj.tag] = obj.value
        for required in (0x82, 0x94):
            if required not in values:
                raise CardDataError("format 2 response without a mandatory data object", required)
    else:
        raise CardDataError("GPO response is neither format 1 ('80') nor format 2 ('77')", template.tag)
    aip, afl = values[0x82], values[0x94]
    if len(aip) != 2:
        raise CardDataError(f"AIP of {len(aip)} bytes", 0x82)
    return ProcessingOptions(aip, afl, parse_afl(afl), template.tag, values, pdol_data)


def get_processing_options(
    transport: Transport, pdol: bytes | None, source: Mapping[int, bytes]
) -> ProcessingOptions | None:
    """Send GPO with the PDOL filled from `source`; None when the card answers '6985'
    (conditions of use not satisfied: the application must be dropped)."""
    pdol_data = build_pdol_data(pdol, source)
    command = gpo_command(pdol_data)
    response = transport.exchange(command)
    if response.sw == SW_CONDITIONS_NOT_SATISFIED:
        return None
    if not response.ok:
        raise StatusWordError(command.name, response.sw, response.describe())
    return parse_processing_options(response.data, pdol_data)


@dataclass(frozen=True)
class Record:
    """One record read along the AFL."""

    sfi: int
    number: int
    data: bytes  # the response data, the whole record
    for_oda: bool
    # Objects of the '70' template by tag; empty for an SFI 11-30 record that is not a '70' template.
    tags: Mapping[int, bytes] = field(default_factory=dict)
    template_value: bytes | None = None  # the value of '70' when the record is one

    @property
    def oda_input(self) -> bytes:
        """What this record adds to the static data to authenticate (Book 3 10.3)."""
        if self.sfi <= 10 and self.template_value is not None:
            return self.template_value
        return self.data


def _record_template(data: bytes) -> tlv.Tlv:
    return tlv.parse_one(data, 0x70)


def parse_record(sfi: int, number: int, data: bytes, *, for_oda: bool = False) -> Record:
    """Parse one record; SFI 1-10 must hold exactly one '70' template (Book 3 6.5.11.4)."""
    where = f"SFI {sfi} record {number}"
    try:
        template = _record_template(data)
    except TlvError as exc:
        if sfi <= 10:
            raise CardDataError(f"{where}: not a '70' record template: {exc}", 0x70) from exc
        return Record(sfi, number, bytes(data), for_oda)
    objects: dict[int, bytes] = {}
    try:
        children = template.children()
    except TlvError as exc:
        raise CardDataError(f"{where}: malformed record template: {exc}", 0x70) from exc
    for obj in children:
        if obj.tag in objects:
            raise CardDataError(f"{where}: data object repeated", obj.tag)
        objects[obj.tag] = obj.value
    return Record(sfi, number, bytes(data), for_oda, objects, template.value)


@dataclass(frozen=True)
class ApplicationRecords:
    """The records of the AFL, merged."""

    records: tuple[Record, ...]
    tags: Mapping[int, bytes]
    # Concatenated ODA input of the records the AFL marks for ODA, in AFL order.
    oda_data: bytes
    # An SFI 11-30 record marked for ODA is not a '70' template: ODA is to be
    # taken as performed and failed (Book 3 10.3); reading goes on.
    oda_record_invalid: bool
    # Mandatory data objects (MANDATORY_TAGS) the records did not provide.
    missing_mandatory: tuple[int, ...]


def read_records(transport: Transport, entries: Sequence[AflEntry]) -> ApplicationRecords:
    """READ RECORD along the AFL; any status other than 9000 ends the transaction (Book 3 10.2)."""
    records: list[Record] = []
    merged: dict[int, bytes] = {}
    oda = bytearray()
    oda_invalid = False
    for entry in entries:
        for number in entry.record_numbers:
            response = transport.send(read_record(entry.sfi, number))
            record = parse_record(entry.sfi, number, response.data, for_oda=entry.for_oda(number))
            for tag, value in record.tags.items():
                if tag in merged:
                    raise CardDataError(f"SFI {entry.sfi} record {number}: data object already read", tag)
                merged[tag] = value
            if record.for_oda:
                if record.template_value is None:
                    oda_invalid = True
                oda += record.oda_input
            records.append(record)
    missing = tuple(tag for tag in MANDATORY_TAGS if tag not in merged)
    return ApplicationRecords(tuple(records), merged, bytes(oda), oda_invalid, missing)


@dataclass(frozen=True)
class ApplicationData:
    """Everything read from the card up to (not including) GENERATE AC."""

    selected: SelectedApplication
    options: ProcessingOptions
    records: ApplicationRecords
    selection_method: str = ""
    selection_notes: tuple[str, ...] = ()
    # The candidate list as first built, in priority order.
    candidates: tuple[Candidate, ...] = ()

    @property
    def icc_data(self) -> dict[int, bytes]:
        """Card data by tag: the FCI, the GPO response, then the records."""
        merged: dict[int, bytes] = dict(self.selected.fci.data)
        merged.update(self.options.data)
        merged.update(self.records.tags)
        return merged

    @property
    def pan(self) -> str | None:
        """The clear PAN digits; only for the kernel's use in memory. Display `masked_pan`.

        None when 5A is absent or is not a PAN (`carddata.pan_digits` says why).
        """
        value = self.records.tags.get(0x5A)
        if value is None:
            return None
        try:
            return pan_digits(value)
        except CardDataError:
            return None

    @property
    def masked_pan(self) -> str | None:
        pan = self.pan
        return mask_pan(pan) if pan is not None else None

    @property
    def expiry(self) -> str | None:
        """Application Expiration Date '5F24' as YYMMDD digits."""
        value = self.records.tags.get(0x5F24)
        return value.hex() if value is not None else None


def read_application(
    transport: Transport,
    config: ApplicationList,
    *,
    transaction_data: Mapping[int, bytes] | None = None,
    choose: Chooser | None = None,
    processable: Processable | None = None,
) -> ApplicationData:
    """Select an application, GET PROCESSING OPTIONS, read its records.

    `transaction_data` holds every data object a PDOL may name: the
    terminal's own (9F33, 9F1A, 5F2A... from the kernel configuration) and
    the transaction's (amount 9F02, date 9A, type 9C, unpredictable number
    9F37...). `processable` says whether the terminal can process an
    application (the kernel holds its parameters): one it cannot is never a
    candidate. The card must already be powered on.
    """
    selector = ApplicationSelector(transport, config, choose=choose, processable=processable)
    source = dict(transaction_data or {})
    candidates = selector.build_candidates()
    for _ in range(len(candidates) + 1):
        selected = selector.select()
        options = get_processing_options(transport, selected.pdol, source)
        if options is None:
            selector.notes.append(f"{selected.aid.hex().upper()}: GPO answered 6985, application dropped")
            selector.remove(selected.candidate)
            continue
        records = read_records(transport, options.entries)
        return ApplicationData(
            selected, options, records, selector.method or "", tuple(selector.notes), candidates
        )
    raise SelectionError("no application accepted GET PROCESSING OPTIONS")
