"""Where the key material lives under the data directory, and how to open it.

DATA_DIR/device.key            the device key (unless placed elsewhere)
DATA_DIR/keys/keystore.json    every other key, sealed under the device key
DATA_DIR/keys/dukpt.json       the DUKPT device's registers and counter, sealed under the device key
DATA_DIR/keys/passwords.json   supervisor and technician password hashes, sealed under the device key
DATA_DIR/keys/monotonic.json   the anti-rollback record (what may only move forward), sealed under the
                               device key, bound to the TPM NV counter when there is one
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from firmware.clocks import MonotonicClock
from firmware.keys.device import DeviceKey, load_device_key
from firmware.keys.dukpt_state import PersistentDukptTerminal
from firmware.keys.monotonic import RECORD_FILE_NAME, MonotonicRecord, detect_hardware_counter
from firmware.keys.passwords import PasswordStore
from firmware.keys.signing import SIGNING_KEY_NAME, RecordSigner, private_key_from_bytes
from firmware.keys.store import KeyStore
from firmware.store.atomic_file import tighten_private_dir

__all__ = [
    "KeyLayout",
    "open_dukpt_terminal",
    "open_key_store",
    "open_monotonic_record",
    "open_password_store",
    "open_record_signer",
    "tighten",
]


@dataclass(frozen=True)
class KeyLayout:
    data_dir: Path
    device_key_path: Path

    @classmethod
    def under(cls, data_dir: Path, device_key_path: Path | None = None) -> KeyLayout:
        data_dir = Path(data_dir)
        return cls(data_dir, Path(device_key_path) if device_key_path else data_dir / "device.key")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def passwords_path(self) -> Path:
        return self.keys_dir / "passwords.json"

    @property
    def record_path(self) -> Path:
        return self.keys_dir / RECORD_FILE_NAME


def tighten(layout: KeyLayout) -> None:
    """The data and key directories made 0700 if they exist with looser modes (a warning is logged)."""
    tighten_private_dir(layout.data_dir)
    tighten_private_dir(layout.keys_dir)


def open_monotonic_record(layout: KeyLayout, device_key: DeviceKey) -> MonotonicRecord:
    """The anti-rollback record, bound to the TPM NV counter when this machine has one."""
    counter, _ = detect_hardware_counter()
    return MonotonicRecord(layout.record_path, device_key, counter=counter)


def open_key_store(layout: KeyLayout, record: MonotonicRecord | None = None) -> KeyStore:
    """The key store, opened with the device key (KeyStoreError if the terminal is not provisioned).

    `record`: the anti-rollback record to share (one per process keeps one view of it).
    """
    tighten(layout)
    device_key = load_device_key(layout.device_key_path)
    return KeyStore(layout.keys_dir, device_key, record=record or open_monotonic_record(layout, device_key))


def open_record_signer(store: KeyStore) -> RecordSigner:
    return RecordSigner(private_key_from_bytes(store.get(SIGNING_KEY_NAME)))


def open_dukpt_terminal(layout: KeyLayout) -> PersistentDukptTerminal:
    """The DUKPT device, opened with the device key (KeyStoreError if the terminal is not provisioned)."""
    tighten(layout)
    device_key = load_device_key(layout.device_key_path)
    record = open_monotonic_record(layout, device_key)
    return PersistentDukptTerminal(layout.keys_dir, device_key, record=record)


def open_password_store(layout: KeyLayout, clock: MonotonicClock) -> PasswordStore:
    """The password store, sealed under the device key (KeyStoreError if the terminal is not provisioned)."""
    tighten(layout)
    return PasswordStore(layout.passwords_path, load_device_key(layout.device_key_path), clock)
