"""The technician's tools behind the kiosk's technician menu: password, keys, card read, export, firmware.

    tech = Technician(service, passwords, settings, data_dir, target=Target.this_machine())
    tech.login(password)            LoginResult (failures counted, lock-out; a factory one: MUST_CHANGE);
                                    None when the technician has no password yet
    tech.change_password(old, new)  ChangeOutcome
    tech.keys()                     KeyRow by name, kind, version and KCV: never a key's bytes
    tech.files(".tr31")             files of that kind under the media directory (USB sticks' mounts)
    tech.export_targets()           writable directories under it, to export to
    tech.media_file("usb/a.tr31")   a typed path, checked to lie under the media directory
    tech.load_tmk(block, kbpk)      the TMK from a TR-31 block under a KBPK (`firmware.keys.tmk`,
                                    as `pos-keys load-tmk`); sign on again after it
    tech.read_card(reader)          the `pos-emv read` report (`firmware.emv.report`), summed up
    tech.export_logs(directory)     the queue view, the journal (JSON, masked) and the last lines
                                    of the terminal's log into a new directory there
    tech.check_image(path)          an image verified as `pos-flash verify` does (`firmware.update`)
    tech.install_image(path)        installed into the inactive slot as `pos-flash install` does

Every call runs on the kiosk's worker thread (the screens start them with
`ctx.run`). Paths the technician picks or types must lie under the media
directory (`settings.media_dir`, e.g. /media): nothing is read from, or
written to, anywhere else; every file read is bounded. What is exported
never holds a clear PAN (the journal keeps masked PANs, and every exported
text is passed through `mask_clear_pans` all the same) nor a key.

The settings are `firmware/data/technician.json` (`load_technician_settings`):
media_dir, slots_root (the A/B slots' root, as `pos-flash --root`),
log_file ("" for none) and log_lines (how many of its last lines go out).
A wrong value raises ConfigError naming the file and the key; a refused
path is a `MediaPathError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from firmware.config import read_config
from firmware.emv.application_list import ApplicationList, load_application_list
from firmware.emv.kernel_config import load_kernel_config
from firmware.emv.reader import CardReader
from firmware.emv.report import read_for_technician, read_report
from firmware.emv.transport import Transport
from firmware.errors import KeyStoreError, PosError
from firmware.keys.layout import KeyLayout, open_dukpt_terminal
from firmware.keys.passwords import ChangeOutcome, LoginOutcome, LoginResult, PasswordStore
from firmware.keys.tmk import install_tmk
from firmware.store.atomic_file import write_atomically
from firmware.store.sensitive import mask_clear_pans
from firmware.txn.service import TerminalService, cash_refund_view, entry_view
from firmware.update.slots import InstallResult, install, status
from firmware.update.trust import load_trusted_keys
from firmware.update.verify import Target, verify_image

__all__ = [
    "ROLE",
    "TECHNICIAN_FILE",
    "CardRead",
    "ChangeOutcome",
    "Exported",
    "ImageCheck",
    "InstallResult",
    "KeyRow",
    "LoginOutcome",
    "LoginResult",
    "MediaPathError",
    "Technician",
    "TechnicianSettings",
    "TmkLoaded",
    "load_technician_settings",
]

ROLE: Final = "technician"
TECHNICIAN_FILE: Final = "technician.json"
MAX_KEY_FILE: Final = 64 << 10  # a TR-31 block or a KBPK in hex is a few hundred bytes
MAX_LOG_TAIL: Final = 1 << 20  # the log's last MiB at most
MAX_FILES: Final = 50  # entries of a file or directory list
MAX_DEPTH: Final = 4  # how deep under the media directory files are looked for


class MediaPathError(PosError):
    """A path outside the media directory, or not the file or directory it should be."""


@dataclass(frozen=True)
class TechnicianSettings:
    media_dir: Path = Path("/media")
    slots_root: Path = Path("/opt/pos-terminal")
    log_file: Path | None = None
    log_lines: int = 500


def load_technician_settings(path: Path | str | None = None) -> TechnicianSettings:
    """The settings at `path`, or the shipped `firmware/data/technician.json`."""
    section = read_config(TECHNICIAN_FILE, path)
    section.only("media_dir", "slots_root", "log_file", "log_lines")
    media = section.text("media_dir")
    root = section.text("slots_root")
    for key, value in (("media_dir", media), ("slots_root", root)):
        if not value.startswith("/"):
            raise section.error(key, "must be an absolute path")
    log_file = section.text("log_file", default="")
    return TechnicianSettings(
        media_dir=Path(media),
        slots_root=Path(root),
        log_file=Path(log_file) if log_file else None,
        log_lines=section.integer("log_lines", minimum=1, maximum=100_000),
    )


@dataclass(frozen=True)
class KeyRow:
    """What may be shown of a key: name, kind, versions, KCV."""

    name: str
    kind: str
    version: int
    kcv: str
    block_version: str = ""


@dataclass(frozen=True)
class TmkLoaded:
    block_version_id: str  # the TR-31 key block version (B, D)
    key_version: str  # the block's key version number
    version: int  # the terminal's count of TMKs installed
    kcv: str


@dataclass(frozen=True)
class CardRead:
    """The card read report (`firmware.emv.report.read_report`, masked) and what the screen shows of it."""

    reader: str
    aid: str
    label: str
    pan: str
    expiry: str
    method: str
    apdus: int
    apdu_ms: float
    report: dict[str, Any]


@dataclass(frozen=True)
class Exported:
    directory: Path
    files: tuple[str, ...]
    journal_entries: int
    queue_rows: int
    log_lines: int | None  # None: no log file configured (or none there)


@dataclass(frozen=True)
class ImageCheck:
    path: Path
    version: str
    arch: str
    python: str
    files: int
    key_id: str
    development: bool
    installed: str | None


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            raw = file.read(limit + 1)
    except OSError as exc:
        raise KeyStoreError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise KeyStoreError(f"{what} {path} is larger than {limit} bytes")
    return raw


def _ascii(raw: bytes, path: Path, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyStoreError(f"{what} {path} is not ASCII text") from None


def _kbpk(path: Path) -> bytes:
    text = "".join(_ascii(_read_bounded(path, MAX_KEY_FILE, "KBPK file"), path, "KBPK file").split())
    try:
        kbpk = bytes.fromhex(text)
    except ValueError:
        raise KeyStoreError(f"KBPK file {path} must hold the key as hex digits") from None
    if len(kbpk) not in (16, 24, 32):
        raise KeyStoreError(f"KBPK file {path} holds {len(kbpk)} bytes; expected 16, 24 or 32")
    return kbpk


def _tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of the text file at `path` (of its last MiB at most)."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        start = max(0, size - MAX_LOG_TAIL)
        file.seek(start)
        raw = file.read(MAX_LOG_TAIL)
    text = raw.decode("utf-8", errors="replace")
    pieces = text.splitlines()
    if start > 0 and pieces:
        pieces = pieces[1:]  # the first one was cut
    return pieces[-lines:]


class Technician:
    """The technician menu's tools over one terminal (its service, passwords and directories)."""

    def __init__(
        self,
        service: TerminalService,
        passwords: PasswordStore,
        settings: TechnicianSettings,
        data_dir: Path,
        *,
        target: Target,
        clock: Callable[[], datetime] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        applications: ApplicationList | None = None,
    ) -> None:
        self.service = service
        self.passwords = passwords
        self.settings = settings
        self.data_dir = Path(data_dir)
        self.target = target
        self._clock = clock or (lambda: datetime.now().astimezone())
        self._random_bytes = random_bytes
        self._applications = applications

    # ----- password ---------------------------------------------------------------------------

    def login(self, password: str) -> LoginResult | None:
        """The technician's login (counted towards the lock-out); None: no technician password is set."""
        if ROLE not in self.passwords.roles():
            return None
        return self.passwords.verify(ROLE, password)

    def change_password(self, old: str, new: str) -> ChangeOutcome:
        return self.passwords.change_password(ROLE, old, new)

    # ----- media ------------------------------------------------------------------------------

    @property
    def media_dir(self) -> Path:
        return self.settings.media_dir

    def _inside(self, path: Path) -> Path:
        media = self.media_dir.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(media):
            raise MediaPathError(f"{path} is not under {self.media_dir}")
        return resolved

    def media_file(self, typed: str) -> Path:
        """A typed path (relative to the media directory, or absolute under it) of an existing file."""
        typed = typed.strip()
        if not typed:
            raise MediaPathError("no path typed")
        path = self._inside(self.media_dir / typed)
        if not path.is_file():
            raise MediaPathError(f"no file {path}")
        return path

    def media_directory(self, typed: str) -> Path:
        typed = typed.strip()
        path = self._inside(self.media_dir / typed) if typed else self.media_dir.resolve()
        if not path.is_dir():
            raise MediaPathError(f"no directory {path}")
        return path

    def _walk(self) -> list[tuple[Path, list[str], list[str]]]:
        """The media directory's tree, MAX_DEPTH deep, hidden entries and links left out."""
        top = self.media_dir
        found: list[tuple[Path, list[str], list[str]]] = []
        for directory, subdirs, names in os.walk(top, followlinks=False):
            here = Path(directory)
            depth = len(here.relative_to(top).parts)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and depth < MAX_DEPTH)
            found.append((here, subdirs, sorted(n for n in names if not n.startswith("."))))
        return found

    def files(self, suffix: str) -> list[Path]:
        """Regular files named `*suffix` under the media directory (sorted, at most MAX_FILES)."""
        out: list[Path] = []
        for here, _, names in self._walk():
            for name in names:
                path = here / name
                if name.lower().endswith(suffix) and path.is_file() and not path.is_symlink():
                    out.append(path)
        return sorted(out)[:MAX_FILES]

    def export_targets(self) -> list[Path]:
        """Directories one or two levels under the media directory this process may write to."""
        out: list[Path] = []
        for here, _, _ in self._walk():
            depth = len(here.relative_to(self.media_dir).parts)
            if 1 <= depth <= 2 and not here.is_symlink() and os.access(here, os.W_OK | os.X_OK):
                out.append(here)
        return sorted(out)[:MAX_FILES]

    # ----- keys -------------------------------------------------------------------------------

    def keys(self) -> list[KeyRow]:
        """The key store's keys and the DUKPT device (by its initial key's KCV), as `pos-keys list`."""
        rows = [
            KeyRow(info.name, info.kind, info.version, info.kcv, info.block_version)
            for info in self.service.ctx.keys.list()
        ]
        terminal = open_dukpt_terminal(KeyLayout.under(self.data_dir))
        if terminal.is_loaded():
            info = terminal.info()
            rows.append(KeyRow("DUKPT", info.algorithm, 0, info.kcv, info.key_version))
        return rows

    def load_tmk(self, block_path: Path, kbpk_path: Path) -> TmkLoaded:
        """Install the TMK of the TR-31 block file under the KBPK file (both under the media directory)."""
        block_path, kbpk_path = self._inside(block_path), self._inside(kbpk_path)
        kbpk = _kbpk(kbpk_path)
        block = _ascii(
            _read_bounded(block_path, MAX_KEY_FILE, "key block file"), block_path, "key block file"
        )
        header, info = install_tmk(self.service.ctx.keys, kbpk, block.strip())
        return TmkLoaded(header.version_id, info.block_version, info.version, info.kcv)

    # ----- card -------------------------------------------------------------------------------

    def read_card(self, reader: CardReader) -> CardRead:
        """Power the card, read its application as `pos-emv read` does, power it off."""
        applications = self._applications or load_application_list()
        terminal_data = load_kernel_config(applications=applications).terminal_data()
        transport = Transport(reader)
        with transport.session():
            data = read_for_technician(
                transport, applications, terminal_data, now=self._clock(), random_bytes=self._random_bytes
            )
            report = read_report(transport, data)
        trace = transport.display_trace()
        application = report["application"]
        assert isinstance(application, dict)
        return CardRead(
            reader=str(report["reader"]),
            aid=str(application["aid"]),
            label=str(application.get("label") or ""),
            pan=str(report["pan"] or ""),
            expiry=str(report["expiry"] or ""),
            method=str(data.selection_method),
            apdus=len(trace),
            apdu_ms=round(sum(float(str(entry["ms"])) for entry in trace), 1),
            report=report,
        )

    # ----- export -----------------------------------------------------------------------------

    def export_logs(self, directory: Path) -> Exported:
        """Write queue.json, journal.json and log.txt (when a log is configured) into a new directory."""
        base = self._inside(directory)
        if not base.is_dir():
            raise MediaPathError(f"no directory {base}")
        now = self._clock()
        terminal = self.service.ctx.identity.terminal_id
        name = f"pos-export-{terminal}-{now:%Y%m%d-%H%M%S}"
        target = base / name
        number = 1
        while target.exists():
            number += 1
            target = base / f"{name}-{number}"
        target.mkdir()
        queue = self.service.queue()
        entries = self.service.journal()
        journal = {
            "terminal": terminal,
            "merchant": self.service.ctx.identity.merchant_id,
            "exported": now.isoformat(),
            "entries": [entry_view(entry) for entry in entries],
            "cash_refunds": [cash_refund_view(refund) for refund in self.service.cash_refunds()],
        }
        texts = {
            "queue.json": json.dumps(queue, ensure_ascii=False, indent=1, default=str) + "\n",
            "journal.json": json.dumps(journal, ensure_ascii=False, indent=1, default=str) + "\n",
        }
        log_lines: int | None = None
        log_file = self.settings.log_file
        if log_file is not None and log_file.is_file():
            tail = _tail(log_file, self.settings.log_lines)
            log_lines = len(tail)
            texts["log.txt"] = "".join(line + "\n" for line in tail)
        for file_name, text in texts.items():
            write_atomically(target / file_name, mask_clear_pans(text).encode("utf-8"))
        return Exported(target, tuple(texts), len(entries), int(queue.get("count", 0)), log_lines)

    # ----- firmware ---------------------------------------------------------------------------

    def check_image(self, path: Path) -> ImageCheck:
        """Verify the image as `pos-flash verify` does; ImageRefusedError (one line) when refused."""
        path = self._inside(path)
        now = status(self.settings.slots_root, self.data_dir)
        installed = now.slot(now.current).version if now.current else None
        verified = verify_image(path, load_trusted_keys(self.data_dir), self.target, installed, now.highest)
        manifest = verified.manifest
        return ImageCheck(
            path,
            str(manifest.version),
            manifest.arch,
            manifest.python,
            len(manifest.files),
            verified.key.id,
            manifest.development or verified.key.development,
            str(installed) if installed else None,
        )

    def install_image(self, path: Path) -> InstallResult:
        """Install the image into the inactive slot and switch to it on trial, as `pos-flash install`."""
        path = self._inside(path)
        return install(
            path, self.settings.slots_root, self.data_dir, load_trusted_keys(self.data_dir), self.target
        )
