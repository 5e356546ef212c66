"""Every check a firmware image passes before a byte of it is installed; one shape: it raises.

`verify_image(path, trusted, target, installed, highest)` reads the file and
refuses it with `ImageRefusedError(reason, one line)` (reasons: `Refusal`):

1. envelope: magic, manifest length, the file long enough for manifest and signature
2. key: the manifest names a key this terminal trusts (UNKNOWN_KEY); the signature
   over the manifest verifies (SIGNATURE); a development key only where accepted
3. manifest fields, every path relative and plain (MANIFEST, UNSAFE_PATH)
4. the file is exactly as long as the payload says (TRUNCATED, FORMAT)
5. target architecture and Python (ARCH, PYTHON); version above the installed one
   and above the anti-rollback counter (VERSION)
6. the payload's SHA-256, then each tar member: a directory or a regular file,
   never a link, device or fifo, a safe path, listed in the manifest with its
   size, mode and SHA-256, every listed file present once (PAYLOAD, FILE, UNSAFE_PATH)

`extract(verified, dest)` runs step 6 again while it writes into `dest`, so a
file changed on the USB stick between the two reads is still refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import sys
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from cryptography.exceptions import InvalidSignature

from firmware.errors import ImageRefusedError, StoreError
from firmware.update.image import HEADER_SIZE, MAGIC, MAX_MANIFEST, SIGNATURE_SIZE, SIGNING_CONTEXT
from firmware.update.manifest import Manifest, Refusal, Version, check_path, parse_manifest
from firmware.update.trust import TrustedKey, TrustedKeys

__all__ = ["Target", "VerifiedImage", "extract", "verify_image"]

_CHUNK: Final = 1 << 16


@dataclass(frozen=True)
class Target:
    """The terminal an image must be built for."""

    arch: str
    python: str

    @classmethod
    def this_machine(cls) -> Target:
        return cls(platform.machine(), f"{sys.version_info.major}.{sys.version_info.minor}")


@dataclass(frozen=True)
class VerifiedImage:
    path: Path
    manifest_bytes: bytes
    signature: bytes
    manifest: Manifest
    key: TrustedKey
    payload_offset: int


def _refuse(reason: Refusal, message: str) -> ImageRefusedError:
    return ImageRefusedError(reason, message)


def _read_exactly(file: IO[bytes], size: int, what: str) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise _refuse(Refusal.TRUNCATED, f"the file ends inside the {what}")
    return data


def _claimed_key_id(manifest_bytes: bytes) -> str | None:
    """The key id the (not yet verified) manifest names, only to say which key was used."""
    try:
        value = json.loads(manifest_bytes)["signing_key"]["id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _check_signature(manifest_bytes: bytes, signature: bytes, trusted: TrustedKeys) -> TrustedKey:
    for key in trusted.keys:
        try:
            key.public_key.verify(signature, SIGNING_CONTEXT + manifest_bytes)
        except InvalidSignature:
            continue
        return key
    claimed = _claimed_key_id(manifest_bytes)
    if claimed is not None and trusted.find(claimed) is None:
        raise _refuse(Refusal.UNKNOWN_KEY, f"signed with key {claimed[:16]!r}, not trusted here")
    if not trusted.keys:
        raise _refuse(Refusal.UNKNOWN_KEY, "this terminal trusts no image key yet (pos-flash trust)")
    raise _refuse(Refusal.SIGNATURE, "the manifest's signature does not verify with any trusted key")


def _check_target(manifest: Manifest, target: Target) -> None:
    if manifest.arch != target.arch:
        raise _refuse(Refusal.ARCH, f"image built for {manifest.arch}, this terminal is {target.arch}")
    if manifest.python != target.python:
        raise _refuse(
            Refusal.PYTHON, f"image built for Python {manifest.python}, this terminal runs {target.python}"
        )


def _check_version(version: Version, installed: Version | None, highest: Version | None) -> None:
    if installed is not None and version <= installed:
        raise _refuse(Refusal.VERSION, f"image {version} is not above the installed {installed}")
    if highest is not None and version <= highest:
        raise _refuse(
            Refusal.VERSION, f"image {version} is not above {highest}, the highest version ever installed"
        )


def verify_image(
    path: Path,
    trusted: TrustedKeys,
    target: Target,
    installed: Version | None = None,
    highest: Version | None = None,
) -> VerifiedImage:
    """The image at `path`, checked through and through. Raises ImageRefusedError (one line: the reason)."""
    path = Path(path)
    try:
        file = path.open("rb")
    except OSError as exc:
        raise _refuse(Refusal.FORMAT, f"cannot open {path}: {exc.strerror}") from None
    with file:
        header = file.read(HEADER_SIZE)
        if len(header) < len(MAGIC) and MAGIC.startswith(header) and header:
            raise _refuse(Refusal.TRUNCATED, "the file ends inside the header")
        if header[: len(MAGIC)] != MAGIC:
            raise _refuse(Refusal.FORMAT, f"{path.name} is not a pos-terminal firmware image (wrong magic)")
        if len(header) < HEADER_SIZE:
            raise _refuse(Refusal.TRUNCATED, "the file ends inside the header")
        length = int.from_bytes(header[len(MAGIC) :], "big")
        if length > MAX_MANIFEST:
            raise _refuse(Refusal.FORMAT, f"manifest length {length} is larger than {MAX_MANIFEST}")
        manifest_bytes = _read_exactly(file, length, "manifest")
        signature = _read_exactly(file, SIGNATURE_SIZE, "signature")
        key = _check_signature(manifest_bytes, signature, trusted)
        manifest = parse_manifest(manifest_bytes)
        if manifest.key_id != key.id:
            raise _refuse(Refusal.MANIFEST, f"names key {manifest.key_id} but is signed by {key.id}")
        if (manifest.development or key.development) and not trusted.accept_development:
            raise _refuse(
                Refusal.DEVELOPMENT_KEY,
                f"signed with the development key {key.id}; this terminal accepts production keys only",
            )
        offset = HEADER_SIZE + length + SIGNATURE_SIZE
        size = os.fstat(file.fileno()).st_size
        if size < offset + manifest.payload_size:
            raise _refuse(
                Refusal.TRUNCATED,
                f"{size} bytes; the manifest announces {offset + manifest.payload_size}",
            )
        if size > offset + manifest.payload_size:
            raise _refuse(Refusal.FORMAT, f"{size - offset - manifest.payload_size} bytes after the payload")
        _check_target(manifest, target)
        _check_version(manifest.version, installed, highest)
        verified = VerifiedImage(path, manifest_bytes, signature, manifest, key, offset)
        digest = hashlib.sha256()
        remaining = manifest.payload_size
        while remaining:
            chunk = file.read(min(_CHUNK, remaining))
            if not chunk:
                raise _refuse(Refusal.TRUNCATED, "the file ends inside the payload")
            digest.update(chunk)
            remaining -= len(chunk)
        if digest.hexdigest() != manifest.payload_sha256:
            raise _refuse(Refusal.PAYLOAD, "the payload's SHA-256 differs from the manifest's")
    _walk(verified, None)
    return verified


def extract(verified: VerifiedImage, dest: Path) -> None:
    """Write the image's files under the existing empty directory `dest`, each fsynced, checking as it goes.

    Raises ImageRefusedError if anything differs from the manifest; `dest`
    then holds a partial tree that the caller removes.
    """
    _walk(verified, Path(dest))


class _HashingReader:
    """The payload bytes of the image file, hashed as they are read, never past the payload's end."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self._file = file
        self._left = size
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        data = self._file.read(want)
        self._left -= len(data)
        self.digest.update(data)
        return data

    def seek(self, offset: int, /) -> object:
        raise OSError("the payload is read once, front to back")

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass
        if self._left:
            raise _refuse(Refusal.TRUNCATED, "the file ends inside the payload")


