"""The anti-rollback record: what may only move forward, sealed in one file, and checked by every reader.

Threat: someone with the storage in hand (a technician's image, a card reader on the flash) keeps a
copy of a file and puts it back later, deletes it, or edits it. Every file here is authenticated
(sealed or signed), so an edit is found; but an OLDER authentic copy is authentic too: it would bring
back the old TMK and working keys (`keystore.json`), hand DUKPT counters out again (`dukpt.json`),
or make acknowledged requests pending again (`txn/open.json`). This record says which state of each
guarded file is the current one, and keeps the facts that must survive even a file legitimately
removed (the highest TMK version installed, the initial DUKPT keys ever loaded, the outbox sequence
and its chain head).

File `DATA/keys/monotonic.json` (mode 0600):

    {"format": "pos-monotonic-1", "device_key_id": ID, "generation": G, "nonce": HEX, "sealed": HEX}

`sealed` is AES-256-GCM under the device key (`firmware.keys.device`), associated data
`["pos-monotonic-1", ID, G]`, of the canonical JSON

    {"generation": G, "tpm": T | null,
     "files": {NAME: {"digest": SHA256 | null, "next": SHA256 | null, "facts": {...}}}}

`digest` is the SHA-256 of the guarded file's bytes as last committed (null: the file does not
exist); `next` is the digest of the bytes a writer is about to put there (null: no write under way);
`facts` only move forward (a number never goes down, a list only grows; see `merge_facts`).

Update protocol (the same crash-safe step for two files): a writer holds the guarded file's lock
(`firmware.store.atomic_file.locked`) throughout and

1. checks the file as it is now (below) and writes the record with `next` = digest of the new bytes
   and the new facts merged in (intent);
2. replaces the file (temp, fsync, rename, fsync dir);
3. writes the record with `digest` = that digest, `next` = null (commit); only then does the caller
   act on the new state (return the DUKPT keys, report the key installed, send the next record).

Each record write is itself crash-safe and done under the record's own lock (taken after the file's,
never before: no deadlock). A power cut between 1 and 2 leaves the old file and an intent: the old
file is accepted (it is `digest`). Between 2 and 3 it leaves the new file and an intent: the new file
is accepted (it is `next`). Either way the caller had not acted on the new state yet, so accepting
the old one is the same as the cut coming before the call. A reader holding the file's lock tidies
up: it commits `next` when it finds the new file, clears it when it finds the old one. Once step 3
is done, only the new bytes are accepted: every older copy has another digest.

What every reader checks (`GuardedFile.read` / `verify`): the file's bytes are `digest` or `next`;
a missing file is accepted only when `digest` is null; a file the record does not know is refused
(the record was lost or replaced; `adopt` is the technician's way back). A check that fails without
the file's lock is repeated under it (a writer in another process may have been between two steps),
and then raises RolledBackError naming the file: nothing is changed, nothing is started empty.

The record itself could be put back together with all the files (the whole data directory at
once). Against that only hardware helps: with a TPM 2.0 NV counter (`Tpm2NvCounter`, found by
`detect_hardware_counter`), each commit writes `tpm` = the counter + 1 into the record, then
increments the counter; a reader accepts a record whose `tpm` is the counter (or one more: a cut
before the increment, finished by the next commit) and refuses an older one, and a missing record
while the counter is above zero. Without a TPM a process still refuses a record older than one it
has already seen, but a copy of the whole directory put back while the terminal is off is accepted:
the README's security section says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag

from firmware.errors import MalformedFileError, RolledBackError, StoreError
from firmware.keys.device import DeviceKey
from firmware.randomness import Rng
from firmware.store.atomic_file import locked, write_atomically
from firmware.store.guard import Facts
from firmware.store.json_guard import load_json

__all__ = [
    "RECORD_FILE_NAME",
    "GuardedFile",
    "HardwareCounter",
    "MonotonicRecord",
    "Tpm2NvCounter",
    "detect_hardware_counter",
    "file_digest",
    "merge_facts",
]

log = logging.getLogger(__name__)

RECORD_FILE_NAME: Final = "monotonic.json"
_FORMAT: Final = "pos-monotonic-1"
_NONCE_LENGTH: Final = 12
_MAX_RECORD_BYTES: Final = 1 << 20
_HEX: Final = frozenset("0123456789abcdef")
TPM_DEVICE: Final = Path("/dev/tpmrm0")
DEFAULT_TPM_NV_INDEX: Final = 0x01500016
_TPM_TOOLS: Final = ("tpm2_nvread", "tpm2_nvincrement", "tpm2_nvdefine", "tpm2_nvreadpublic")


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def merge_facts(old: Mapping[str, Any], new: Facts) -> dict[str, Any]:
    """`old` with `new` merged in, never backwards: a number keeps the larger, a list the union
    (sorted), a text is replaced (its writer checked it moves forward), None leaves the old value."""
    merged = dict(old)
    for key, value in new.items():
        before = merged.get(key)
        if value is None:
            continue
        if isinstance(value, bool):
            raise StoreError(f"fact {key!r}: a fact is a number, a text or a list of texts, not a flag")
        if isinstance(value, int):
            merged[key] = max(value, before) if isinstance(before, int) else value
        elif isinstance(value, str):
            merged[key] = value
        elif isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
            merged[key] = sorted(set(before if isinstance(before, list) else []) | set(value))
        else:
            raise StoreError(f"fact {key!r}: a fact is a number, a text or a list of texts")
    return merged


# ----- hardware counter --------------------------------------------------------------------------


class HardwareCounter(Protocol):
    """A counter the data directory cannot take back (a TPM NV counter): read, and add one."""

    def read(self) -> int: ...

    def increment(self) -> None: ...


class Tpm2NvCounter:
    """A TPM 2.0 NV counter index, through tpm2-tools (`tpm2_nvread`, `tpm2_nvincrement`).

    `tools` maps each tool's name to its absolute path (`detect_hardware_counter` finds them). The
    index is defined on first use (`tpm2_nvdefine`, attributes nt=counter, owner read and write).
    The TCTI is tpm2-tools' own choice (`TPM2TOOLS_TCTI`, else /dev/tpmrm0).
    """

    def __init__(self, tools: Mapping[str, str], index: int = DEFAULT_TPM_NV_INDEX, *, timeout: float = 10.0):
        missing = [tool for tool in _TPM_TOOLS if tool not in tools]
        if missing:
            raise StoreError(f"TPM counter: tpm2-tools missing ({', '.join(missing)})")
        self.index = index
        self._tools = dict(tools)
        self._timeout = timeout
        self._defined = False

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        argv = [self._tools[tool], *args]
        try:  # a fixed tool path and fixed arguments: nothing from outside reaches the command line
            done = subprocess.run(argv, capture_output=True, timeout=self._timeout, check=False)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"TPM counter {self.index:#x}: {tool} failed: {exc}") from exc
        if check and done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise StoreError(f"TPM counter {self.index:#x}: {tool} failed: {detail[0][:200]}")
        return done

    def _ensure_defined(self) -> None:
        if self._defined:
            return
        if self._run("tpm2_nvreadpublic", f"{self.index:#x}", check=False).returncode != 0:
            attributes = "ownerread|ownerwrite|nt=counter"
            self._run("tpm2_nvdefine", f"{self.index:#x}", "-C", "o", "-s", "8", "-a", attributes)
            self._run("tpm2_nvincrement", "-C", "o", f"{self.index:#x}")  # a counter reads once written
        self._defined = True

    def read(self) -> int:
        self._ensure_defined()
        raw = self._run("tpm2_nvread", "-C", "o", "-s", "8", f"{self.index:#x}").stdout
        if len(raw) != 8:
            raise StoreError(f"TPM counter {self.index:#x}: read {len(raw)} bytes, expected 8")
        return int.from_bytes(raw, "big")

    def increment(self) -> None:
        self._ensure_defined()
        self._run("tpm2_nvincrement", "-C", "o", f"{self.index:#x}")


def detect_hardware_counter(environ: Mapping[str, str] | None = None) -> tuple[HardwareCounter | None, str]:
    """The TPM NV counter when this machine has one and tpm2-tools, else None; and a sentence saying which.

    `POS_TPM_NV_INDEX` (hex) chooses the index; `POS_TPM=off` turns the TPM off knowingly; a
    `TPM2TOOLS_TCTI` set in the environment counts as a TPM (a software TPM in a test, say).
    """
    environ = os.environ if environ is None else environ
    if environ.get("POS_TPM", "").lower() == "off":
        return None, "TPM turned off (POS_TPM=off): a whole data directory put back is not detected"
    has_device = TPM_DEVICE.exists() or bool(environ.get("TPM2TOOLS_TCTI"))
    tools = {tool: path for tool in _TPM_TOOLS if (path := shutil.which(tool)) is not None}
    missing = [tool for tool in _TPM_TOOLS if tool not in tools]
    if not has_device:
        return None, f"no TPM ({TPM_DEVICE} absent): a whole data directory put back is not detected"
    if missing:
        return None, (f"TPM present but tpm2-tools missing ({', '.join(missing)}): a whole data directory "
                      "put back is not detected")  # fmt: skip
    try:
        index = int(environ.get("POS_TPM_NV_INDEX", hex(DEFAULT_TPM_NV_INDEX)), 16)
    except ValueError:
        return None, "POS_TPM_NV_INDEX is not a hex number: TPM counter not used"
    return Tpm2NvCounter(tools, index), f"TPM NV counter {index:#x} binds the anti-rollback record"


# ----- the record --------------------------------------------------------------------------------


@dataclass
class _FileState:
    digest: str | None = None
    next: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "next": self.next, "facts": self.facts}


@dataclass
class _State:
    generation: int
    tpm: int | None
    files: dict[str, _FileState]


def _aad(device_key_id: str, generation: int) -> bytes:
    return json.dumps([_FORMAT, device_key_id, generation], separators=(",", ":")).encode()


def _hex_digest(value: object) -> bool:
    return value is None or (isinstance(value, str) and len(value) == 64 and set(value) <= _HEX)


class MonotonicRecord:
    """The sealed anti-rollback record at `path`, under `device_key`; `counter` binds it to hardware."""

    def __init__(
        self,
        path: Path,
        device_key: DeviceKey,
        *,
        counter: HardwareCounter | None = None,
        rng: Rng = os.urandom,
    ) -> None:
        self.path = Path(path)
        self._device_key = device_key
        self._counter = counter
        self._rng = rng
        self._seen = 0  # the highest generation this process has read or written
        self._hardware: int | None = None  # the counter as last read (None: not read yet)
        self._parsed: tuple[bytes, _State] | None = None

    @classmethod
    def beside(cls, directory: Path, device_key: DeviceKey) -> MonotonicRecord:
        """The record of the key directory `directory` (no hardware counter: the composition root's)."""
        return cls(Path(directory) / RECORD_FILE_NAME, device_key)

    @property
    def hardware_bound(self) -> bool:
        return self._counter is not None

    def guard(self, name: str, path: Path) -> GuardedFile:
        """The guard of the file `path`, known in the record as `name`."""
        return GuardedFile(self, name, Path(path))

    def facts(self, name: str) -> dict[str, Any]:
        """The facts recorded for `name` (empty when none)."""
        state = self._read().files.get(name)
        return dict(state.facts) if state else {}

    # ----- reading -------------------------------------------------------------------------------

    def _refuse(self, message: str) -> RolledBackError:
        return RolledBackError(f"anti-rollback record {self.path}: {message}", str(self.path))

    def _read(self) -> _State:
        try:
            with self.path.open("rb") as file:
                raw = file.read(_MAX_RECORD_BYTES + 1)
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise StoreError(f"cannot read the anti-rollback record {self.path}: {exc.strerror}") from exc
        if raw is None:
            if self._seen:
                raise self._refuse("missing, though this process has read it: deleted while in use")
            if self._counter is not None and self._hardware_value() > 0:
                raise self._refuse("missing while the TPM counter says it was written: refusing every file")
            return _State(0, None, {})
        if self._parsed is not None and self._parsed[0] == raw:
            state = self._parsed[1]
        else:
            state = self._open(raw)
            self._parsed = (raw, state)
        if state.generation < self._seen:
            raise self._refuse(
                f"generation {state.generation} is older than {self._seen}, read before: it was put back"
            )
        self._check_hardware(state)
        self._seen = state.generation
        return state

    def _open(self, raw: bytes) -> _State:
        def damaged(what: str) -> StoreError:
            return StoreError(f"anti-rollback record {self.path} is damaged: {what}")

        if len(raw) > _MAX_RECORD_BYTES:
            raise damaged("larger than any record")
        try:
            document = load_json(raw, str(self.path))
        except MalformedFileError as exc:
            raise damaged("not valid JSON") from exc
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise damaged("unknown format")
        owner = document.get("device_key_id")
        if owner != self._device_key.key_id:
            raise StoreError(
                f"anti-rollback record {self.path} was written under another device key "
                f"(record {owner}, this device {self._device_key.key_id}): wrong device key"
            )
        generation, nonce, sealed = document.get("generation"), document.get("nonce"), document.get("sealed")
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
            raise damaged("field 'generation'")
        if not isinstance(nonce, str) or not isinstance(sealed, str):
            raise damaged("fields 'nonce' and 'sealed'")
        try:
            aad = _aad(owner, generation)
            plain = self._device_key.open(bytes.fromhex(sealed), aad, bytes.fromhex(nonce))
        except (ValueError, InvalidTag) as exc:
            raise StoreError(
                f"anti-rollback record {self.path} fails authentication (file tampered or damaged)"
            ) from exc
        try:
            body = load_json(plain, str(self.path))  # authentic from here on: written by this firmware
        except MalformedFileError as exc:
            raise damaged("its sealed body is not valid JSON") from exc
        files = {
            name: _FileState(entry["digest"], entry["next"], dict(entry["facts"]))
            for name, entry in body["files"].items()
        }
        if body["generation"] != generation or not all(
            _hex_digest(f.digest) and _hex_digest(f.next) for f in files.values()
        ):
            raise damaged("sealed body does not match its header")
        return _State(generation, body.get("tpm"), files)

    def _hardware_value(self, *, fresh: bool = False) -> int:
        assert self._counter is not None
        if fresh or self._hardware is None:
            self._hardware = self._counter.read()
        return self._hardware

    def _check_hardware(self, state: _State) -> None:
        if self._counter is None:
            return
        for fresh in (False, True):  # another process may have moved the counter since it was read here
            hardware = self._hardware_value(fresh=fresh)
            if state.tpm is None and hardware == 0:
                return
            if state.tpm is not None and state.tpm in (hardware, hardware + 1):
                return
        raise self._refuse(
            f"bound to TPM counter value {state.tpm}, the TPM says {self._hardware}: an older record "
            "(the whole data directory put back?) or another TPM; refusing every file"
        )

    # ----- writing -------------------------------------------------------------------------------

    def _update(self, change: Callable[[dict[str, _FileState]], None], *, commit: bool) -> None:
        """One read-modify-write of the record under its lock; a commit also moves the TPM counter."""
        with locked(self.path):
            state = self._read()
            files = {name: _FileState(s.digest, s.next, dict(s.facts)) for name, s in state.files.items()}
            change(files)
            generation = state.generation + 1
            tpm = state.tpm
            if commit and self._counter is not None:
                tpm = self._hardware_value(fresh=True) + 1
            body = {
                "generation": generation,
                "tpm": tpm,
                "files": {name: files[name].to_json() for name in sorted(files)},
            }
            plain = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
            nonce = self._rng(_NONCE_LENGTH)
            if len(nonce) != _NONCE_LENGTH:
                raise StoreError("random source returned too few bytes for a nonce")
            sealed = self._device_key.seal(plain, _aad(self._device_key.key_id, generation), nonce)
            document = {
                "format": _FORMAT,
                "device_key_id": self._device_key.key_id,
                "generation": generation,
                "nonce": nonce.hex(),
                "sealed": sealed.hex(),
            }
            data = json.dumps(document, indent=1).encode()
            write_atomically(self.path, data)
            self._parsed = (data, _State(generation, tpm, files))
            self._seen = generation
            if commit and self._counter is not None and tpm is not None:
                self._counter.increment()
                self._hardware = tpm

    def _entry(self, files: dict[str, _FileState], name: str) -> _FileState:
        return files.setdefault(name, _FileState())

    def forget(self, name: str) -> None:
        """The file `name` is gone on purpose (a technician starts it again): its facts are kept."""

        def clear(files: dict[str, _FileState]) -> None:
            entry = self._entry(files, name)
            entry.digest, entry.next = None, None

        self._update(clear, commit=True)
        log.warning("anti-rollback record: %s forgotten (started again), its facts kept", name)

    def adopt(self, name: str, data: bytes | None) -> None:
        """Take `data` as the current state of `name` (a technician's decision; caller holds its lock)."""

        def take(files: dict[str, _FileState]) -> None:
            entry = self._entry(files, name)
            entry.digest, entry.next = (None if data is None else file_digest(data)), None

        self._update(take, commit=True)
        log.warning("anti-rollback record: %s adopted as it is now", name)


class GuardedFile:
    """One file under the record (`firmware.store.guard.FileGuard`)."""

    def __init__(self, record: MonotonicRecord, name: str, path: Path) -> None:
        self.record = record
        self.name = name
        self.path = path

    def _refuse(self, message: str) -> RolledBackError:
        return RolledBackError(f"{self.path} {message}", str(self.path))

    def _read_bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror}") from exc

    def read(self, *, holding_lock: bool) -> bytes | None:
        """The file's bytes (None: missing), once checked against the record (RolledBackError if not)."""
        data = self._read_bytes()
        try:
            self.verify(data, holding_lock=holding_lock)
        except RolledBackError:
            if holding_lock:
                raise
            with locked(self.path):  # a writer in another process may have been between two steps
                data = self._read_bytes()
                self.verify(data, holding_lock=True)
        return data

    def verify(self, data: bytes | None, *, holding_lock: bool) -> None:
        entry = self.record._read().files.get(self.name)
        digest = None if data is None else file_digest(data)
        if entry is None:
            if data is None:
                return
            raise self._refuse(
                f"is not known to the anti-rollback record {self.record.path}: the record was lost or "
                "replaced, or the file comes from elsewhere; refusing it (a technician adopts the files "
                "knowingly with `pos-keys adopt`)"
            )
        if digest == entry.digest:
            if entry.next is not None and holding_lock:  # a cut before the new file was renamed in
                self.record._update(lambda files: setattr(files[self.name], "next", None), commit=False)
            return
        if entry.next is not None and digest == entry.next:
            if holding_lock:  # a cut after the rename, before the commit: finish it
                self.record._update(self._committer(digest), commit=True)
            return
        if data is None:
            raise self._refuse(
                f"is missing, but the anti-rollback record {self.record.path} says it exists: deleted or "
                "moved away; refusing to start it again empty"
            )
        raise self._refuse(
            f"is not the file this terminal last wrote (the anti-rollback record {self.record.path} names "
            "another state): an older copy put back, or the file edited; refusing it"
        )

    def _committer(self, digest: str) -> Callable[[dict[str, _FileState]], None]:
        def commit(files: dict[str, _FileState]) -> None:
            entry = files.setdefault(self.name, _FileState())
            entry.digest, entry.next = digest, None

        return commit

    def write(self, data: bytes, facts: Facts) -> None:
        """Replace the file with `data` in the guarded step (intent, file, commit); caller holds its lock."""
        self.verify(self._read_bytes(), holding_lock=True)  # never write over a file put back
        new = file_digest(data)

        def intend(files: dict[str, _FileState]) -> None:
            entry = files.setdefault(self.name, _FileState())
            entry.next = new
            entry.facts = merge_facts(entry.facts, facts)

        self.record._update(intend, commit=False)
        write_atomically(self.path, data)
        self.record._update(self._committer(new), commit=True)

    def facts(self) -> dict[str, Any]:
        return self.record.facts(self.name)

    def forget(self) -> None:
        """The file is gone on purpose and starts again (its facts are kept); refused while it exists."""
        if self.path.exists():
            raise StoreError(f"{self.path} exists: move it away before starting it again")
        self.record.forget(self.name)
