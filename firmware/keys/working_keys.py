"""The working keys (PIK, MAK, TDK) a sign-on (签到) brings: decrypted under the TMK, checked, stored.

The 0800/0810 exchange itself is `firmware.host.signon`; this module only
reads field 62 and installs its keys.

Field 62 of the 0810 answer (中国银联 POS 终端规范), by network management
code 60.3:

- 24 bytes (001, single-length): PIK 8 + checkvalue 4, MAK 8 + checkvalue 4.
- 40 bytes (003, double-length): PIK 16 + checkvalue 4, MAK 8 + eight zero
  bytes + checkvalue 4 (a double-length MAK, 16 non-zero bytes, is accepted).
- 60 bytes (004, double-length with track key): as 003, then TDK 16 + checkvalue 4.

The length must be the one of the code the terminal asked for.

Each key is TDES-ECB decrypted under the TMK; its checkvalue is the first
bytes of the clear key encrypting eight zero bytes. If any key fails its
check, no key is replaced: the terminal keeps working with the old ones.
A key that is single DES (8 bytes, as 001 and the 003 MAK give, or 16 bytes
with equal halves) is refused the same way unless the host profile names the
legacy single-DES mode (`allow_single_des`). A set that brings back a key of
an earlier session (a replayed 0810: it carries no MAC) is refused too
(`firmware.keys.key_history`).
Otherwise the working keys become exactly the ones this sign-on carried: a
key of the previous session it did not re-issue (a TDK after a ``004``
sign-on followed by a ``003`` one) is removed in the same store write.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from firmware.errors import CryptoError, KeyStoreError, MessageFieldError, VerificationError
from firmware.keys.blockcipher import single_des_problem, tdes_decrypt_ecb
from firmware.keys.kcv import KIND_TDES, kcv_for, kcv_tdes
from firmware.keys.key_history import WorkingKeyHistory
from firmware.keys.store import KeyChange, KeyInfo, KeyStore, NewKey

__all__ = [
    "FIELD62_LENGTHS",
    "TMK_NAME",
    "WORKING_KEY_NAMES",
    "install_working_keys",
    "parse_unionpay_field62",
]

log = logging.getLogger(__name__)

TMK_NAME = "TMK"
WORKING_KEY_NAMES = ("PIK", "MAK", "TDK")
# Field 62 length by sign-on network management code (60.3).
FIELD62_LENGTHS = {"001": 24, "003": 40, "004": 60}


def _slot(data: bytes, offset: int, key_length: int, name: str) -> tuple[tuple[bytes, bytes], int]:
    key = data[offset : offset + key_length]
    kcv = data[offset + key_length : offset + key_length + 4]
    if len(kcv) != 4:
        raise MessageFieldError(f"field 62: {name} slot is truncated", "62", offset)
    return (key, kcv), offset + key_length + 4


def parse_unionpay_field62(data: bytes, scheme: str | None = None) -> dict[str, tuple[bytes, bytes]]:
    """{"PIK": (encrypted key, checkvalue), "MAK": ..., ["TDK": ...]} from the sign-on field 62.

    `scheme` is the network management code the terminal asked for (001, 003,
    004): the field must have that code's length. Without it the layout goes by
    the length alone.
    """
    if scheme is not None:
        expected = FIELD62_LENGTHS.get(scheme)
        if expected is None:
            raise MessageFieldError(f"no working-key layout for sign-on code {scheme!r}", "60")
        if len(data) != expected:
            raise MessageFieldError(
                f"field 62: length {len(data)} for a {scheme} sign-on, expected {expected} bytes", "62"
            )
    if len(data) == 24:
        pik_slot, offset = _slot(data, 0, 8, "PIK")
        mak_slot, _ = _slot(data, offset, 8, "MAK")
        return {"PIK": pik_slot, "MAK": mak_slot}
    if len(data) not in (40, 60):
        raise MessageFieldError(f"field 62: length {len(data)}, expected 24, 40 or 60 bytes", "62")
    keys: dict[str, tuple[bytes, bytes]] = {}
    keys["PIK"], offset = _slot(data, 0, 16, "PIK")
    (mak, mak_kcv), offset = _slot(data, offset, 16, "MAK")
    # Double-length layout with a single-length MAK: 8 key bytes then 8 zero bytes.
    keys["MAK"] = (mak[:8], mak_kcv) if mak[8:] == bytes(8) else (mak, mak_kcv)
    if len(data) == 60:
        keys["TDK"], _ = _slot(data, offset, 16, "TDK")
    return keys


def _decrypt_and_check(tmk: bytes, name: str, encrypted: bytes, kcv: bytes) -> bytes:
    if len(encrypted) not in (8, 16):
        raise CryptoError(f"working key {name}: encrypted key must be 8 or 16 bytes, got {len(encrypted)}")
    if not 3 <= len(kcv) <= 8:
        raise CryptoError(f"working key {name}: checkvalue must be 3 to 8 bytes, got {len(kcv)}")
    clear = tdes_decrypt_ecb(tmk, encrypted)
    computed = kcv_tdes(clear, len(kcv))
    if not hmac.compare_digest(computed, kcv):
        # Neither check value goes in the message: the computed one would tell whoever forged
        # field 62 (the 0810 is not MACed) the exact value to send next time.
        raise VerificationError(
            f"working key {name}: its checkvalue does not match the key decrypted under the TMK; "
            "keeping the old working keys"
        )
    return clear


def install_working_keys(
    store: KeyStore,
    keys: Mapping[str, tuple[bytes, bytes]],
    *,
    history: WorkingKeyHistory | None = None,
    allow_single_des: bool = False,
) -> None:
    """Decrypt each working key under the TMK, check every checkvalue, then make them the working keys.

    Any mismatch raises VerificationError naming the key, and no key is
    replaced; so does a set `history` has seen before (a replay), and a
    single-DES key (CryptoError) unless `allow_single_des`. Otherwise, in one
    store write, these keys replace the old ones and a working key this
    sign-on did not carry is removed. Without `history` there is no replay
    check: the terminal's service (`firmware.txn.service.open_terminal`) always gives one.
    """
    if not keys:
        raise CryptoError("sign-on carried no working keys")
    unknown = sorted(set(keys) - set(WORKING_KEY_NAMES))
    if unknown:
        raise CryptoError(
            f"sign-on may not install {', '.join(unknown)} (only {', '.join(WORKING_KEY_NAMES)})"
        )
    try:
        tmk = store.get(TMK_NAME)
    except KeyStoreError as exc:
        raise KeyStoreError(
            f"cannot install working keys: {exc} (load the TMK with `pos-keys load-tmk`)"
        ) from exc
    clear_keys = {name: _decrypt_and_check(tmk, name, slot, kcv) for name, (slot, kcv) in keys.items()}
    if not allow_single_des:
        for name, clear in clear_keys.items():
            problem = single_des_problem(clear)
            if problem is not None:
                raise CryptoError(
                    f"working key {name} is {problem}: refused (the host profile allows it only with "
                    "legacy_single_des); keeping the old working keys"
                )
    tmk_kcv = kcv_for(KIND_TDES, tmk).hex().upper()

    def new_working_keys(current: Mapping[str, KeyInfo]) -> KeyChange:
        if TMK_NAME not in current or current[TMK_NAME].kcv != tmk_kcv:
            raise KeyStoreError("the TMK changed during the sign-on: no working key installed; sign on again")
        if history is not None:  # under the key store's lock, written before the keys
            history.record_new_set(clear_keys)
        return KeyChange(
            {
                name: NewKey(clear, KIND_TDES, current[name].version + 1 if name in current else 1)
                for name, clear in clear_keys.items()
            },
            frozenset(WORKING_KEY_NAMES) - clear_keys.keys(),
        )

    infos = store.update(new_working_keys)
    log.info("sign-on installed %s", ", ".join(f"{i.name} (KCV {i.kcv})" for i in infos))
