"""Application selection (EMV Book 1 12): candidate list, then final selection.

The candidate list comes from the PSE directory ('1PAY.SYS.DDF01') when the
card has one, else from the terminal's list of AIDs, each selected in turn
with partial matching and 'next occurrence' as the Application Selection
Indicator allows. Candidates are ordered by their Application Priority
Indicator ('87'). Final selection picks one (asking the cardholder through
an injected callback when the rules say so), SELECTs it and parses its FCI.

`ApplicationSelector` keeps the candidate list so that a later step may
remove an application and select again (GET PROCESSING OPTIONS answered
'6985', Book 3 10.1).

An application is supported by the terminal when its AID list names it and
the terminal can process it (`processable`: the kernel holds its parameters).
One the terminal cannot process never becomes a candidate, so it is neither
offered to the cardholder nor selected: selection goes on with the others
before any GET PROCESSING OPTIONS (Book 1 12.3.1, 12.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from firmware.emv import tlv
from firmware.emv.apdu import read_record, select_by_name
from firmware.emv.application_list import ApplicationList
from firmware.emv.transport import Transport
from firmware.errors import CardDataError, SelectionError, TlvError

__all__ = [
    "PSE_NAME",
    "ApplicationSelector",
    "Candidate",
    "Chooser",
    "DirectoryEntry",
    "Fci",
    "Processable",
    "SelectedApplication",
    "order_candidates",
    "parse_directory_record",
    "parse_fci",
]

PSE_NAME = b"1PAY.SYS.DDF01"

SW_OK = 0x9000
SW_BLOCKED = 0x6283
SW_CARD_BLOCKED = 0x6A81
SW_RECORD_NOT_FOUND = 0x6A83

# Bounds that keep a misbehaving card from looping the terminal.
MAX_DIRECTORY_RECORDS = 32
MAX_OCCURRENCES = 16


def _text(value: bytes) -> str:
    return value.decode("latin-1").strip()


def _bcd_int(value: bytes) -> int | None:
    digits = value.hex()
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class Fci:
    """The File Control Information returned by SELECT (Book 1 Tables 43, 45)."""

    df_name: bytes
    label: str | None = None
    priority: int | None = None
    pdol: bytes | None = None
    language_preference: str | None = None
    issuer_code_table_index: int | None = None
    preferred_name: str | None = None
    sfi: int | None = None
    issuer_discretionary_data: bytes | None = None
    # Every primitive object of the FCI (84, and those of A5 and BF0C) by tag.
    data: Mapping[int, bytes] = field(default_factory=dict)
    raw: bytes = b""


def parse_fci(data: bytes) -> Fci:
    """Parse a '6F' FCI template; TlvError or CardDataError when malformed."""
    template = tlv.parse_one(data, 0x6F)
    children = template.children()
    found: dict[int, bytes] = {}
    proprietary: tlv.Tlv | None = None
    for obj in children:
        if obj.tag == 0xA5 and proprietary is None:
            proprietary = obj
        elif not obj.constructed:
            found.setdefault(obj.tag, obj.value)
    if 0x84 not in found:
        raise CardDataError("FCI without a DF name", 0x84)
    if proprietary is None:
        raise CardDataError("FCI without a proprietary template", 0xA5)
    discretionary: bytes | None = None
    for obj in proprietary.children():
        if obj.tag == 0xBF0C:
            discretionary = obj.value
            for inner in obj.children():
                if not inner.constructed:
                    found.setdefault(inner.tag, inner.value)
        elif not obj.constructed:
            found.setdefault(obj.tag, obj.value)
    df_name = found[0x84]
    if not 1 <= len(df_name) <= 16:
        raise CardDataError(f"DF name of {len(df_name)} bytes", 0x84)
    priority = found.get(0x87)
    sfi = found.get(0x88)
    index = found.get(0x9F11)
    return Fci(
        df_name=df_name,
        label=_text(found[0x50]) if 0x50 in found else None,
        priority=priority[0] if priority is not None and len(priority) == 1 else None,
        pdol=found.get(0x9F38),
        language_preference=_text(found[0x5F2D]) if 0x5F2D in found else None,
        issuer_code_table_index=_bcd_int(index) if index is not None else None,
        preferred_name=_text(found[0x9F12]) if 0x9F12 in found else None,
        sfi=sfi[0] if sfi is not None and len(sfi) == 1 else None,
        issuer_discretionary_data=discretionary,
        data=found,
        raw=bytes(data),
    )


@dataclass(frozen=True)
class DirectoryEntry:
    """One '61' entry of a PSE directory record (Book 1 Table 47)."""

    adf_name: bytes
    label: str | None = None
    preferred_name: str | None = None
    priority: int | None = None


def parse_directory_record(data: bytes) -> list[DirectoryEntry]:
    """The ADF entries of a directory record ('70' holding '61' templates).

    Entries without a valid ADF name (DDF entries, '9D') are left out.
    """
    record = tlv.parse_one(data, 0x70)
    entries: list[DirectoryEntry] = []
    for obj in record.children():
        if obj.tag != 0x61:
            continue
        values = {child.tag: child.value for child in obj.children() if not child.constructed}
        adf_name = values.get(0x4F)
        if adf_name is None or not 5 <= len(adf_name) <= 16:
            continue
        priority = values.get(0x87)
        entries.append(
            DirectoryEntry(
                adf_name=adf_name,
                label=_text(values[0x50]) if 0x50 in values else None,
                preferred_name=_text(values[0x9F12]) if 0x9F12 in values else None,
                priority=priority[0] if priority is not None and len(priority) == 1 else None,
            )
        )
    return entries


@dataclass(frozen=True)
class Candidate:
    """An application both the card and the terminal support."""

    aid: bytes
    label: str | None = None
    preferred_name: str | None = None
    priority: int | None = None
    source: str = "aid-list"  # "pse" or "aid-list"

    @property
    def needs_confirmation(self) -> bool:
        """'87' bit 8: the application may not be selected without the cardholder's consent."""
        return self.priority is not None and bool(self.priority & 0x80)

    @property
    def rank(self) -> int:
        """1 is the highest priority; no priority ('87' absent or bits 4-1 zero) ranks last."""
        level = (self.priority or 0) & 0x0F
        return level if level else 16

    @property
    def display_name(self) -> str:
        return self.label or self.preferred_name or self.aid.hex().upper()


