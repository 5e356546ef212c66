"""First start of a terminal: the device key, then the record signing key in the key store.

`provision` creates the device key (`firmware.keys.device`) and then the
Ed25519 record signing key (`firmware.keys.signing`), sealed in the key
store under the device key. A run cut short between the two (a power cut)
is completed by the next run: an existing device key is loaded and the
signing key is added. Each step is crash-safe on its own (the device key
file and the key store are written through `firmware.store.atomic_file`).

Failures are `KeyStoreError`: a key store found without its device key is
never touched (its keys could not be opened again), and a terminal already
holding its signing key is refused rather than given a new identity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import KeyStoreError
from firmware.keys.device import load_device_key, provision_device_key
from firmware.keys.kcv import KIND_ED25519
from firmware.keys.layout import KeyLayout, open_monotonic_record, tighten
from firmware.keys.signing import SIGNING_KEY_NAME, RecordSigner, new_signing_key, private_key_bytes
from firmware.keys.store import STORE_FILE_NAME, KeyChange, KeyInfo, KeyStore, NewKey

__all__ = ["Provisioned", "provision"]


@dataclass(frozen=True)
class Provisioned:
    """What a provisioning run made: never key bytes, only what identifies them."""

    device_key_id: str
    device_key_path: Path
    resumed: bool  # the device key was already there: a run cut short was completed
    signing_public_key: bytes  # Ed25519, to register with the acquirer


def provision(layout: KeyLayout, rng: Callable[[int], bytes]) -> Provisioned:
    """Create the device key, then the signing key; a run cut short between the two is completed.

    Raises KeyStoreError when already provisioned or when a key store exists without its device key.
    An existing data directory with loose modes is made 0700 first.
    """
    tighten(layout)
    if layout.device_key_path.exists():
        device_key = load_device_key(layout.device_key_path)
        resumed = True
    else:
        if (layout.keys_dir / STORE_FILE_NAME).exists():
            raise KeyStoreError(
                f"a key store already exists in {layout.keys_dir} without its device key; not touching it"
            )
        device_key = provision_device_key(layout.device_key_path, rng)
        resumed = False
    signing_key = new_signing_key(rng)

    def add_signing_key(current: Mapping[str, KeyInfo]) -> KeyChange:
        if SIGNING_KEY_NAME in current:
            raise KeyStoreError(
                f"already provisioned: device key exists at {layout.device_key_path} and the record "
                "signing key is in the key store; refusing to overwrite them"
            )
        return KeyChange({SIGNING_KEY_NAME: NewKey(private_key_bytes(signing_key), KIND_ED25519, 1)})

    record = open_monotonic_record(layout, device_key)
    KeyStore(layout.keys_dir, device_key, rng, record=record).update(add_signing_key)
    return Provisioned(
        device_key.key_id, layout.device_key_path, resumed, RecordSigner(signing_key).public_key_bytes()
    )
