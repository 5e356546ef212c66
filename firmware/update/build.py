"""Building a firmware image from the source tree (the build machine's side of `manifest.py`).

The image holds, under its root:

    app/firmware/...                the application package with firmware/data (default configuration,
                                    terms, CA public keys capk.json); never sim/, tests or caches
    wheels/*.whl                    the dependencies of setup.cfg for the target architecture and Python
    systemd/pos-terminal.service    the kiosk unit (boot decision, migrations, watchdog, no core dumps)
    bin/pos-terminal, bin/pos-flash launchers that run this slot's code with this slot's wheels

Where wheels come from is passed in (`WheelSource`): `PipDownload` asks pip
for binary wheels of the target (`pip download --only-binary=:all:
--platform ... --python-version ...`) and names every requirement it could
not get (compiled ones such as pyscard and pygame may have no wheel for a
target: build them there and give their directory); `WheelDirectory` takes
them from a local directory; `NoWheels` ships none (the target provides them).

Reproducible: the same source, version, target, SOURCE_DATE_EPOCH, wheels
and key give the same bytes (see `image.pack_payload`; Ed25519 signatures
are deterministic).
"""

from __future__ import annotations

import configparser
import hashlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from firmware.errors import ImageBuildError
from firmware.store.atomic_file import write_atomically
from firmware.update.image import PayloadFile, pack_payload, seal
from firmware.update.manifest import ARCHES, MANIFEST_FORMAT, PRODUCT, Version, check_path
from firmware.update.trust import SigningKey

__all__ = [
    "REQUIRED_DATA",
    "BuildRequest",
    "NoWheels",
    "PipDownload",
    "WheelDirectory",
    "WheelSource",
    "build_image",
    "image_name",
    "kiosk_unit",
    "requirements",
]

