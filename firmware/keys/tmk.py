"""Installing the terminal master key from a TR-31 key block.

The block must hold a whole TMK (`tr31.unwrap_tmk`: usage K0, TDES, a mode
that allows decryption, not a component), and its key version number must be
newer than the installed TMK's (`tr31.check_newer_key_version`). The check and
the write are one locked update of the key store, so two loads at once cannot
both pass the check. The TMK is stored with the block's key version number
(bound to the entry) and a local version that counts the TMKs installed.
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
        check_newer_key_version(header.key_version_number, installed.block_version if installed else None)
        version = installed.version + 1 if installed else 1
        return KeyChange({TMK_NAME: NewKey(tmk, KIND_TDES, version, header.key_version_number)})

    return header, store.update(replace_tmk)[0]
