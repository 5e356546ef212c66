"""Installing the terminal master key from a TR-31 key block.

The block must hold a whole TMK (`tr31.unwrap_tmk`: usage K0, TDES, a mode
that allows decryption, not a component), and its key version number must be
newer than the installed TMK's (`tr31.check_newer_key_version`). The check and
the write are one locked update of the key store, so two loads at once cannot
both pass the check. The TMK is stored with the block's key version number
(bound to the entry) and a local version that counts the TMKs installed.

What a TMK was is remembered beyond its entry (`KeyStore.highest`, kept in
the anti-rollback record): once a TMK is removed, or its entry cut out of
the file, a block must still be newer than the last one installed, and the
local version keeps counting.
"""

from __future__ import annotations

from collections.abc import Mapping

from firmware.errors import KeyBlockError
from firmware.keys.blockcipher import single_des_problem
from firmware.keys.kcv import KIND_TDES
from firmware.keys.store import KeyChange, KeyInfo, KeyStore, NewKey
from firmware.keys.tr31 import KeyBlockHeader, check_newer_key_version, unwrap_tmk
from firmware.keys.working_keys import TMK_NAME

__all__ = ["install_tmk"]


def install_tmk(
    store: KeyStore, kbpk: bytes, block: str, *, allow_single_des: bool = False
) -> tuple[KeyBlockHeader, KeyInfo]:
    """Unwrap `block` under `kbpk` and install it as the TMK; KeyBlockError when it may not be.

    A TMK (or KBPK) that is single DES (8 bytes, or equal halves) is refused unless `allow_single_des`
    (the host profile's legacy mode).
    """
    if not allow_single_des and single_des_problem(kbpk) is not None:
        raise KeyBlockError(f"the KBPK is {single_des_problem(kbpk)}: refused", "KBPK")
    header, tmk = unwrap_tmk(kbpk, block)
    if not allow_single_des and single_des_problem(tmk) is not None:
        raise KeyBlockError(f"the TMK is {single_des_problem(tmk)}: refused", "key data")

    def replace_tmk(current: Mapping[str, KeyInfo]) -> KeyChange:
        installed = current.get(TMK_NAME)
        before = store.highest(TMK_NAME)
        last_block_version = installed.block_version if installed else None
        if before is not None and before.block_version:
            last_block_version = max(last_block_version or "", before.block_version)
        check_newer_key_version(header.key_version_number, last_block_version)
        version = max(installed.version if installed else 0, before.version if before else 0) + 1
        return KeyChange({TMK_NAME: NewKey(tmk, KIND_TDES, version, header.key_version_number)})

    return header, store.update(replace_tmk)[0]