def _copy(
    source: IO[bytes], size: int, entry_hash: str, path: str, write: Callable[[bytes], object] | None
) -> None:
    digest = hashlib.sha256()
    remaining = size
    while remaining:
        chunk = source.read(min(_CHUNK, remaining))
        if not chunk:
            raise _refuse(Refusal.PAYLOAD, f"the payload ends inside {path}")
        digest.update(chunk)
        if write is not None:
            write(chunk)
        remaining -= len(chunk)
    if digest.hexdigest() != entry_hash:
        raise _refuse(Refusal.FILE, f"{path}: SHA-256 differs from the manifest's")


def _write_file(dest: Path, member: tarfile.TarInfo, source: IO[bytes], entry_hash: str) -> None:
    """Write one member (O_EXCL, O_NOFOLLOW: never through a link, never over a file), then fsync it.

    A payload that breaks while it is read is refused (ImageRefusedError); a
    disk that cannot take the file is a StoreError.
    """
    target = dest / member.name

    def failed(exc: OSError) -> StoreError:
        return StoreError(f"cannot write {target}: {exc.strerror}")

    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise failed(exc) from None
    try:

        def write(chunk: bytes) -> None:
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                raise failed(exc) from None

        _copy(source, member.size, entry_hash, member.name, write)
        try:
            os.fchmod(fd, member.mode)
            os.fsync(fd)
        except OSError as exc:
            raise failed(exc) from None
    finally:
        os.close(fd)


