"""Reading the terminal's configuration files: one way to find them, one way to read a field.

Every configuration file is a JSON object shipped in the `firmware.data`
package and found with `importlib.resources`; a path given by the caller
overrides the shipped file. Each loader (identity, application list, kernel
parameters, CA public keys) reads its file through a `Section` and builds
frozen dataclasses from typed fields:

    section = read_config("kernel.json", path)      # path None: the shipped file
    section.only("terminal_type", "applications")    # any other key is refused
    limit = section.sections("applications")[3].integer("floor_limit")

A wrong or missing value raises `ConfigError` naming the file and the key,
e.g. "kernel.json: applications[3].floor_limit: must be an integer". Keys
that begin with "_" are comments and are ignored everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Final

from firmware.errors import ConfigError

__all__ = [
    "DATA_PACKAGE",
    "Section",
    "parse_config",
    "read_config",
]

DATA_PACKAGE: Final = "firmware.data"
# The largest configuration file read; the CA key list is the biggest, at a few tens of kB.
_MAX_FILE_BYTES: Final = 1 << 20


class _Missing:
    """No default: the key must be present."""


_MISSING: Final = _Missing()


def read_config(name: str, path: Path | str | None = None) -> Section:
    """The JSON object at `path`, or the shipped `firmware/data/<name>` when `path` is None."""
    try:
        if path is None:
            label = name
            raw = resources.files(DATA_PACKAGE).joinpath(name).read_bytes()
        else:
            label = str(path)
            with Path(path).open("rb") as file:
                raw = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError(f"{label}: larger than {_MAX_FILE_BYTES} bytes")
    return parse_config(raw, label)


def parse_config(raw: bytes | str, label: str) -> Section:
    """The JSON object in `raw`, read from the file named `label`."""
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"{label}: not JSON{where}") from None
    except ValueError:  # a number of more than 4300 digits
        raise ConfigError(f"{label}: not JSON (a number too long to read)") from None
    except RecursionError:
        raise ConfigError(f"{label}: not JSON (nested too deep)") from None
    return Section.of(document, label)


class Section:
    """A JSON object from the file `file`, found at `path` inside it ('' for the whole file)."""

    __slots__ = ("_raw", "file", "path")

    def __init__(self, raw: Mapping[str, object], file: str, path: str = "") -> None:
        self._raw = raw
        self.file = file
        self.path = path

    @classmethod
    def of(cls, value: object, file: str, path: str = "") -> Section:
        """`value` as a section; ConfigError unless it is a JSON object."""
        if not isinstance(value, Mapping):
            raise ConfigError(f"{file}: {path or 'top level'}: must be an object")
        return cls(value, file, path)

    # --- where, and the error that says it --------------------------------------------------------

    def where(self, key: str | None = None) -> str:
        """'file: path.key', the address of `key` (or of the section) in error messages."""
        inner = ".".join(part for part in (self.path, key) if part)
        return f"{self.file}: {inner}" if inner else self.file

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self._raw

    def only(self, *keys: str) -> None:
        """Refuse any key but `keys` (and "_" comments): a typo shows instead of being ignored."""
        unknown = sorted(k for k in self._raw if k not in keys and not k.startswith("_"))
        if unknown:
            raise ConfigError(f"{self.where()}: unknown key(s) {', '.join(unknown)}")

    def _get(self, key: str, default: object) -> object:
        if key in self._raw:
            return self._raw[key]
        if isinstance(default, _Missing):
            raise self.error(key, "missing")
        return default

    # --- scalars ----------------------------------------------------------------------------------

    def binary(self, key: str, *, length: int | None = None, default: bytes | _Missing = _MISSING) -> bytes:
        """A hex string, as bytes; `length` in bytes when it is fixed."""
        if key not in self._raw and not isinstance(default, _Missing):
            return default
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "must be a hex string")
        try:
            data = bytes.fromhex(value)
        except ValueError:
            raise self.error(key, f"{value!r} is not hex") from None
        if length is not None and len(data) != length:
            raise self.error(key, f"must be {length} bytes, got {len(data)}")
        return data

    def integer(
        self, key: str, *, default: int | _Missing = _MISSING, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """A JSON integer (not a boolean) within `minimum`..`maximum`."""
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"in {minimum}..{maximum}"
            raise self.error(key, f"must be {bounds}, got {value}")
        return value

    def flag(self, key: str, *, default: bool | _Missing = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def text(
        self,
        key: str,
        *,
        default: str | _Missing = _MISSING,
        length: int | None = None,
        ascii_only: bool = False,
    ) -> str:
        """A string; `length` in characters when it is fixed, ASCII only when it goes on the wire."""
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if ascii_only and not value.isascii():
            raise self.error(key, "must be ASCII")
        if length is not None and len(value) != length:
            raise self.error(key, f"must be {length} characters, got {len(value)}")
        return value

    def day(self, key: str) -> date:
        """A YYYY-MM-DD date."""
        value = self._get(key, _MISSING)
        if not isinstance(value, str):
            raise self.error(key, "must be a YYYY-MM-DD date")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.error(key, f"is not a YYYY-MM-DD date: {value!r}") from None

    # --- structure --------------------------------------------------------------------------------

    def _sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def section(self, key: str, *, optional: bool = False) -> Section:
        """The object under `key`; an empty one when it is `optional` and absent."""
        value = self._get(key, {} if optional else _MISSING)
        if not isinstance(value, Mapping):
            raise self.error(key, "must be an object")
        return Section(value, self.file, self._sub(key))

    def items(
        self, key: str, *, default: list[object] | _Missing = _MISSING, non_empty: bool = False
    ) -> list[object]:
        """The JSON list under `key`, its items unchecked (see `sections` and `texts`)."""
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        if non_empty and not value:
            raise self.error(key, "must not be empty")
        return value

    def item_error(self, key: str, position: int, message: str) -> ConfigError:
        return self.error(f"{key}[{position}]", message)

    def sections(
        self, key: str, *, default: list[object] | _Missing = _MISSING, non_empty: bool = False
    ) -> tuple[Section, ...]:
        """The list of objects under `key`, each one addressed as `key[i]`."""
        sections = []
        for position, item in enumerate(self.items(key, default=default, non_empty=non_empty)):
            if not isinstance(item, Mapping):
                raise self.item_error(key, position, "must be an object")
            sections.append(Section(item, self.file, f"{self._sub(key)}[{position}]"))
        return tuple(sections)

    def texts(
        self, key: str, *, default: list[object] | _Missing = _MISSING, length: int | None = None
    ) -> tuple[str, ...]:
        """The list of strings under `key`; `length` in characters when each is fixed."""
        values = []
        for position, item in enumerate(self.items(key, default=default)):
            if not isinstance(item, str) or (length is not None and len(item) != length):
                size = "" if length is None else f" of {length} characters"
                raise self.item_error(key, position, f"must be a string{size}")
            values.append(item)
        return tuple(values)
