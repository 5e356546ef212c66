"""The one way a JSON file is read: bounded in size, depth and number size, NaN and Infinity refused.

Python's `json` accepts what no file this firmware writes can hold, and some
of it breaks later or far from the file: `NaN` and `Infinity` load and then
make every write fail (the writers use `allow_nan=False`); a 5,000-digit
integer raises ValueError (the interpreter's int-string limit); a few
thousand nested brackets raise RecursionError. `load_json` refuses each one
before it can escape, as `MalformedFileError` naming the file (and the line
for a syntax error), so a caller converts one error of the project's own
hierarchy (the storage keeps the file aside, the key store says it is
damaged, a configuration file is a ConfigError).

`read_bounded` reads at most `limit` bytes of a file: a file that is larger
(or `/dev/zero`) is a MalformedFileError, never a MemoryError. OSError
(FileNotFoundError included) passes through for the caller to word.

Limits: nesting `MAX_DEPTH` levels, a number of at most `MAX_NUMBER_CHARS`
characters; both far above anything the firmware writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Final

from firmware.errors import MalformedFileError

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "load_json", "read_bounded", "read_stream_bounded"]

MAX_DEPTH: Final = 64
MAX_NUMBER_CHARS: Final = 40
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_BRACKET: Final = re.compile(r"[\[\]{}]")


_CHUNK: Final = 1 << 16


def read_stream_bounded(stream: BinaryIO, limit: int, source: str) -> bytes:
    """At most `limit` bytes from an open binary stream; MalformedFileError if there is more.

    Read in chunks: a `read(limit + 1)` would reserve the whole limit even for a small file.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise MalformedFileError(f"larger than {limit} bytes", source)


def read_bounded(path: Path | str, limit: int) -> bytes:
    """The bytes of `path`, at most `limit` of them (MalformedFileError beyond; OSError as raised)."""
    with Path(path).open("rb") as file:
        return read_stream_bounded(file, limit, str(path))


def _check_depth(text: str, source: str) -> None:
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedFileError(f"nested more than {MAX_DEPTH} levels deep", source)
        else:
            depth -= 1


def _constant(source: str) -> Any:
    def refuse(name: str) -> Any:
        raise MalformedFileError(f"holds {name}, which is not a number a file of this terminal holds", source)

    return refuse


def _number(source: str, convert: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise MalformedFileError(
                f"holds a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})", source
            )
        value = convert(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise MalformedFileError(f"holds the number {text}, too large for a float", source)
        return value

    return parse


def load_json(
    raw: bytes | str, source: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None
) -> Any:
    """The JSON document in `raw` (read from `source`); MalformedFileError for anything it refuses.

    `object_pairs_hook` is json's (e.g. to refuse duplicate keys); what it raises passes through.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedFileError(f"not UTF-8 at byte {exc.start}", source) from None
    else:
        text = raw
    _check_depth(text, source)
    try:
        return json.loads(
            text,
            parse_constant=_constant(source),
            parse_int=_number(source, int),
            parse_float=_number(source, float),
            object_pairs_hook=object_pairs_hook,
        )
    except json.JSONDecodeError as exc:
        raise MalformedFileError(
            f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", source
        ) from None
    except RecursionError:  # unreachable after the depth check; kept as a guard
        raise MalformedFileError(f"nested more than {MAX_DEPTH} levels deep", source) from None
