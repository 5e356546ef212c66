"""The manifest of a firmware image: what the image holds, for which terminal, signed as one.

A manifest is a JSON object (UTF-8; the builder writes it with sorted keys and
no whitespace, but a verifier checks the signature over the exact bytes it
read and never re-serialises them):

    format        1
    product       "pos-terminal"
    version       "MAJOR.MINOR.PATCH", compared as three integers; never goes down
    arch          target machine as `uname -m` names it: x86_64, aarch64, armv7l
    python        target Python "3.11" (compiled wheels are built for it)
    build_time    seconds since the epoch (SOURCE_DATE_EPOCH of the build)
    signing_key   {"id": 16 hex digits, "development": bool}
    payload       {"size": bytes, "sha256": hex} of the tar payload that follows the signature
    files         [{"path", "size", "sha256", "mode"}] sorted by path: every regular file of the payload

A path is relative, "/"-separated, of plain names (no "", ".", ".." and no
leading "/"), printable ASCII without backslash; mode is 0o644 or 0o755.
Anything else is refused as `Refusal.MANIFEST` or `Refusal.UNSAFE_PATH`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, Final

from firmware.errors import ImageRefusedError

__all__ = [
    "ARCHES",
    "FILE_MODES",
    "MANIFEST_FORMAT",
    "PRODUCT",
    "FileEntry",
    "Manifest",
    "Refusal",
    "Version",
    "check_path",
    "parse_manifest",
]

MANIFEST_FORMAT: Final = 1
PRODUCT: Final = "pos-terminal"
ARCHES: Final = ("x86_64", "aarch64", "armv7l")
FILE_MODES: Final = (0o644, 0o755)
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_PATH_CHARS = re.compile(r"[\x21-\x7e]+")
MAX_FILES: Final = 20_000
MAX_PATH: Final = 255


class Refusal(StrEnum):
    """Why an image is refused: one code each, the first word of the one-line refusal."""

    FORMAT = "not-an-image"  # wrong magic, a manifest that is not JSON, bytes after the payload
    TRUNCATED = "truncated"  # the file ends before the manifest, the signature or the payload does
    UNKNOWN_KEY = "unknown-key"  # signed by a key this terminal does not trust
    SIGNATURE = "bad-signature"  # the manifest's signature does not verify
    DEVELOPMENT_KEY = "development-key"  # a development key on a terminal that accepts production keys only
    MANIFEST = "bad-manifest"  # a signed manifest with a missing or wrong field
    PAYLOAD = "payload-damaged"  # the payload's size or SHA-256 differs from the manifest's
    FILE = "file-damaged"  # a file's size or SHA-256 differs, one missing, one not in the manifest
    UNSAFE_PATH = "unsafe-path"  # a path out of the image's root, a link, a device file
    ARCH = "wrong-architecture"
    PYTHON = "wrong-python"
    VERSION = "not-newer"  # a version not above the installed one (or the anti-rollback counter)
    PRODUCT = "wrong-product"


@dataclass(frozen=True, order=True)
class Version:
    """MAJOR.MINOR.PATCH, ordered as three integers."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """Raises ValueError for anything but three dot-separated decimal numbers without leading zeros."""
        match = _VERSION.fullmatch(text)
        if match is None:
            raise ValueError(f"version {text!r} is not MAJOR.MINOR.PATCH")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class Manifest:
    version: Version
    arch: str
    python: str
    build_time: int
    key_id: str
    development: bool
    payload_size: int
    payload_sha256: str
    files: tuple[FileEntry, ...]

    @cached_property
    def by_path(self) -> dict[str, FileEntry]:
        return {entry.path: entry for entry in self.files}


def check_path(path: str) -> None:
    """Refuse (UNSAFE_PATH) a path that could land outside the image's root."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise ImageRefusedError(Refusal.UNSAFE_PATH, f"path {path!r} is empty or too long")
    if path.startswith("/"):
        raise ImageRefusedError(Refusal.UNSAFE_PATH, f"absolute path {path!r}")
    if _PATH_CHARS.fullmatch(path) is None or "\\" in path:
        raise ImageRefusedError(Refusal.UNSAFE_PATH, f"path {path!r} is not printable ASCII")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ImageRefusedError(Refusal.UNSAFE_PATH, f"path {path!r} is not a plain relative path")


