"""Verifying a firmware image: every refusal is one line naming its reason, and nothing gets past.

Anchors: RAUC checks a bundle's signature before it reads the payload; TUF's
rollback attack (an older version) and freeze attack (the same version again)
are both refused against the installed version and the anti-rollback counter.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from firmware.errors import ImageRefusedError
from firmware.update.image import HEADER_SIZE
from firmware.update.manifest import Refusal, Version
from firmware.update.trust import TrustedKeys, load_trusted_keys, set_production
from firmware.update.verify import Target, extract, verify_image
from tests.flash_fixtures import (
    DEVELOPMENT,
    OTHER,
    PRODUCTION,
    TARGET,
    build,
    file_entry,
    hostile_image,
    regular,
    small_source,
    special,
    trust,
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return small_source(tmp_path / "src")


@pytest.fixture
def production(tmp_path: Path) -> TrustedKeys:
    data_dir = tmp_path / "data"
    trust(data_dir, PRODUCTION)
    return load_trusted_keys(data_dir)


def refusal(image: Path, trusted: TrustedKeys, **kwargs: object) -> ImageRefusedError:
    with pytest.raises(ImageRefusedError) as caught:
        verify_image(image, trusted, kwargs.pop("target", TARGET), **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{caught.value.reason}: ")
    return caught.value


def test_a_good_image_verifies_and_says_what_it_holds(
    source: Path, tmp_path: Path, production: TrustedKeys
) -> None:
    image = build(source, tmp_path / "dist", "1.2.3")
    verified = verify_image(image, production, TARGET, Version(1, 2, 2), Version(1, 0, 0))
    manifest = verified.manifest
    assert (manifest.version, manifest.arch, manifest.python, manifest.development) == (
        Version(1, 2, 3),
        "x86_64",
        "3.11",
        False,
    )
    paths = [entry.path for entry in manifest.files]
    assert "app/firmware/data/capk.json" in paths and "systemd/pos-terminal.service" in paths
    assert not any("__pycache__" in path or path.startswith("app/sim") for path in paths)


def test_a_flipped_byte_anywhere_is_refused(source: Path, tmp_path: Path, production: TrustedKeys) -> None:
    good = build(source, tmp_path / "dist", "1.0.0").read_bytes()
    bad = tmp_path / "bad.img"
    reasons = set()
    for position in range(len(good)):
        bad.write_bytes(good[:position] + bytes([good[position] ^ 0xFF]) + good[position + 1 :])
        reasons.add(refusal(bad, production).reason)
    # Header -> format/truncated; manifest -> key or signature; signature -> signature; payload -> payload.
    assert {Refusal.FORMAT, Refusal.SIGNATURE, Refusal.PAYLOAD} <= reasons
    assert reasons <= {
        Refusal.FORMAT,
        Refusal.TRUNCATED,
        Refusal.SIGNATURE,
        Refusal.UNKNOWN_KEY,
        Refusal.PAYLOAD,
    }


def test_a_truncated_image_is_refused_wherever_it_is_cut(
    source: Path, tmp_path: Path, production: TrustedKeys
) -> None:
    good = build(source, tmp_path / "dist", "1.0.0").read_bytes()
    cut = tmp_path / "cut.img"
    for length in [*range(0, HEADER_SIZE + 200), *range(HEADER_SIZE + 200, len(good), 97), len(good) - 1]:
        cut.write_bytes(good[:length])
        assert refusal(cut, production).reason in (Refusal.TRUNCATED, Refusal.FORMAT)
    cut.write_bytes(good[:-1])
    assert refusal(cut, production).reason is Refusal.TRUNCATED
    cut.write_bytes(good + b"\0")
    assert refusal(cut, production).reason is Refusal.FORMAT


def test_an_image_signed_with_another_key_is_refused(
    source: Path, tmp_path: Path, production: TrustedKeys
) -> None:
    image = build(source, tmp_path / "dist", "1.0.0", OTHER)
    error = refusal(image, production)
    assert error.reason is Refusal.UNKNOWN_KEY and OTHER.id in str(error)
    assert refusal(image, TrustedKeys(False, ())).reason is Refusal.UNKNOWN_KEY


def test_a_signature_by_another_key_under_a_trusted_key_id_is_refused(
    source: Path, tmp_path: Path, production: TrustedKeys
) -> None:
    """An attacker's key cannot borrow the trusted key's id: the signature itself is checked."""
    forged = hostile_image([], [], OTHER).replace(OTHER.id.encode(), PRODUCTION.id.encode())
    image = tmp_path / "forged.img"
    image.write_bytes(forged)
    assert refusal(image, production).reason is Refusal.SIGNATURE


def test_a_development_key_is_refused_by_a_production_terminal(source: Path, tmp_path: Path) -> None:
    image = build(source, tmp_path / "dist", "1.0.0", DEVELOPMENT)
    data_dir = tmp_path / "data"
    trust(data_dir, PRODUCTION)
    assert refusal(image, load_trusted_keys(data_dir)).reason is Refusal.UNKNOWN_KEY
    # A development terminal takes it; the same terminal once made production-only forgets the key.
    trust(data_dir, DEVELOPMENT, development=True)
    assert verify_image(image, load_trusted_keys(data_dir), TARGET).manifest.development
    set_production(data_dir)
    assert refusal(image, load_trusted_keys(data_dir)).reason is Refusal.UNKNOWN_KEY
    # A production terminal holding the development key's public key by mistake, as a production
    # key: the manifest's label still refuses it.
    mistaken = tmp_path / "mistaken"
    trust(mistaken, PRODUCTION)
    trust(mistaken, DEVELOPMENT, development=False)
    trusted = load_trusted_keys(mistaken)
    assert not trusted.accept_development
    error = refusal(image, trusted)
    assert error.reason is Refusal.DEVELOPMENT_KEY and "production keys only" in str(error)


@pytest.mark.parametrize(
    ("installed", "highest"), [("1.0.0", None), ("2.0.0", None), (None, "1.0.0"), ("0.9.0", "1.5.0")]
)
def test_an_older_or_equal_version_is_refused(
    source: Path, tmp_path: Path, production: TrustedKeys, installed: str | None, highest: str | None
) -> None:
    image = build(source, tmp_path / "dist", "1.0.0")
    error = refusal(
        image,
        production,
        installed=Version.parse(installed) if installed else None,
        highest=Version.parse(highest) if highest else None,
    )
    assert error.reason is Refusal.VERSION


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (Target("aarch64", "3.11"), Refusal.ARCH),
        (Target("armv7l", "3.11"), Refusal.ARCH),
        (Target("x86_64", "3.12"), Refusal.PYTHON),
    ],
)
def test_an_image_for_another_terminal_is_refused(
    source: Path, tmp_path: Path, production: TrustedKeys, target: Target, reason: Refusal
) -> None:
    image = build(source, tmp_path / "dist", "1.0.0")
    assert refusal(image, production, target=target).reason is reason
    aarch64 = build(source, tmp_path / "arm", "1.0.0", arch="aarch64")
    assert verify_image(aarch64, production, Target("aarch64", "3.11")).manifest.arch == "aarch64"


DATA = b"print('x')\n"


@pytest.mark.parametrize(
    ("members", "files"),
    [
        ([regular("../evil.py", DATA)], [file_entry("../evil.py", DATA)]),
        ([regular("app/../../evil.py", DATA)], [file_entry("app/../../evil.py", DATA)]),
        ([regular("/etc/cron.d/evil", DATA)], [file_entry("/etc/cron.d/evil", DATA)]),
        ([special("app/link", tarfile.SYMTYPE, "/etc/shadow")], [file_entry("app/link", DATA)]),
        ([special("app/hard", tarfile.LNKTYPE, "../../etc/shadow")], [file_entry("app/hard", DATA)]),
        ([special("app/dev", tarfile.CHRTYPE)], [file_entry("app/dev", DATA)]),
        ([special("app/blk", tarfile.BLKTYPE)], [file_entry("app/blk", DATA)]),
        ([special("app/fifo", tarfile.FIFOTYPE)], [file_entry("app/fifo", DATA)]),
        ([regular("../evil.py", DATA)], [file_entry("app/evil.py", DATA)]),
        (
            [regular("app/x.py", DATA), regular("app/x.py/y", DATA)],
            [file_entry("app/x.py", DATA), file_entry("app/x.py/y", DATA)],
        ),
    ],
)
def test_a_path_that_escapes_the_root_is_refused(
    tmp_path: Path,
    production: TrustedKeys,
    members: list[tuple[tarfile.TarInfo, bytes]],
    files: list[dict[str, object]],
) -> None:
    image = tmp_path / "hostile.img"
    image.write_bytes(hostile_image(members, files))
    assert refusal(image, production).reason is Refusal.UNSAFE_PATH


def test_files_missing_extra_or_changed_in_a_signed_payload_are_refused(
    tmp_path: Path, production: TrustedKeys
) -> None:
    image = tmp_path / "hostile.img"
    cases = [
        ([regular("app/a.py", DATA)], [file_entry("app/a.py", DATA), file_entry("app/b.py", DATA)]),
        ([regular("app/a.py", DATA), regular("app/b.py", DATA)], [file_entry("app/a.py", DATA)]),
        ([regular("app/a.py", DATA + b"#")], [file_entry("app/a.py", DATA + b"!")]),
        ([regular("app/a.py", DATA, 0o755)], [file_entry("app/a.py", DATA)]),
        ([regular("app/a.py", DATA), regular("app/a.py", DATA)], [file_entry("app/a.py", DATA)]),
    ]
    for members, files in cases:
        image.write_bytes(hostile_image(members, files))
        assert refusal(image, production).reason is Refusal.FILE


def test_extract_checks_again_what_it_writes(source: Path, tmp_path: Path, production: TrustedKeys) -> None:
    """An image changed on the stick between verify and install is refused while it is written."""
    image = build(source, tmp_path / "dist", "1.0.0")
    verified = verify_image(image, production, TARGET)
    good = image.read_bytes()
    image.write_bytes(good[:-40] + bytes(b ^ 1 for b in good[-40:]))
    dest = tmp_path / "slot"
    dest.mkdir()
    with pytest.raises(ImageRefusedError) as caught:
        extract(verified, dest)
    assert caught.value.reason in (Refusal.PAYLOAD, Refusal.FILE)
    image.write_bytes(good)
    (tmp_path / "slot2").mkdir()
    extract(verified, tmp_path / "slot2")
    assert (tmp_path / "slot2" / "app" / "firmware" / "data" / "capk.json").is_file()
    assert oct((tmp_path / "slot2" / "bin" / "pos-flash").stat().st_mode & 0o777) == oct(0o755)
