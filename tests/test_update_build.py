"""Building an image: reproducible bytes, what it ships, where its wheels come from (no network)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from firmware.errors import ImageBuildError
from firmware.update.build import PipDownload, WheelDirectory, kiosk_unit, requirements
from firmware.update.trust import load_trusted_keys
from firmware.update.verify import Target, verify_image
from tests.flash_fixtures import DEVELOPMENT, EPOCH, PRODUCTION, TARGET, build, small_source, trust

REPO = Path(__file__).resolve().parent.parent


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = build(REPO, tmp_path / "one", "1.0.0").read_bytes()
    second = build(REPO, tmp_path / "two", "1.0.0").read_bytes()
    assert first == second
    assert build(REPO, tmp_path / "three", "1.0.0", epoch=EPOCH + 1).read_bytes() != first


def test_the_image_of_the_project_ships_firmware_only_with_its_data_and_unit(tmp_path: Path) -> None:
    image = build(REPO, tmp_path / "dist", "1.0.0")
    assert image.name == "pos-terminal-1.0.0-x86_64.img"
    trust(tmp_path / "data", PRODUCTION)
    manifest = verify_image(image, load_trusted_keys(tmp_path / "data"), TARGET).manifest
    paths = {entry.path for entry in manifest.files}
    for shipped in ("capk.json", "terms.json", "host.json", "identity.json"):
        assert f"app/firmware/data/{shipped}" in paths
    assert "app/firmware/update/verify.py" in paths and "bin/pos-flash" in paths
    assert not any(p.startswith(("app/sim", "app/tests")) or "__pycache__" in p for p in paths)
    assert manifest.build_time == EPOCH and not manifest.development


def test_the_kiosk_unit_has_its_watchdog_no_core_dumps_and_restarts() -> None:
    unit = kiosk_unit()
    for line in (
        "WatchdogSec=30",
        "LimitCORE=0",
        "Restart=on-failure",
        "pos-flash boot",
        "pos-flash migrate",
    ):
        assert line in unit


def test_a_development_key_is_labelled_in_the_manifest(tmp_path: Path) -> None:
    image = build(small_source(tmp_path / "src"), tmp_path / "dist", "1.0.0", DEVELOPMENT)
    trust(tmp_path / "data", DEVELOPMENT, development=True)
    assert verify_image(image, load_trusted_keys(tmp_path / "data"), TARGET).manifest.development


def _wheel(directory: Path, name: str) -> None:
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr(f"{name.split('-')[0]}/__init__.py", "")


def test_wheels_come_from_a_local_directory_for_the_target(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "tinydb-4.9.0-py3-none-any.whl")
    _wheel(wheels, "cffi-2.1.1-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    _wheel(wheels, "cffi-2.1.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    _wheel(wheels, "cffi-2.1.1-cp312-cp312-manylinux_2_17_x86_64.whl")
    source = small_source(tmp_path / "src")
    image = build(source, tmp_path / "dist", "1.0.0", arch="aarch64", wheels=WheelDirectory(wheels))
    trust(tmp_path / "data", PRODUCTION)
    manifest = verify_image(image, load_trusted_keys(tmp_path / "data"), Target("aarch64", "3.11")).manifest
    assert sorted(e.path for e in manifest.files if e.path.startswith("wheels/")) == [
        "wheels/cffi-2.1.1-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "wheels/tinydb-4.9.0-py3-none-any.whl",
    ]


def test_a_compiled_dependency_missing_for_the_target_is_named(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "pygame-2.6.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    _wheel(wheels, "tinydb-4.9.0-py3-none-any.whl")
    source = small_source(tmp_path / "src")
    (source / "setup.cfg").write_text("[options]\ninstall_requires =\n    pygame==2.6.1\n    tinydb==4.9.0\n")
    build(source, tmp_path / "x86", "1.0.0", wheels=WheelDirectory(wheels))
    with pytest.raises(ImageBuildError, match=r"pygame==2\.6\.1 for armv7l / CPython 3\.11"):
        build(source, tmp_path / "arm", "1.0.0", arch="armv7l", wheels=WheelDirectory(wheels))


def test_pip_is_asked_for_binary_wheels_of_the_target_and_its_refusals_are_named(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def pip(argv: list[str]) -> int:
        calls.append(argv)
        return 1 if "pyscard==2.3.1" in argv else 0

    source = small_source(tmp_path / "src")
    (source / "setup.cfg").write_text(
        "[options]\ninstall_requires =\n    pyscard==2.3.1\n    tinydb==4.9.0\n"
    )
    with pytest.raises(ImageBuildError, match=r"pyscard==2\.3\.1 for aarch64 / CPython 3\.11"):
        build(source, tmp_path / "dist", "1.0.0", arch="aarch64", wheels=PipDownload(run=pip))
    assert len(calls) == 2
    assert "--only-binary=:all:" in calls[0] and "--platform=manylinux2014_aarch64" in calls[0]
    assert calls[0][calls[0].index("--python-version") + 1] == "3.11"


def test_requirements_are_those_of_setup_cfg() -> None:
    assert "pyscard==2.3.1" in requirements(REPO) and "pygame==2.6.1" in requirements(REPO)


def test_an_unknown_architecture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="unknown architecture"):
        build(small_source(tmp_path / "src"), tmp_path / "dist", "1.0.0", arch="mips")