def _bad(message: str) -> ImageRefusedError:
    return ImageRefusedError(Refusal.MANIFEST, message)


def _field(document: dict[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _bad(f"field {name!r} missing or not a {kind.__name__}")
    return value


def _file_entry(raw: object, index: int) -> FileEntry:
    if not isinstance(raw, dict) or set(raw) != {"path", "size", "sha256", "mode"}:
        raise _bad(f"files[{index}] must hold exactly path, size, sha256 and mode")
    path = raw["path"]
    check_path(path)
    size, digest, mode = raw["size"], raw["sha256"], raw["mode"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(f"files[{index}] ({path}): size must be a non-negative integer")
    if not isinstance(digest, str) or _HEX64.fullmatch(digest) is None:
        raise _bad(f"files[{index}] ({path}): sha256 must be 64 lowercase hex digits")
    if mode not in FILE_MODES or isinstance(mode, bool):
        raise _bad(f"files[{index}] ({path}): mode must be 0o644 or 0o755")
    return FileEntry(path, size, digest, mode)


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest in `raw` (already signature-checked). Raises ImageRefusedError (MANIFEST, UNSAFE_PATH)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, a number of > 4300 digits, nested too deep
        raise _bad("not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise _bad("not a JSON object")
    if _field(document, "format", int) != MANIFEST_FORMAT:
        raise _bad(f"format {document['format']} (this terminal reads format {MANIFEST_FORMAT})")
    if _field(document, "product", str) != PRODUCT:
        raise ImageRefusedError(Refusal.PRODUCT, f"an image of {document['product']!r}, not {PRODUCT!r}")
    try:
        version = Version.parse(_field(document, "version", str))
    except ValueError as exc:
        raise _bad(str(exc)) from None
    arch = _field(document, "arch", str)
    python = _field(document, "python", str)
    build_time = _field(document, "build_time", int)
    key = _field(document, "signing_key", dict)
    key_id, development = key.get("id"), key.get("development")
    if not isinstance(key_id, str) or _KEY_ID.fullmatch(key_id) is None or not isinstance(development, bool):
        raise _bad("signing_key must hold id (16 hex digits) and development (true or false)")
    payload = _field(document, "payload", dict)
    payload_size, payload_sha256 = payload.get("size"), payload.get("sha256")
    if not isinstance(payload_size, int) or isinstance(payload_size, bool) or payload_size < 0:
        raise _bad("payload.size must be a non-negative integer")
    if not isinstance(payload_sha256, str) or _HEX64.fullmatch(payload_sha256) is None:
        raise _bad("payload.sha256 must be 64 lowercase hex digits")
    raw_files = _field(document, "files", list)
    if len(raw_files) > MAX_FILES:
        raise _bad(f"more than {MAX_FILES} files")
    files = tuple(_file_entry(entry, index) for index, entry in enumerate(raw_files))
    paths = [entry.path for entry in files]
    if paths != sorted(paths) or len(set(paths)) != len(paths):
        raise _bad("files must be sorted by path, each path once")
    _check_no_file_is_a_directory(paths)
    return Manifest(
        version, arch, python, build_time, key_id, development, payload_size, payload_sha256, files
    )


def _check_no_file_is_a_directory(paths: list[str]) -> None:
    names = set(paths)
    for path in paths:
        parts = path.split("/")
        for end in range(1, len(parts)):
            if "/".join(parts[:end]) in names:
                raise ImageRefusedError(Refusal.UNSAFE_PATH, f"{path!r} lies under a file")
