"""The applications the terminal supports: its AID list, with each AID's kernel parameters.

One file, `firmware/data/applications.json`, lists each AID once with what
application selection needs (label, partial-match flag: EMV Book 1 12.3.1)
and what the kernel needs for it (application version 9F09, terminal action
codes, floor limit, random selection, velocity checking, default TDOL and
DDOL: Book 3 10.6, 10.7; Book 4 Annex A). Application selection reads the
`ApplicationList`; the kernel reads the parameters through
`firmware.emv.kernel_config.KernelConfig.applications`, built from the same list.

    applications = load_application_list()       # the shipped file; or (path)

A missing or wrong value raises ConfigError naming the file and the key,
e.g. "applications.json: applications[3].floor_limit: must be an integer";
an unknown key is refused, so a typo shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.config import Section, read_config
from firmware.errors import ConfigError

__all__ = [
    "APPLICATIONS_FILE",
    "AidEntry",
    "ApplicationList",
    "ApplicationParameters",
    "application_list_from_section",
    "load_application_list",
]

APPLICATIONS_FILE: Final = "applications.json"
_DEFAULT_DDOL: Final = bytes.fromhex("9F3704")


@dataclass(frozen=True)
class ApplicationParameters:
    """Terminal parameters of one AID (partial selection: the terminal AID is a prefix of the card's)."""

    aid: bytes
    version: bytes
    tac_denial: bytes
    tac_online: bytes
    tac_default: bytes
    floor_limit: int
    random_selection_threshold: int
    random_target_percent: int
    random_max_target_percent: int
    velocity_checking: bool = True
    default_tdol: bytes = b""
    default_ddol: bytes = _DEFAULT_DDOL


@dataclass(frozen=True)
class AidEntry:
    """One application the terminal supports (Book 1 12.3.1), and its kernel parameters when it has them."""

    aid: bytes
    label: str = ""
    # Application Selection Indicator: may a card AID that only begins with
    # this one (a longer DF name) match it?
    partial_match: bool = True
    parameters: ApplicationParameters | None = None

    def __post_init__(self) -> None:
        if not 5 <= len(self.aid) <= 16:
            raise ConfigError(f"AID {self.aid.hex().upper()} is {len(self.aid)} bytes (5 to 16)")
        if self.parameters is not None and self.parameters.aid != self.aid:
            raise ConfigError(f"AID {self.aid.hex().upper()}: its parameters are another AID's")

    def matches(self, df_name: bytes) -> bool:
        """Book 1 12.3.1: exact match, or a partial one when the ASI allows it."""
        if df_name == self.aid:
            return True
        return self.partial_match and len(df_name) > len(self.aid) and df_name.startswith(self.aid)


@dataclass(frozen=True)
class ApplicationList:
    """What the terminal brings to application selection and initiation."""

    aids: tuple[AidEntry, ...]
    # Select the PSE ('1PAY.SYS.DDF01') before trying the list of AIDs.
    use_pse: bool = True

    def __post_init__(self) -> None:
        if not self.aids:
            raise ConfigError("the application list has no AID")

    def aid_entry_for(self, df_name: bytes) -> AidEntry | None:
        """The first configured AID that `df_name` matches (exactly or partially)."""
        for entry in self.aids:
            if entry.matches(df_name):
                return entry
        return None

    @property
    def parameters(self) -> tuple[ApplicationParameters, ...]:
        """The kernel parameters of every AID that has them, in list order."""
        return tuple(entry.parameters for entry in self.aids if entry.parameters is not None)


_SELECTION_KEYS: Final = ("aid", "label", "partial_match")
_PARAMETER_KEYS: Final = (
    "version",
    "tac_denial",
    "tac_online",
    "tac_default",
    "floor_limit",
    "random_selection_threshold",
    "random_target_percent",
    "random_max_target_percent",
    "velocity_checking",
    "default_tdol",
    "default_ddol",
)


def _parameters(entry: Section, aid: bytes) -> ApplicationParameters:
    parameters = ApplicationParameters(
        aid=aid,
        version=entry.binary("version", length=2),
        tac_denial=entry.binary("tac_denial", length=5),
        tac_online=entry.binary("tac_online", length=5),
        tac_default=entry.binary("tac_default", length=5),
        floor_limit=entry.integer("floor_limit"),
        random_selection_threshold=entry.integer("random_selection_threshold", default=0),
        random_target_percent=entry.integer("random_target_percent", default=0, maximum=99),
        random_max_target_percent=entry.integer("random_max_target_percent", default=0, maximum=99),
        velocity_checking=entry.flag("velocity_checking", default=True),
        default_tdol=entry.binary("default_tdol", default=b""),
        default_ddol=entry.binary("default_ddol", default=_DEFAULT_DDOL),
    )
    if parameters.random_target_percent > parameters.random_max_target_percent:
        raise entry.error("random_target_percent", "above random_max_target_percent")
    if parameters.random_selection_threshold > parameters.floor_limit:
        raise entry.error("random_selection_threshold", "above floor_limit")
    return parameters


def _entry(entry: Section) -> AidEntry:
    # "source" says where the entry's values come from: documentation, not read.
    entry.only(*_SELECTION_KEYS, *_PARAMETER_KEYS, "source")
    aid = entry.binary("aid")
    if not 5 <= len(aid) <= 16:
        raise entry.error("aid", f"{aid.hex().upper()} is {len(aid)} bytes (5 to 16)")
    parameters = _parameters(entry, aid) if any(entry.has(key) for key in _PARAMETER_KEYS) else None
    return AidEntry(
        aid=aid,
        label=entry.text("label", default=""),
        partial_match=entry.flag("partial_match", default=True),
        parameters=parameters,
    )


def application_list_from_section(section: Section) -> ApplicationList:
    section.only("applications", "use_pse")
    entries = tuple(_entry(entry) for entry in section.sections("applications", non_empty=True))
    seen: set[bytes] = set()
    for position, entry in enumerate(entries):
        if entry.aid in seen:
            raise section.item_error(
                "applications", position, f"AID {entry.aid.hex().upper()} is listed twice"
            )
        seen.add(entry.aid)
    return ApplicationList(aids=entries, use_pse=section.flag("use_pse", default=True))


def load_application_list(path: Path | str | None = None) -> ApplicationList:
    """The application list at `path`, or the shipped `firmware/data/applications.json`."""
    return application_list_from_section(read_config(APPLICATIONS_FILE, path))
