"""Block-cipher primitives over bytes: DES/TDES and AES in ECB and CBC, CMAC.

DES keys of 8 (single), 16 (double) or 24 (triple) bytes are all run as
three-key TDES (K1K2K1 / KKK expansion), which gives exactly single DES and
two-key TDES while staying on the key size `cryptography` still supports
without deprecation warnings.
"""

from __future__ import annotations

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from firmware.errors import CryptoError

__all__ = [
    "AES_BLOCK",
    "DES_BLOCK",
    "aes_decrypt_cbc",
    "aes_decrypt_ecb",
    "aes_encrypt_cbc",
    "aes_encrypt_ecb",
    "cmac_aes",
    "cmac_tdes",
    "single_des_problem",
    "tdes_decrypt_cbc",
    "tdes_decrypt_ecb",
    "tdes_encrypt_cbc",
    "tdes_encrypt_ecb",
    "tdes_key24",
    "xor",
]

DES_BLOCK = 8
AES_BLOCK = 16


def xor(left: bytes, right: bytes) -> bytes:
    if len(left) != len(right):
        raise CryptoError(f"xor of unequal lengths {len(left)} and {len(right)}")
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _odd_parity_cleared(block: bytes) -> bytes:
    return bytes(byte & 0xFE for byte in block)


def single_des_problem(key: bytes) -> str | None:
    """Why a TDES key is only as strong as single DES, or None.

    A single-length (8-byte) key is DES; a double-length key whose halves are
    equal, or a triple-length key with K1 = K2 or K2 = K3, encrypts exactly as
    single DES (parity bits aside). Only a host profile that names a legacy
    single-DES mode may accept such a key.
    """
    blocks = [_odd_parity_cleared(key[i : i + DES_BLOCK]) for i in range(0, len(key), DES_BLOCK)]
    if len(key) == DES_BLOCK:
        return "single-length (DES)"
    if len(blocks) >= 2 and blocks[0] == blocks[1]:
        return "its first two halves are equal (single DES)"
    if len(blocks) == 3 and blocks[1] == blocks[2]:
        return "its last two thirds are equal (single DES)"
    return None


def tdes_key24(key: bytes) -> bytes:
    """Expand a single, double or triple length DES key to its 24-byte TDES form."""
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise CryptoError(f"DES key must be 8, 16 or 24 bytes, got {len(key)}")


def _aes(key: bytes) -> algorithms.AES:
    if len(key) not in (16, 24, 32):
        raise CryptoError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
    return algorithms.AES(key)


def _ecb() -> modes.ECB:
    # ECB is what the payment standards specify for single-block key operations
    # (KCVs, key derivation, PIN blocks, UnionPay key exchange); callers never
    # feed it structured multi-block plaintext.
    return modes.ECB()  # noqa: S305


def _check_blocks(data: bytes, block: int, what: str) -> None:
    if len(data) % block:
        raise CryptoError(f"{what}: data length {len(data)} is not a multiple of {block}")


def _run(algorithm: CipherAlgorithm, mode: modes.ECB | modes.CBC, data: bytes, encrypt: bool) -> bytes:
    cipher = Cipher(algorithm, mode)
    context = cipher.encryptor() if encrypt else cipher.decryptor()
    return context.update(data) + context.finalize()


def tdes_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    _check_blocks(data, DES_BLOCK, "TDES ECB")
    return _run(TripleDES(tdes_key24(key)), _ecb(), data, encrypt=True)


def tdes_decrypt_ecb(key: bytes, data: bytes) -> bytes:
    _check_blocks(data, DES_BLOCK, "TDES ECB")
    return _run(TripleDES(tdes_key24(key)), _ecb(), data, encrypt=False)


def tdes_encrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, DES_BLOCK, "TDES CBC")
    return _run(TripleDES(tdes_key24(key)), modes.CBC(iv), data, encrypt=True)


def tdes_decrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, DES_BLOCK, "TDES CBC")
    return _run(TripleDES(tdes_key24(key)), modes.CBC(iv), data, encrypt=False)


def aes_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    _check_blocks(data, AES_BLOCK, "AES ECB")
    return _run(_aes(key), _ecb(), data, encrypt=True)


def aes_decrypt_ecb(key: bytes, data: bytes) -> bytes:
    _check_blocks(data, AES_BLOCK, "AES ECB")
    return _run(_aes(key), _ecb(), data, encrypt=False)


def aes_encrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, AES_BLOCK, "AES CBC")
    return _run(_aes(key), modes.CBC(iv), data, encrypt=True)


def aes_decrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_blocks(data, AES_BLOCK, "AES CBC")
    return _run(_aes(key), modes.CBC(iv), data, encrypt=False)


def cmac_tdes(key: bytes, data: bytes) -> bytes:
    """CMAC (NIST SP 800-38B) with TDES: 8 bytes."""
    mac = CMAC(TripleDES(tdes_key24(key)))
    mac.update(data)
    return mac.finalize()


def cmac_aes(key: bytes, data: bytes) -> bytes:
    """CMAC (NIST SP 800-38B, RFC 4493) with AES: 16 bytes."""
    mac = CMAC(_aes(key))
    mac.update(data)
    return mac.finalize()
