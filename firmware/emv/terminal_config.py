"""Terminal configuration for application selection: the supported AIDs.

The terminal's data objects (9F33, 9F1A, 5F2A...) and per-AID risk
parameters are the kernel's, in `firmware/emv/kernel_config.py`: one place.

Loaded from JSON (default `firmware/data/terminal.json`) into frozen
dataclasses. The loader is driven by the dataclass fields and their type
hints, so extending the configuration is adding a field with a default:

* the JSON key is the field name; unknown keys are refused (typos show);
* `bytes` fields are hex strings, `int`/`bool`/`str` are JSON scalars,
  `tuple[X, ...]` is a JSON list, a nested dataclass is a JSON object.

Per-application settings belong to `AidEntry`, terminal-wide ones to
`TerminalConfig`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from firmware.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_RESOURCE",
    "AidEntry",
    "TerminalConfig",
    "from_json_value",
    "load_terminal_config",
    "terminal_config_from_dict",
]

DEFAULT_CONFIG_RESOURCE = "data/terminal.json"


@dataclass(frozen=True)
class AidEntry:
    """One application the terminal supports (Book 1 12.3.1)."""

    aid: bytes
    label: str = ""
    # Application Selection Indicator: may a card AID that only begins with
    # this one (a longer DF name) match it?
    partial_match: bool = True

    def __post_init__(self) -> None:
        if not 5 <= len(self.aid) <= 16:
            raise ConfigError(f"AID {self.aid.hex().upper()} is {len(self.aid)} bytes (5 to 16)")

    def matches(self, df_name: bytes) -> bool:
        """Book 1 12.3.1: exact match, or a partial one when the ASI allows it."""
        if df_name == self.aid:
            return True
        return self.partial_match and len(df_name) > len(self.aid) and df_name.startswith(self.aid)


@dataclass(frozen=True)
class TerminalConfig:
    """What the terminal brings to application selection and initiation."""

    aids: tuple[AidEntry, ...]
    # Select the PSE ('1PAY.SYS.DDF01') before trying the list of AIDs.
    use_pse: bool = True

    def __post_init__(self) -> None:
        if not self.aids:
            raise ConfigError("terminal configuration lists no AID")

    def aid_entry_for(self, df_name: bytes) -> AidEntry | None:
        """The first configured AID that `df_name` matches (exactly or partially)."""
        for entry in self.aids:
            if entry.matches(df_name):
                return entry
        return None


_T = TypeVar("_T")


def _convert(value: object, hint: Any, where: str) -> object:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [arg for arg in args if arg is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], where)
        raise ConfigError(f"{where}: unsupported type {hint}")
    if hint is bytes:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a hex string, got {type(value).__name__}")
        try:
            return bytes.fromhex(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: '{value}' is not hex") from exc
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string")
        return value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list")
        return tuple(_convert(item, args[0], f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_json_value(hint, value, where)
    raise ConfigError(f"{where}: unsupported type {hint}")


def from_json_value(cls: type[_T], value: object, where: str = "config") -> _T:
    """Build the dataclass `cls` from a parsed JSON object, field by field."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected an object")
    if not dataclasses.is_dataclass(cls):
        raise ConfigError(f"{where}: {cls.__name__} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs: dict[str, object] = {}
    for name, spec in fields.items():
        if name in value:
            kwargs[name] = _convert(value[name], hints[name], f"{where}.{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key '{name}'")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def terminal_config_from_dict(data: object) -> TerminalConfig:
    return from_json_value(TerminalConfig, data, "terminal")


def load_terminal_config(path: Path | str | None = None) -> TerminalConfig:
    """The configuration at `path`, or the one shipped in `firmware/data/terminal.json`."""
    try:
        if path is None:
            text = resources.files("firmware").joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")
            source = f"firmware/{DEFAULT_CONFIG_RESOURCE}"
        else:
            text = Path(path).read_text(encoding="utf-8")
            source = str(path)
    except OSError as exc:
        raise ConfigError(f"cannot read terminal configuration: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    return from_json_value(TerminalConfig, data, source)