REQUIRED_DATA: Final = ("capk.json", "terms.json", "host.json", "identity.json")
INSTALL_ROOT: Final = "/opt/pos-terminal"
DATA_DIR: Final = "/var/lib/pos-terminal"
_PLATFORMS: Final = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
    "aarch64": ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "armv7l": ("manylinux_2_31_armv7l", "manylinux_2_17_armv7l", "manylinux2014_armv7l", "linux_armv7l"),
}
_WHEEL_NAME = re.compile(
    r"(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl"
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def requirements(source: Path) -> list[str]:
    """setup.cfg's install_requires (pinned `name==version` lines)."""
    parser = configparser.ConfigParser()
    if not parser.read(Path(source) / "setup.cfg", encoding="utf-8"):
        raise ImageBuildError(f"{source}/setup.cfg cannot be read")
    lines = parser.get("options", "install_requires", fallback="")
    return [line.strip() for line in lines.splitlines() if line.strip()]


class WheelSource(Protocol):
    def fetch(self, requirements: Sequence[str], arch: str, python: str, dest: Path) -> list[Path]:
        """Wheels of `requirements` (and what they need) for the target, as files under `dest`."""
        ...


class NoWheels:
    """Ship no dependency: the target already has them (or a test that needs no network)."""

    def fetch(self, requirements: Sequence[str], arch: str, python: str, dest: Path) -> list[Path]:
        return []


def _wheel_fits(name: str, arch: str, python: str) -> bool:
    match = _WHEEL_NAME.fullmatch(name)
    if match is None:
        return False
    cp = "cp" + python.replace(".", "")
    minor = int(python.split(".")[1])
    pythons = match["py"].split(".")
    python_ok = any(
        tag in ("py3", f"py{python.replace('.', '')}", cp)
        or (match["abi"] == "abi3" and re.fullmatch(r"cp3(\d+)", tag) and int(tag[3:]) <= minor)
        for tag in pythons
    )
    platform_ok = any(tag == "any" or tag.endswith(f"_{arch}") for tag in match["plat"].split("."))
    return python_ok and platform_ok


def _requirement_name(requirement: str) -> str:
    return _normalise(re.split(r"[=<>!~; \[]", requirement, maxsplit=1)[0])


@dataclass(frozen=True)
class WheelDirectory:
    """Every wheel of a local directory that fits the target; each requirement must be among them."""

    directory: Path

    def fetch(self, requirements: Sequence[str], arch: str, python: str, dest: Path) -> list[Path]:
        fitting = sorted(p for p in Path(self.directory).glob("*.whl") if _wheel_fits(p.name, arch, python))
        present = {_normalise(p.name.split("-")[0]) for p in fitting}
        missing = [r for r in requirements if _requirement_name(r) not in present]
        if missing:
            raise ImageBuildError(
                f"no wheel for {', '.join(missing)} for {arch} / CPython {python} in {self.directory} "
                "(build compiled ones for the target with `pip wheel` there)"
            )
        return fitting


@dataclass(frozen=True)
class PipDownload:
    """`pip download` of binary wheels for the target (needs the network or a pip index)."""

    python: str = sys.executable
    run: Callable[[list[str]], int] = lambda argv: subprocess.run(argv, check=False).returncode  # noqa: S603

    def fetch(self, requirements: Sequence[str], arch: str, python: str, dest: Path) -> list[Path]:
        missing = []
        for requirement in requirements:
            argv = [
                self.python,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--dest",
                str(dest),
            ]
            argv += [f"--platform={tag}" for tag in _PLATFORMS[arch]]
            argv += ["--python-version", python, "--implementation", "cp", requirement]
            if self.run(argv) != 0:
                missing.append(requirement)
        if missing:
            raise ImageBuildError(
                f"pip found no binary wheel of {', '.join(missing)} for {arch} / CPython {python} "
                "(build them for the target and pass --wheels DIR)"
            )
        return sorted(p for p in Path(dest).glob("*.whl") if _wheel_fits(p.name, arch, python))


@dataclass(frozen=True)
class BuildRequest:
    source: Path
    out_dir: Path
    version: Version
    arch: str
    python: str
    build_time: int
    key: SigningKey
    wheels: WheelSource


def kiosk_unit() -> str:
    """The systemd unit of the kiosk: `pos-flash boot` (from the current slot, else from either slot's
    code, so a slot whose own code cannot start is still counted and rolled back), then the data
    migrations of the chosen slot, then the kiosk under a watchdog; no core dumps."""
    current = f"{INSTALL_ROOT}/current/files/bin/pos-flash"
    fallbacks = " || ".join(f"{INSTALL_ROOT}/slots/{s}/files/bin/pos-flash boot" for s in ("a", "b"))
    return f"""[Unit]
Description=POS terminal kiosk (reverse transactions)
Wants=pcscd.service
After=pcscd.service network-online.target
StartLimitIntervalSec=0

[Service]
Type=notify
NotifyAccess=main
User=pos
Group=pos
Environment=POS_ROOT={INSTALL_ROOT}
Environment=POS_DATA_DIR={DATA_DIR}
ExecStartPre=/bin/sh -c '{current} boot || {fallbacks}'
ExecStartPre={current} migrate
ExecStart={INSTALL_ROOT}/current/files/bin/pos-terminal
WatchdogSec=30
Restart=on-failure
RestartSec=2
LimitCORE=0
NoNewPrivileges=yes
UMask=0077

[Install]
WantedBy=multi-user.target
"""


_LAUNCHER: Final = """#!/bin/sh
# {what}, from the slot this file lies in: its own code, its own wheels.
SLOT=$(cd "$(dirname "$0")/../.." && pwd -P)
PYTHONPATH="$SLOT/files/app:$SLOT/site" exec python3 -s {run} "$@"
"""


def _application_files(source: Path) -> list[PayloadFile]:
    package = Path(source) / "firmware"
    if not (package / "__init__.py").is_file():
        raise ImageBuildError(f"{package} is not the firmware package")
    missing = [name for name in REQUIRED_DATA if not (package / "data" / name).is_file()]
    if missing:
        raise ImageBuildError(f"firmware/data lacks {', '.join(missing)}")
    files = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            raise ImageBuildError(f"{relative} is a symbolic link; an image holds regular files only")
        files.append(PayloadFile(f"app/{relative.as_posix()}", path.read_bytes()))
    return files


def image_name(version: Version, arch: str) -> str:
    return f"{PRODUCT}-{version}-{arch}.img"


def build_image(request: BuildRequest) -> Path:
    """Build, sign and write the image; returns its path under request.out_dir. Raises ImageBuildError."""
    if request.arch not in ARCHES:
        raise ImageBuildError(f"unknown architecture {request.arch!r} (one of {', '.join(ARCHES)})")
    if re.fullmatch(r"3\.\d{1,2}", request.python) is None:
        raise ImageBuildError(f"target Python {request.python!r} is not 3.N")
    if request.build_time < 0:
        raise ImageBuildError("SOURCE_DATE_EPOCH must not be negative")
    files = _application_files(request.source)
    with tempfile.TemporaryDirectory(prefix="pos-image-wheels-") as scratch:
        wheels = request.wheels.fetch(
            requirements(request.source), request.arch, request.python, Path(scratch)
        )
        files += [PayloadFile(f"wheels/{wheel.name}", wheel.read_bytes()) for wheel in wheels]
    files.append(PayloadFile("systemd/pos-terminal.service", kiosk_unit().encode("ascii")))
    for name, what, run in (
        ("pos-terminal", "The kiosk", "-m firmware"),
        (
            "pos-flash",
            "The firmware updater",
            "-c 'import sys; from firmware.__main__ import flash_main; sys.exit(flash_main())'",
        ),
    ):
        files.append(PayloadFile(f"bin/{name}", _LAUNCHER.format(what=what, run=run).encode("ascii"), 0o755))
    for file in files:
        check_path(file.path)
    files.sort(key=lambda f: f.path)
    manifest: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "product": PRODUCT,
        "version": str(request.version),
        "arch": request.arch,
        "python": request.python,
        "build_time": request.build_time,
        "signing_key": {"id": request.key.id, "development": request.key.development},
        "files": [
            {
                "path": f.path,
                "size": len(f.data),
                "sha256": hashlib.sha256(f.data).hexdigest(),
                "mode": f.mode,
            }
            for f in files
        ],
    }
    image = seal(manifest, pack_payload(files), request.key.private)
    out = Path(request.out_dir) / image_name(request.version, request.arch)
    write_atomically(out, image)
    return out