def _check_member(member: tarfile.TarInfo, manifest: Manifest, directories: set[str], seen: set[str]) -> None:
    name = member.name
    if member.issym() or member.islnk():
        raise _refuse(Refusal.UNSAFE_PATH, f"{name!r} is a link (to {member.linkname!r})")
    if not (member.isreg() or member.isdir()):
        raise _refuse(Refusal.UNSAFE_PATH, f"{name!r} is a device file, fifo or other special file")
    check_path(name)
    if member.isdir():
        if name not in directories:
            raise _refuse(Refusal.FILE, f"directory {name!r} holds no file of the manifest")
        return
    entry = manifest.by_path.get(name)
    if entry is None:
        raise _refuse(Refusal.FILE, f"{name!r} is not in the manifest")
    if name in seen:
        raise _refuse(Refusal.FILE, f"{name!r} appears twice in the payload")
    if member.size != entry.size:
        raise _refuse(Refusal.FILE, f"{name}: {member.size} bytes, the manifest says {entry.size}")
    if member.mode != entry.mode:
        raise _refuse(Refusal.FILE, f"{name}: mode {member.mode:o}, the manifest says {entry.mode:o}")


def _walk(verified: VerifiedImage, dest: Path | None) -> None:
    manifest = verified.manifest
    directories = {
        "/".join(parts[:end])
        for parts in (entry.path.split("/") for entry in manifest.files)
        for end in range(1, len(parts))
    }
    seen: set[str] = set()
    with verified.path.open("rb") as file:
        file.seek(verified.payload_offset)
        raw = _HashingReader(file, manifest.payload_size)
        try:
            with (
                gzip.GzipFile(fileobj=raw, mode="rb") as unzipped,
                tarfile.open(fileobj=unzipped, mode="r|") as tar,
            ):
                for member in tar:
                    _check_member(member, manifest, directories, seen)
                    if member.isdir():
                        if dest is not None:
                            (dest / member.name).mkdir(parents=True, exist_ok=True, mode=0o755)
                        continue
                    source = tar.extractfile(member)
                    assert source is not None  # a regular file
                    entry = manifest.by_path[member.name]
                    if dest is None:
                        _copy(source, member.size, entry.sha256, member.name, None)
                    else:
                        _write_file(dest, member, source, entry.sha256)
                    seen.add(member.name)
                while unzipped.read(_CHUNK):
                    pass
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise _refuse(Refusal.PAYLOAD, f"the payload cannot be unpacked ({exc})") from None
        raw.drain()
    if raw.digest.hexdigest() != manifest.payload_sha256:
        raise _refuse(Refusal.PAYLOAD, "the payload changed while it was read (SHA-256 differs)")
    missing = sorted(set(manifest.by_path) - seen)
    if missing:
        raise _refuse(Refusal.FILE, f"{missing[0]!r} is in the manifest but not in the payload")