@dataclass(frozen=True)
class SelectedApplication:
    """The outcome of final selection: the application and its FCI."""

    candidate: Candidate
    fci: Fci
    sw: int

    @property
    def aid(self) -> bytes:
        return self.fci.df_name

    @property
    def label(self) -> str:
        return self.fci.label or self.candidate.display_name

    @property
    def pdol(self) -> bytes | None:
        return self.fci.pdol


# Shown the ordered candidates, returns the one the cardholder picked or
# confirmed, or None when the cardholder cancels.
Chooser = Callable[[Sequence[Candidate]], Candidate | None]

# Whether the terminal can process the application of this AID (ADF name).
Processable = Callable[[bytes], bool]


def order_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """By priority (Book 1 12.4); equal priorities keep the order they were found in."""
    return sorted(candidates, key=lambda candidate: candidate.rank)


class ApplicationSelector:
    """Builds the candidate list and performs final selection on one card."""

    def __init__(
        self,
        transport: Transport,
        config: ApplicationList,
        *,
        choose: Chooser | None = None,
        processable: Processable | None = None,
    ) -> None:
        self._transport = transport
        self._config = config
        self._chooser = choose
        self._processable = processable
        self._candidates: list[Candidate] | None = None
        self.method: str | None = None
        self.notes: list[str] = []

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """The remaining candidates in priority order (built on first use)."""
        if self._candidates is None:
            self.build_candidates()
        return tuple(order_candidates(self._candidates or []))

    def build_candidates(self) -> tuple[Candidate, ...]:
        found: list[Candidate] | None = None
        if self._config.use_pse:
            found = self._candidates_from_pse()
            if found:
                self.method = "pse"
        if not found:
            found = self._candidates_from_aid_list()
            self.method = "aid-list"
        unique: dict[bytes, Candidate] = {}
        for candidate in found:
            unique.setdefault(candidate.aid, candidate)
        self._candidates = list(unique.values())
        return self.candidates

    def remove(self, candidate: Candidate) -> None:
        if self._candidates is not None:
            self._candidates = [kept for kept in self._candidates if kept.aid != candidate.aid]

    def select(self) -> SelectedApplication:
        """Final selection (Book 1 12.4); SelectionError when no application is left."""
        if self._candidates is None:
            self.build_candidates()
        for _ in range(len(self._candidates or []) + 1):
            chosen = self._choose()
            response = self._transport.exchange(select_by_name(chosen.aid))
            if response.sw == SW_CARD_BLOCKED:
                raise SelectionError("card blocked or SELECT not supported (SW 6A81)")
            if response.ok:
                try:
                    fci = parse_fci(response.data)
                except (TlvError, CardDataError) as exc:
                    self.notes.append(f"{chosen.aid.hex().upper()}: FCI rejected ({exc})")
                else:
                    if fci.df_name == chosen.aid:
                        return SelectedApplication(chosen, fci, response.sw)
                    self.notes.append(f"{chosen.aid.hex().upper()}: FCI names another DF")
            else:
                self.notes.append(f"{chosen.aid.hex().upper()}: final SELECT answered {response.sw:04X}")
            self.remove(chosen)
        raise SelectionError("no application left to select")

    # --- internals ------------------------------------------------------------

    def _choose(self) -> Candidate:
        ordered = list(self.candidates)
        if not ordered:
            raise SelectionError("no application supported by both the card and the terminal")
        if self._chooser is None:
            # Without a cardholder dialogue, an application that asks for
            # confirmation is excluded (Book 1 12.4).
            eligible = [candidate for candidate in ordered if not candidate.needs_confirmation]
            if not eligible:
                raise SelectionError("every supported application needs cardholder confirmation")
            return eligible[0]
        if len(ordered) == 1 and not ordered[0].needs_confirmation:
            return ordered[0]
        picked = self._chooser(tuple(ordered))
        if picked is None:
            raise SelectionError("the cardholder did not confirm an application")
        if all(picked.aid != candidate.aid for candidate in ordered):
            raise SelectionError("the chosen application is not a candidate")
        return picked

    def _candidates_from_pse(self) -> list[Candidate] | None:
        """Book 1 12.3.2; None when the terminal must fall back to its list of AIDs."""
        response = self._transport.exchange(select_by_name(PSE_NAME))
        if response.sw == SW_CARD_BLOCKED:
            raise SelectionError("card blocked or SELECT not supported (SW 6A81)")
        if not response.ok:
            reason = {0x6A82: "no PSE", SW_BLOCKED: "PSE blocked"}.get(response.sw, f"SW {response.sw:04X}")
            self.notes.append(f"PSE not used: {reason}")
            return None
        try:
            fci = parse_fci(response.data)
        except (TlvError, CardDataError) as exc:
            self.notes.append(f"PSE not used: FCI rejected ({exc})")
            return None
        if fci.sfi is None or not 1 <= fci.sfi <= 10:
            self.notes.append("PSE not used: no directory SFI (1-10) in its FCI")
            return None
        candidates: list[Candidate] = []
        for number in range(1, MAX_DIRECTORY_RECORDS + 1):
            record = self._transport.exchange(read_record(fci.sfi, number))
            if record.sw == SW_RECORD_NOT_FOUND:
                break
            if not record.ok:
                self.notes.append(f"PSE record {number}: SW {record.sw:04X}, ignored")
                continue
            try:
                entries = parse_directory_record(record.data)
            except (TlvError, CardDataError) as exc:
                self.notes.append(f"PSE record {number}: ignored ({exc})")
                continue
            for entry in entries:
                listed = self._config.aid_entry_for(entry.adf_name) is not None
                if listed and self._can_process(entry.adf_name):
                    candidates.append(
                        Candidate(entry.adf_name, entry.label, entry.preferred_name, entry.priority, "pse")
                    )
        if not candidates:
            self.notes.append("PSE lists no application the terminal supports")
            return None
        return candidates

    def _candidates_from_aid_list(self) -> list[Candidate]:
        """Book 1 12.3.3: SELECT each terminal AID, following partial matches."""
        candidates: list[Candidate] = []
        for entry in self._config.aids:
            seen: set[bytes] = set()
            next_occurrence = False
            for _ in range(MAX_OCCURRENCES):
                response = self._transport.exchange(
                    select_by_name(entry.aid, next_occurrence=next_occurrence)
                )
                if response.sw == SW_CARD_BLOCKED and not next_occurrence:
                    raise SelectionError("card blocked or SELECT not supported (SW 6A81)")
                if response.sw not in (SW_OK, SW_BLOCKED):
                    break
                try:
                    fci = parse_fci(response.data)
                except (TlvError, CardDataError) as exc:
                    self.notes.append(f"{entry.aid.hex().upper()}: FCI rejected ({exc})")
                    break
                if fci.df_name in seen or not fci.df_name.startswith(entry.aid):
                    break
                seen.add(fci.df_name)
                if fci.df_name == entry.aid:
                    if response.ok and self._can_process(fci.df_name):
                        candidates.append(self._candidate_from_fci(fci))
                    break
                # A longer DF name: a partial match, kept only when the ASI
                # allows it; either way the next occurrence is asked for.
                if entry.partial_match and response.ok and self._can_process(fci.df_name):
                    candidates.append(self._candidate_from_fci(fci))
                next_occurrence = True
        return candidates

    def _can_process(self, aid: bytes) -> bool:
        if self._processable is None or self._processable(aid):
            return True
        self.notes.append(f"{aid.hex().upper()}: left out, no kernel parameters to process it")
        return False

    @staticmethod
    def _candidate_from_fci(fci: Fci) -> Candidate:
        return Candidate(fci.df_name, fci.label, fci.preferred_name, fci.priority, "aid-list")
