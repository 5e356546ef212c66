"""The image file: one signed envelope around a deterministic tar payload.

    offset 0        magic b"POSIMG\\x00\\x01" (8 bytes)
    offset 8        L, the manifest's length: 4 bytes, big-endian, at most MAX_MANIFEST
    offset 12       the manifest (JSON, see `manifest.py`)
    offset 12+L     Ed25519 signature (64 bytes) of SIGNING_CONTEXT + manifest
    offset 76+L     the payload: a gzip-compressed POSIX tar, exactly manifest.payload.size bytes
    end of file     nothing may follow the payload

The signature covers the manifest, which holds the payload's SHA-256 and every
file's: so nothing of the payload is parsed before it is known to be the
signed one (the way RAUC checks a bundle before mounting it).

The payload is reproducible: entries sorted by path, each directory before
its contents, mtime 0, uid/gid 0, empty owner names, mode 0o755 for
directories and the manifest's mode for files, the gzip header without a
file name and with mtime 0. The same files give the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_MANIFEST",
    "SIGNATURE_SIZE",
    "SIGNING_CONTEXT",
    "PayloadFile",
    "canonical_manifest",
    "pack_payload",
    "seal",
]

MAGIC: Final = b"POSIMG\x00\x01"
HEADER_SIZE: Final = len(MAGIC) + 4
SIGNATURE_SIZE: Final = 64
MAX_MANIFEST: Final = 8 << 20
# Domain separation: an image signature can never be taken for any other Ed25519 signature.
SIGNING_CONTEXT: Final = b"pos-terminal firmware image manifest v1\x00"


@dataclass(frozen=True)
class PayloadFile:
    path: str
    data: bytes
    mode: int = 0o644


def _directories(paths: Iterable[str]) -> list[str]:
    directories: set[str] = set()
    for path in paths:
        parts = path.split("/")
        directories.update("/".join(parts[:end]) for end in range(1, len(parts)))
    return sorted(directories)


def pack_payload(files: Iterable[PayloadFile]) -> bytes:
    """The reproducible tar.gz of `files` (paths must already be checked)."""
    ordered = sorted(files, key=lambda f: f.path)
    entries: list[tuple[str, PayloadFile | None]] = [(d, None) for d in _directories(f.path for f in ordered)]
    entries += [(f.path, f) for f in ordered]
    entries.sort(key=lambda entry: entry[0].split("/"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, file in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if file is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = file.mode
                info.size = len(file.data)
                tar.addfile(info, io.BytesIO(file.data))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as stream:
        stream.write(raw.getvalue())
    return compressed.getvalue()


def canonical_manifest(document: dict[str, object]) -> bytes:
    """The manifest as the builder writes it: sorted keys, no whitespace, ASCII."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def seal(document: dict[str, object], payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """The image: `document` completed with the payload's size and SHA-256, signed with `key`."""
    document = {**document, "payload": {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}}
    manifest = canonical_manifest(document)
    if len(manifest) > MAX_MANIFEST:
        raise ValueError(f"manifest of {len(manifest)} bytes is larger than {MAX_MANIFEST}")
    signature = key.sign(SIGNING_CONTEXT + manifest)
    return MAGIC + len(manifest).to_bytes(4, "big") + manifest + signature + payload
