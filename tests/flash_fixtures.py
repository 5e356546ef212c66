"""Firmware images for tests: a small source tree, keys, trusted-key files, hand-made (hostile) images."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.store.atomic_file import locked, write_atomically
from firmware.update.build import BuildRequest, NoWheels, WheelSource, build_image
from firmware.update.image import seal
from firmware.update.manifest import Version
from firmware.update.migrations import Migration
from firmware.update.trust import SigningKey, public_key_bytes, trust_key
from firmware.update.verify import Target

TARGET = Target("x86_64", "3.11")
EPOCH = 1_700_000_000


def signing_key(seed: int, development: bool = False) -> SigningKey:
    return SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32), development)


PRODUCTION = signing_key(1)
OTHER = signing_key(2)
DEVELOPMENT = signing_key(3, development=True)


def small_source(directory: Path, marker: str = "1") -> Path:
    """A source tree shaped like the project's, a few files only (quick to build, verify and flip)."""
    package = directory / "firmware"
    (package / "data").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'"""Firmware {marker}."""\n')
    (package / "__main__.py").write_text("print('kiosk')\n")
    for name in ("capk.json", "terms.json", "host.json", "identity.json"):
        (package / "data" / name).write_text('{"_": "test"}\n')
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    (directory / "sim").mkdir(exist_ok=True)
    (directory / "sim" / "__init__.py").write_text("")
    (directory / "setup.cfg").write_text("[options]\ninstall_requires =\n    tinydb==4.9.0\n")
    return directory


def build(
    source: Path,
    out: Path,
    version: str,
    key: SigningKey = PRODUCTION,
    *,
    arch: str = "x86_64",
    python: str = "3.11",
    wheels: WheelSource | None = None,
    epoch: int = EPOCH,
) -> Path:
    request = BuildRequest(
        source, out, Version.parse(version), arch, python, epoch, key, wheels or NoWheels()
    )
    return build_image(request)


def trust(data_dir: Path, key: SigningKey, *, development: bool = False) -> None:
    trust_key(data_dir, public_key_bytes(key.private), development=development)


def hostile_image(
    members: list[tuple[tarfile.TarInfo, bytes]],
    files: list[dict[str, object]],
    key: SigningKey = PRODUCTION,
    version: str = "9.0.0",
) -> bytes:
    """A correctly signed image whose manifest lists `files` and whose tar holds `members` as given."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    payload = gzip.compress(raw.getvalue(), mtime=0)
    document: dict[str, object] = {
        "format": 1,
        "product": "pos-terminal",
        "version": version,
        "arch": "x86_64",
        "python": "3.11",
        "build_time": EPOCH,
        "signing_key": {"id": key.id, "development": key.development},
        "files": files,
    }
    return seal(document, payload, key.private)


def file_entry(path: str, data: bytes, mode: int = 0o644) -> dict[str, object]:
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mode": mode}


def regular(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info, b""


def tree_digest(directory: Path) -> dict[str, str]:
    """Every file under `directory` (lock files aside) by relative path -> SHA-256."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def slot_intact(slot_dir: Path) -> bool:
    """The slot's files are exactly its manifest's (size and SHA-256 of each)."""
    manifest = json.loads((slot_dir / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        path = slot_dir / "files" / entry["path"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            return False
    return True


def make_queue(data_dir: Path) -> dict[str, str]:
    """A data directory holding a queue, a journal and keys (opaque bytes here); returns its digest."""
    for name, body in (("queue.json", b'{"q": [1, 2]}'), ("journal.json", b'{"j": 3}'), ("keys/ks", b"K")):
        write_atomically(data_dir / name, body)
    return {k: v for k, v in tree_digest(data_dir).items() if not k.startswith("update/")}


# Two migrations for the interruption tests: the journal's notices move to their own file
# (new file first, then the old field removed), then a format marker. Each writer holds the
# file's lock, which also clears the temp file a kill left behind.
def _replace(path: Path, data: bytes) -> None:
    with locked(path):
        write_atomically(path, data)


def _split_notices(data_dir: Path) -> None:
    journal_path, notices_path = data_dir / "journal.json", data_dir / "notices.json"
    journal = json.loads(journal_path.read_bytes())
    if "notices" in journal:
        if not notices_path.exists():
            _replace(notices_path, json.dumps(journal["notices"]).encode())
        del journal["notices"]
        _replace(journal_path, json.dumps(journal, sort_keys=True).encode())


def _format_marker(data_dir: Path) -> None:
    _replace(data_dir / "format.json", b'{"format": 2}')


TEST_MIGRATIONS = (
    Migration(1, "notices apart", _split_notices),
    Migration(2, "format marker", _format_marker),
)
