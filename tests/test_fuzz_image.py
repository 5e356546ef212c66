"""Fuzzing firmware images (firmware/update/manifest.py, image.py, verify.py).

- `parse_manifest` over damaged manifests (near misses of every field, and
  damaged bytes: deep nesting, huge numbers, cut text): a Manifest or
  ImageRefusedError, nothing else;
- `verify_image` + `extract` over image files: a real image with bytes
  damaged, and images correctly signed by a trusted key around a damaged
  manifest or a damaged payload, so the checks after the signature are
  reached too. Only ImageRefusedError comes out, and what verifies extracts
  to exactly the manifest's files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware.update.image import canonical_manifest, seal
from firmware.update.manifest import parse_manifest
from firmware.update.trust import TrustedKey, TrustedKeys
from firmware.update.verify import extract, verify_image
from tests.flash_fixtures import DEVELOPMENT, EPOCH, TARGET
from tests.fuzz_targets import bounded, fuzz_settings, mutated_json, mutated_text

FILES = {
    "firmware/__init__.py": b'"""Firmware."""\n',
    "firmware/data/host.json": b"{}\n",
    "setup.cfg": b"[x]\n",
}
TRUSTED = TrustedKeys(
    True, (TrustedKey(DEVELOPMENT.id, DEVELOPMENT.private.public_key(), True, "development"),)
)


def _payload(files: dict[str, bytes], extra: list[tuple[tarfile.TarInfo, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("firmware", "firmware/data"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def _document() -> dict[str, Any]:
    return {
        "format": 1,
        "product": "pos-terminal",
        "version": "2.0.0",
        "arch": TARGET.arch,
        "python": TARGET.python,
        "build_time": EPOCH,
        "signing_key": {"id": DEVELOPMENT.id, "development": True},
        "files": [
            {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mode": 0o644}
            for path, data in sorted(FILES.items())
        ],
    }


PAYLOAD = _payload(FILES)
IMAGE = seal(_document(), PAYLOAD, DEVELOPMENT.private)
MANIFEST = json.loads(IMAGE[12 : 12 + int.from_bytes(IMAGE[8:12], "big")])


@fuzz_settings(400)
@given(mutated_json(MANIFEST).map(canonical_manifest) | mutated_text(canonical_manifest(MANIFEST)))
def test_a_manifest_parses_or_is_refused_with_its_reason(raw: bytes) -> None:
    outcome = bounded("image manifest", lambda: parse_manifest(raw))
    assert not isinstance(outcome, str) or outcome == "ImageRefusedError", outcome


def _damaged_payload(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # the tar itself damaged, then compressed
        raw = bytearray(gzip.decompress(PAYLOAD))
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] ^= draw(st.integers(1, 255))
        return gzip.compress(bytes(raw), mtime=0)
    if kind == 1:  # a member the manifest does not allow
        info = tarfile.TarInfo(
            draw(st.sampled_from(["firmware/x", "../x", "firmware/data/host.json", "/etc/x"]))
        )
        info.type = draw(
            st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
        )
        info.linkname = "/etc/passwd"
        data = draw(st.binary(max_size=32))
        info.size = len(data) if info.isreg() else 0
        return _payload(FILES, [(info, data)])
    if kind == 2:
        return bytes(draw(mutated_text(PAYLOAD)))
    return PAYLOAD


@st.composite
def image_files(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:  # a real image with bytes damaged: the signature rarely holds
        return bytes(draw(mutated_text(IMAGE)))
    payload = _damaged_payload(draw)
    document = draw(mutated_json(_document(), max_changes=2)) if kind == 1 else _document()
    if not isinstance(document, dict):
        document = {"document": document}
    listed = {"size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
    manifest = canonical_manifest({**document, "payload": listed})
    if draw(st.booleans()) and isinstance(document.get("files"), list):  # the payload as it is, unlisted
        manifest = canonical_manifest({**document})
    signature = DEVELOPMENT.private.sign(b"pos-terminal firmware image manifest v1\x00" + manifest)
    return b"POSIMG\x00\x01" + len(manifest).to_bytes(4, "big") + manifest + signature + payload


@fuzz_settings(250)
@given(image_files())
def test_an_image_verifies_and_extracts_or_is_refused_with_its_reason(image: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzz.img"
        path.write_bytes(image)
        dest = Path(scratch) / "slot"
        dest.mkdir()

        def verify_and_extract() -> list[str]:
            verified = verify_image(path, TRUSTED, TARGET)
            extract(verified, dest)
            return sorted(entry.path for entry in verified.manifest.files)

        outcome = bounded("image verify", verify_and_extract)
        if isinstance(outcome, list):
            written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
            assert written == outcome
        else:
            assert outcome == "ImageRefusedError", outcome
