"""Key store and device key: sealing, crash safety, tamper and wrong-key detection."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import firmware.keys.monotonic as monotonic_module
from firmware.errors import KeyStoreError, StoreError
from firmware.keys.device import load_device_key, provision_device_key
from firmware.keys.kcv import kcv_tdes
from firmware.keys.store import KeyInfo, KeyStore, NewKey

TMK = bytes.fromhex("70F2A84CCBC2AE8625CBB0F2C22AB923")
PIK = bytes.fromhex("F039121BEC83D26B169BDCD5B22AAF8F")
MAK = bytes.fromhex("C24A8FB57AA20123")


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    device_key = provision_device_key(tmp_path / "device.key", os.urandom)
    return KeyStore(tmp_path / "keys", device_key)


def test_put_get_roundtrip_and_metadata(store: KeyStore) -> None:
    info = store.put("TMK", TMK, "tdes", 3)
    assert info == KeyInfo("TMK", "tdes", 3, kcv_tdes(TMK).hex().upper())
    assert store.get("TMK") == TMK
    assert store.kcv("TMK") == kcv_tdes(TMK).hex().upper()
    assert "TMK" in store and "PIK" not in store


def test_files_are_private_and_hold_no_clear_key(store: KeyStore, tmp_path: Path) -> None:
    store.put("TMK", TMK, "tdes", 1)
    for path in [store.path, tmp_path / "device.key"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    content = store.path.read_bytes()
    for needle in (TMK, TMK.hex().encode(), TMK.hex().upper().encode()):
        assert needle not in content


def test_list_is_sorted_and_shows_no_key_bytes(store: KeyStore) -> None:
    store.replace_atomically({"PIK": NewKey(PIK, "tdes", 1), "MAK": NewKey(MAK, "tdes", 1)})
    store.put("TMK", TMK, "tdes", 1)
    listed = store.list()
    assert [i.name for i in listed] == ["MAK", "PIK", "TMK"]
    assert all(isinstance(i.kcv, str) and len(i.kcv) == 6 for i in listed)


def test_replace_atomically_all_or_nothing_when_the_write_crashes(
    store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.replace_atomically({"PIK": NewKey(PIK, "tdes", 1), "MAK": NewKey(MAK, "tdes", 1)})
    before = store.path.read_bytes()

    def power_cut(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "rename", power_cut)
    with pytest.raises(StoreError, match="cannot write"):
        store.replace_atomically({"PIK": NewKey(bytes(16), "tdes", 2), "MAK": NewKey(bytes(8), "tdes", 2)})
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert store.get("PIK") == PIK and store.get("MAK") == MAK
    assert not [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left


def test_a_bad_key_in_a_batch_stores_none(store: KeyStore) -> None:
    store.put("PIK", PIK, "tdes", 1)
    with pytest.raises(KeyStoreError):
        store.replace_atomically({"PIK": NewKey(bytes(16), "tdes", 2), "MAK": NewKey(bytes(5), "tdes", 2)})
    assert store.get("PIK") == PIK
    assert "MAK" not in store


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.update(sealed=e["sealed"][:-2] + ("00" if e["sealed"][-2:] != "00" else "01")),
        lambda e: e.update(kcv="000000"),
        lambda e: e.update(version=e["version"] + 1),
        lambda e: e.update(kind="aes"),
        lambda e: e.update(nonce="00" * 12),
        lambda e: e.pop("nonce"),
    ],
    ids=["sealed-bytes", "kcv", "version", "kind", "nonce", "missing-field"],
)
def test_tampered_entry_is_a_clear_key_store_error(store: KeyStore, tamper: object) -> None:
    store.put("TMK", TMK, "tdes", 1)
    document = json.loads(store.path.read_text())
    tamper(document["keys"]["TMK"])  # type: ignore[operator]
    store.path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="'TMK'"):
        store.get("TMK")
    with pytest.raises(KeyStoreError, match="'TMK'"):
        store.list()


def test_swapped_entries_are_detected(store: KeyStore) -> None:
    store.replace_atomically({"PIK": NewKey(PIK, "tdes", 1), "MAK": NewKey(PIK, "tdes", 1)})
    document = json.loads(store.path.read_text())
    keys = document["keys"]
    keys["PIK"], keys["MAK"] = keys["MAK"], keys["PIK"]
    store.path.write_text(json.dumps(document))
    with pytest.raises(KeyStoreError, match="fails authentication"):
        store.get("PIK")


def test_garbage_file_is_a_key_store_error(store: KeyStore) -> None:
    store.put("TMK", TMK, "tdes", 1)
    store.path.write_bytes(b"\x00\xffnot json")
    with pytest.raises(KeyStoreError, match="damaged"):
        store.get("TMK")


def test_wrong_device_key_is_named(store: KeyStore, tmp_path: Path) -> None:
    store.put("TMK", TMK, "tdes", 1)
    other = provision_device_key(tmp_path / "other.key", os.urandom)
    with pytest.raises(KeyStoreError, match="another device key"):
        KeyStore(tmp_path / "keys", other).get("TMK")


def test_missing_device_key_says_to_provision(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="not provisioned"):
        load_device_key(tmp_path / "nothing.key")


def test_damaged_device_key_file(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    provision_device_key(path, os.urandom)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(KeyStoreError, match="damaged"):
        load_device_key(path)


def test_device_key_provisioning_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    first = provision_device_key(path, os.urandom)
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        provision_device_key(path, os.urandom)
    assert load_device_key(path).key_id == first.key_id


def test_store_reopened_with_loaded_device_key(tmp_path: Path) -> None:
    provision_device_key(tmp_path / "device.key", os.urandom)
    KeyStore(tmp_path / "keys", load_device_key(tmp_path / "device.key")).put("TMK", TMK, "tdes", 1)
    assert KeyStore(tmp_path / "keys", load_device_key(tmp_path / "device.key")).get("TMK") == TMK


@pytest.mark.parametrize(
    ("name", "key", "kind", "version"),
    [("tmk", TMK, "tdes", 1), ("TMK", TMK, "rsa", 1), ("TMK", TMK, "tdes", -1), ("TMK", b"123", "tdes", 1)],
)
def test_bad_puts_are_refused(store: KeyStore, name: str, key: bytes, kind: str, version: int) -> None:
    with pytest.raises(KeyStoreError):
        store.put(name, key, kind, version)


def test_absent_key(store: KeyStore) -> None:
    with pytest.raises(KeyStoreError, match="no key named 'PIK'"):
        store.get("PIK")


def test_device_key_repr_shows_only_its_id(tmp_path: Path) -> None:
    key = provision_device_key(tmp_path / "device.key", lambda n: bytes(range(n)))
    assert repr(key) == f"DeviceKey(id={key.key_id})"
    assert bytes(range(32)).hex() not in repr(key).lower()


REPO = Path(__file__).resolve().parent.parent


def start_other_process(code: str) -> subprocess.Popen[str]:
    """Another process on the same files; it prints "ready" once imported, then runs `code`."""
    process = subprocess.Popen(
        [sys.executable, "-c", f"print('ready', flush=True)\n{code}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_a_change_made_by_another_process_meanwhile_is_not_lost(
    store: KeyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("TMK", TMK, "tdes", 1)
    other_code = (
        "from pathlib import Path\n"
        "from firmware.keys.device import load_device_key\n"
        "from firmware.keys.store import KeyStore\n"
        f"device_key = load_device_key(Path({str(tmp_path / 'device.key')!r}))\n"
        f"store = KeyStore(Path({str(tmp_path / 'keys')!r}), device_key)\n"
        f"store.put('MAK', bytes.fromhex({MAK.hex()!r}), 'tdes', 1)\n"
    )
    others: list[subprocess.Popen[str]] = []
    real_write = monotonic_module.write_atomically

    def write_while_another_process_changes_the_store(path: Path, data: bytes) -> None:
        if Path(path) != store.path:  # the anti-rollback record's own writes
            real_write(path, data)
            return
        other = start_other_process(other_code)
        others.append(other)
        try:  # unlocked, the other process's put is done well within a second
            other.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass  # it waits for the lock this process holds
        real_write(path, data)

    monkeypatch.setattr(monotonic_module, "write_atomically", write_while_another_process_changes_the_store)
    store.put("PIK", PIK, "tdes", 1)
    monkeypatch.undo()
    assert others[0].wait(timeout=30) == 0
    assert {info.name for info in store.list()} == {"TMK", "PIK", "MAK"}
    assert store.get("MAK") == MAK and store.get("PIK") == PIK


def test_key_block_version_is_kept_and_bound_to_the_entry(store: KeyStore) -> None:
    info = store.replace_atomically({"TMK": NewKey(TMK, "tdes", 1, "07")})[0]
    assert info == KeyInfo("TMK", "tdes", 1, kcv_tdes(TMK).hex().upper(), "07")
    assert store.info("TMK").block_version == "07"
    assert store.put("PIK", PIK, "tdes", 1).block_version == ""  # keys not from a key block have none
    with pytest.raises(KeyStoreError, match="key block version"):
        store.replace_atomically({"TMK": NewKey(TMK, "tdes", 2, "7")})
    document = json.loads(store.path.read_bytes())
    for forged in ("01", None):  # rolled back or stripped (an unversioned TMK may be replaced by any)
        entry = dict(document["keys"]["TMK"])
        if forged is None:
            del entry["block_version"]
        else:
            entry["block_version"] = forged
        store.path.write_text(json.dumps({**document, "keys": {**document["keys"], "TMK": entry}}))
        with pytest.raises(KeyStoreError, match="TMK"):
            store.info("TMK")
