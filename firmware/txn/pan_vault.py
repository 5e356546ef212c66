"""The PAN at rest: sealed under the terminal's data key, never stored in clear.

A refund to the card, a void or a completion is made without the card, from
the journal: the journal keeps the PAN sealed (AES-256-GCM under the data key
`DATA` of the key store, itself sealed under the device key) next to its
masked form. The nonce is random; the associated data binds the sealed value
to the one request it was sealed for (terminal, batch, trace: `binding`), so a
sealed PAN copied into another journal entry does not open there, and the
PAN that opens must be the one the entry shows masked (`open_for`).

The data key is made on first use and never leaves the key store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firmware.emv.mask import mask_pan
from firmware.errors import CryptoError, KeyStoreError, VerificationError
from firmware.keys.kcv import KIND_AES
from firmware.keys.store import KeyStore

__all__ = ["DATA_KEY_NAME", "PanVault"]

DATA_KEY_NAME: Final = "DATA"
_AAD: Final = b"pos-pan-2|"
_NONCE_LENGTH: Final = 12
_KEY_LENGTH: Final = 32


class PanVault:
    """Seal and open PANs under the key store's data key."""

    def __init__(self, store: KeyStore, rng: Callable[[int], bytes] = os.urandom) -> None:
        self._store = store
        self._rng = rng

    def _key(self, create: bool) -> bytes:
        if DATA_KEY_NAME not in self._store:
            if not create:
                raise KeyStoreError("no data key: this terminal has sealed no PAN")
            self._store.put(DATA_KEY_NAME, self._rng(_KEY_LENGTH), KIND_AES, 1)
        return self._store.get(DATA_KEY_NAME)

    def seal(self, pan: str, binding: str) -> str:
        """The PAN sealed for the request named by `binding`, as hex (nonce + ciphertext + tag)."""
        if not pan.isdigit() or not 12 <= len(pan) <= 19:
            raise CryptoError("only a PAN of 12 to 19 digits is sealed")
        nonce = self._rng(_NONCE_LENGTH)
        aad = _AAD + binding.encode("utf-8")
        return (nonce + AESGCM(self._key(create=True)).encrypt(nonce, pan.encode("ascii"), aad)).hex()

    def open(self, sealed: str, binding: str) -> str:
        """The PAN back from `seal`; VerificationError if altered, or sealed under another key or request."""
        try:
            raw = bytes.fromhex(sealed)
        except ValueError:
            raise VerificationError("sealed PAN is not hex") from None
        if len(raw) < _NONCE_LENGTH + 16 + 12:
            raise VerificationError("sealed PAN is too short")
        try:
            aad = _AAD + binding.encode("utf-8")
            clear = AESGCM(self._key(create=False)).decrypt(raw[:_NONCE_LENGTH], raw[_NONCE_LENGTH:], aad)
        except InvalidTag:
            raise VerificationError(
                "sealed PAN does not open for this request under this terminal's data key"
            ) from None
        pan = clear.decode("ascii", errors="replace")
        if not pan.isdigit():
            raise VerificationError("sealed value is not a PAN")
        return pan

    def open_for(self, sealed: str, binding: str, masked_pan: str | None) -> str:
        """`open`, and the PAN must be the one `masked_pan` shows (first 6, last 4)."""
        pan = self.open(sealed, binding)
        if masked_pan is None or mask_pan(pan) != masked_pan:
            raise VerificationError("sealed PAN is not the card the journal shows for this request")
        return pan
