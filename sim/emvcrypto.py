"""EMV symmetric cryptography of a card and its issuer, as pure functions over bytes.

What is here (references are EMV 4.4 Book 2 unless said otherwise):

- Triple DES primitives, key parity, key check values.
- ISO/IEC 9797-1 padding methods 1 and 2, and MAC algorithm 3 (the "retail MAC":
  single DES CBC under the left key half, then decrypt under the right half and
  encrypt under the left half of the last block).
- ICC master key derivation from an issuer master key: Annex A1.4.1 option A
  (rightmost 16 digits of PAN || PSN) and A1.4.2 option B (SHA-1 and
  decimalisation, for PANs longer than 16 digits).
- Session keys: the EMV common session key derivation (Annex A1.3.1, the
  'F0' / '0F' diversification of R), with R = ATC || 00.. (EMV CSK) or
  ATC || 0000 || UN (Mastercard SKD) or R = ARQC (secure messaging); the Visa
  secure messaging derivation (key halves XOR ATC / ~ATC); and the PBOC /
  UICS derivation (TDES of 00..ATC and 00..~ATC).
- Application cryptograms (Book 2 8.1, Annex A1.2), ARPC method 1 (8.2.1) and
  method 2 (8.2.2).
- Issuer script secure messaging: the MAC input of format 2 with transaction
  data (9.2.3), command data encipherment in the Visa, Mastercard and EMV
  styles (9.3), and the PIN blocks carried by PIN CHANGE / UNBLOCK
  (ISO 9564 format 2, and the VIS PIN block keyed by the ICC AC master key).

Nothing here keeps state, reads a clock or draws randomness. Keys are never
logged or put in exception messages; use :func:`key_check_value` to name one.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sim.errors import CryptoInputError, SimCryptoError

__all__ = [
    "ZERO_BLOCK",
    "CryptoInputError",
    "SimCryptoError",
    "adjust_parity",
    "application_cryptogram",
    "arpc_method1",
    "arpc_method2",
    "decrypt_script_data",
    "derive_common_session_key",
    "derive_icc_master_key",
    "derive_icc_master_key_a",
    "derive_icc_master_key_b",
    "derive_pboc_session_key",
    "derive_visa_sm_session_key",
    "emv_csk_diversifier",
    "encrypt_script_data",
    "iso9564_format2_pin_block",
    "key_check_value",
    "mastercard_skd_diversifier",
    "pad_iso9797_method1",
    "pad_iso9797_method2",
    "parse_iso9564_format2_pin_block",
    "parse_vis_pin_block",
    "retail_mac",
    "script_mac",
    "script_mac_input",
    "tdes_decrypt_cbc",
    "tdes_decrypt_ecb",
    "tdes_encrypt_cbc",
    "tdes_encrypt_ecb",
    "unpad_iso9797_method2",
    "vis_pin_block",
    "xor",
]

ZERO_BLOCK = bytes(8)
_DIGITS = frozenset("0123456789")


def xor(left: bytes, right: bytes) -> bytes:
    """Byte-wise XOR of two strings of the same length."""
    if len(left) != len(right):
        raise CryptoInputError(f"xor of {len(left)} and {len(right)} bytes")
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _tdes_key(key: bytes) -> bytes:
    # Single (8), double (16) and triple (24) length DES keys, always given to
    # the cipher as three parts: two-key TDES is K1 K2 K1, single DES is K K K.
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise CryptoInputError(f"a DES key is 8, 16 or 24 bytes, not {len(key)}")


def _check_blocks(data: bytes, what: str) -> None:
    if len(data) % 8:
        raise CryptoInputError(f"{what} must be a whole number of 8-byte blocks, not {len(data)} bytes")


def tdes_encrypt_ecb(key: bytes, data: bytes) -> bytes:
    """Triple DES (or DES, for an 8-byte key) ECB encryption of whole blocks."""
    _check_blocks(data, "ECB data")
    encryptor = Cipher(TripleDES(_tdes_key(key)), modes.ECB()).encryptor()  # noqa: S305 -- EMV mandates ECB
    return encryptor.update(data) + encryptor.finalize()


def tdes_decrypt_ecb(key: bytes, data: bytes) -> bytes:
    """Triple DES (or DES) ECB decryption of whole blocks."""
    _check_blocks(data, "ECB data")
    decryptor = Cipher(TripleDES(_tdes_key(key)), modes.ECB()).decryptor()  # noqa: S305 -- EMV mandates ECB
    return decryptor.update(data) + decryptor.finalize()


def tdes_encrypt_cbc(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    """Triple DES (or DES) CBC encryption of whole blocks, zero IV unless given."""
    _check_blocks(data, "CBC data")
    if len(iv) != 8:
        raise CryptoInputError(f"a DES IV is 8 bytes, not {len(iv)}")
    encryptor = Cipher(TripleDES(_tdes_key(key)), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def tdes_decrypt_cbc(key: bytes, data: bytes, iv: bytes = ZERO_BLOCK) -> bytes:
    """Triple DES (or DES) CBC decryption of whole blocks, zero IV unless given."""
    _check_blocks(data, "CBC data")
    if len(iv) != 8:
        raise CryptoInputError(f"a DES IV is 8 bytes, not {len(iv)}")
    decryptor = Cipher(TripleDES(_tdes_key(key)), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def adjust_parity(key: bytes) -> bytes:
    """Set the low bit of each byte so that every byte has odd parity (DES key parity)."""
    return bytes(b if bin(b).count("1") % 2 else b ^ 1 for b in key)


def key_check_value(key: bytes, length: int = 3) -> bytes:
    """The KCV: the leftmost bytes of the key's encryption of a zero block."""
    if not 1 <= length <= 8:
        raise CryptoInputError(f"a KCV is 1 to 8 bytes, not {length}")
    return tdes_encrypt_ecb(key, ZERO_BLOCK)[:length]


def _double_length(key: bytes, what: str) -> None:
    if len(key) != 16:
        raise CryptoInputError(f"{what} must be a double-length (16-byte) DES key, not {len(key)} bytes")


# --- ISO/IEC 9797-1 ------------------------------------------------------------------


def pad_iso9797_method1(data: bytes) -> bytes:
    """Padding method 1: zero bytes up to a multiple of 8; empty data becomes one zero block."""
    if not data:
        return ZERO_BLOCK
    return data + bytes(-len(data) % 8)


def pad_iso9797_method2(data: bytes) -> bytes:
    """Padding method 2: a mandatory '80' then zero bytes up to a multiple of 8."""
    data = data + b"\x80"
    return data + bytes(-len(data) % 8)


def unpad_iso9797_method2(data: bytes) -> bytes:
    """Remove method 2 padding; raises if the data does not end in '80' followed by zeros."""
    _check_blocks(data, "padded data")
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) > 7:
        raise CryptoInputError("data does not end in ISO/IEC 9797-1 method 2 padding")
    return stripped[:-1]


def retail_mac(key: bytes, data: bytes, *, padding: int = 2, length: int = 8) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 under a double-length key, padding method 1 or 2.

    DES CBC under the left half over every block, then the last block is
    decrypted under the right half and encrypted under the left half.
    """
    _double_length(key, "a retail MAC key")
    if padding == 1:
        padded = pad_iso9797_method1(data)
    elif padding == 2:
        padded = pad_iso9797_method2(data)
    else:
        raise CryptoInputError(f"ISO/IEC 9797-1 padding method is 1 or 2, not {padding}")
    if not 4 <= length <= 8:
        raise CryptoInputError(f"a MAC is 4 to 8 bytes, not {length}")
    left, right = key[:8], key[8:]
    chained = tdes_encrypt_cbc(left, padded)[-8:]
    return tdes_encrypt_ecb(left, tdes_decrypt_ecb(right, chained))[:length]


# --- ICC master keys (Book 2 Annex A1.4) -----------------------------------------------


def _pan_digits(pan: str) -> str:
    if not 1 <= len(pan) <= 19 or not set(pan) <= _DIGITS:
        raise CryptoInputError(f"a PAN is 1 to 19 decimal digits, got {len(pan)} characters")
    return pan


def _psn_digits(psn: int | None) -> str:
    if psn is None:
        return "00"
    if not 0 <= psn <= 99:
        raise CryptoInputError(f"a PAN sequence number is 0 to 99, not {psn}")
    return f"{psn:02d}"


def _master_key_from_y(imk: bytes, y: bytes) -> bytes:
    # Z = TDES(IMK)[Y] || TDES(IMK)[Y XOR 'FF..FF'], then odd parity.
    return adjust_parity(tdes_encrypt_ecb(imk, y + xor(y, b"\xff" * 8)))


def derive_icc_master_key_a(imk: bytes, pan: str, psn: int | None) -> bytes:
    """Option A: Y is the rightmost 16 digits of PAN || PSN, left-padded with zeros."""
    _double_length(imk, "an issuer master key")
    digits = (_pan_digits(pan) + _psn_digits(psn))[-16:].rjust(16, "0")
    return _master_key_from_y(imk, bytes.fromhex(digits))


def derive_icc_master_key_b(imk: bytes, pan: str, psn: int | None) -> bytes:
    """Option B: for a PAN of 17 to 19 digits, Y is 16 decimalised digits of SHA-1(PAN || PSN).

    For a PAN of at most 16 digits option B is option A.
    """
    _double_length(imk, "an issuer master key")
    digits = _pan_digits(pan) + _psn_digits(psn)
    if len(pan) <= 16:
        return derive_icc_master_key_a(imk, pan, psn)
    if len(digits) % 2:
        digits = "0" + digits
    digest = hashlib.sha1(bytes.fromhex(digits), usedforsecurity=False).hexdigest()
    decimal = [c for c in digest if c in _DIGITS]
    if len(decimal) < 16:
        letters = [str("abcdef".index(c)) for c in digest if c not in _DIGITS]
        decimal += letters[: 16 - len(decimal)]
    return _master_key_from_y(imk, bytes.fromhex("".join(decimal[:16])))


def derive_icc_master_key(imk: bytes, pan: str, psn: int | None, option: str) -> bytes:
    """Option 'A' or 'B' by name."""
    if option == "A":
        return derive_icc_master_key_a(imk, pan, psn)
    if option == "B":
        return derive_icc_master_key_b(imk, pan, psn)
    raise CryptoInputError(f"master key derivation option is 'A' or 'B', not {option!r}")


# --- session keys -----------------------------------------------------------------------


def _atc_bytes(atc: int) -> bytes:
    if not 0 <= atc <= 0xFFFF:
        raise CryptoInputError(f"an ATC is 0 to 65535, not {atc}")
    return atc.to_bytes(2, "big")


def derive_common_session_key(master_key: bytes, diversifier: bytes) -> bytes:
    """EMV common session key derivation (Annex A1.3.1).

    SK = TDES(MK)[R with byte 3 = 'F0'] || TDES(MK)[R with byte 3 = '0F'], odd parity.
    """
    _double_length(master_key, "an ICC master key")
    if len(diversifier) != 8:
        raise CryptoInputError(f"a session key diversifier R is 8 bytes, not {len(diversifier)}")
    left = diversifier[:2] + b"\xf0" + diversifier[3:]
    right = diversifier[:2] + b"\x0f" + diversifier[3:]
    return adjust_parity(tdes_encrypt_ecb(master_key, left + right))


def emv_csk_diversifier(atc: int) -> bytes:
    """R = ATC || '000000000000' (EMV CSK, the AC session key of Visa CVN 18)."""
    return _atc_bytes(atc) + bytes(6)


def mastercard_skd_diversifier(atc: int, unpredictable_number: bytes) -> bytes:
    """R = ATC || '0000' || UN (Mastercard proprietary SKD, M/Chip CVN 16 / 17)."""
    if len(unpredictable_number) != 4:
        raise CryptoInputError(f"an unpredictable number is 4 bytes, not {len(unpredictable_number)}")
    return _atc_bytes(atc) + bytes(2) + unpredictable_number


def derive_visa_sm_session_key(master_key: bytes, atc: int) -> bytes:
    """Visa secure messaging session key: left half XOR 00..ATC, right half XOR 00..~ATC."""
    _double_length(master_key, "an ICC master key")
    atc_b = _atc_bytes(atc)
    left = xor(master_key[:8], bytes(6) + atc_b)
    right = xor(master_key[8:], bytes(6) + xor(atc_b, b"\xff\xff"))
    return adjust_parity(left + right)


def derive_pboc_session_key(master_key: bytes, atc: int) -> bytes:
    """PBOC / UICS session key: TDES(MK)[00..00 || ATC] || TDES(MK)[00..00 || ~ATC]."""
    _double_length(master_key, "an ICC master key")
    atc_b = _atc_bytes(atc)
    return adjust_parity(tdes_encrypt_ecb(master_key, bytes(6) + atc_b + bytes(6) + xor(atc_b, b"\xff\xff")))


# --- cryptograms ------------------------------------------------------------------------


def application_cryptogram(key: bytes, data: bytes, *, padding: int) -> bytes:
    """An 8-byte ARQC, TC or AAC: MAC algorithm 3 over the cryptogram input data."""
    return retail_mac(key, data, padding=padding, length=8)


def arpc_method1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1 (8.2.1): TDES(key)[ARQC XOR (ARC || '000000000000')], 8 bytes."""
    if len(arqc) != 8:
        raise CryptoInputError(f"an ARQC is 8 bytes, not {len(arqc)}")
    if len(arc) != 2:
        raise CryptoInputError(f"an authorisation response code is 2 bytes, not {len(arc)}")
    _double_length(key, "an ARPC key")
    return tdes_encrypt_ecb(key, xor(arqc, arc + bytes(6)))


def arpc_method2(key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2 (8.2.2): MAC algorithm 3, padding 2, over ARQC || CSU || PAD; 4 bytes."""
    if len(arqc) != 8:
        raise CryptoInputError(f"an ARQC is 8 bytes, not {len(arqc)}")
    if len(csu) != 4:
        raise CryptoInputError(f"a card status update is 4 bytes, not {len(csu)}")
    if len(proprietary) > 8:
        raise CryptoInputError(f"proprietary authentication data is 0 to 8 bytes, not {len(proprietary)}")
    return retail_mac(key, arqc + csu + proprietary, padding=2, length=4)


# --- issuer script secure messaging ----------------------------------------------------


def script_mac_input(header: bytes, atc: int, cryptogram: bytes, data: bytes = b"") -> bytes:
    """Format 2 MAC input with transaction data: CLA INS P1 P2 Lc || ATC || AC || data.

    ``header`` is the 5-byte command header whose Lc counts the data and the
    MAC; ATC and AC take part in the MAC but are not sent.
    """
    if len(header) != 5:
        raise CryptoInputError(f"a command header CLA INS P1 P2 Lc is 5 bytes, not {len(header)}")
    if len(cryptogram) != 8:
        raise CryptoInputError(f"an application cryptogram is 8 bytes, not {len(cryptogram)}")
    return header + _atc_bytes(atc) + cryptogram + data


def script_mac(key: bytes, mac_input: bytes, length: int = 8) -> bytes:
    """The secure messaging MAC: MAC algorithm 3 with padding method 2 (9.2.3)."""
    return retail_mac(key, mac_input, padding=2, length=length)


_CIPHER_STYLES = ("visa", "mastercard", "emv")


def encrypt_script_data(key: bytes, plaintext: bytes, style: str) -> bytes:
    """Encipher confidential script data (9.3).

    - ``visa``: length byte || data, padding method 2, TDES ECB (VIS, also PBOC here).
    - ``mastercard``: padding method 2 only when not whole blocks, TDES CBC zero IV.
    - ``emv``: padding method 2 always, TDES CBC zero IV.
    """
    _double_length(key, "a confidentiality session key")
    if style == "visa":
        if len(plaintext) > 255:
            raise CryptoInputError(f"visa-style enciphered data is at most 255 bytes, not {len(plaintext)}")
        return tdes_encrypt_ecb(key, pad_iso9797_method2(bytes([len(plaintext)]) + plaintext))
    if style == "mastercard":
        padded = plaintext if plaintext and len(plaintext) % 8 == 0 else pad_iso9797_method2(plaintext)
        return tdes_encrypt_cbc(key, padded)
    if style == "emv":
        return tdes_encrypt_cbc(key, pad_iso9797_method2(plaintext))
    raise CryptoInputError(f"encipherment style is one of {_CIPHER_STYLES}, not {style!r}")


def decrypt_script_data(key: bytes, ciphertext: bytes, style: str) -> bytes:
    """Decipher script data enciphered by :func:`encrypt_script_data` in the same style.

    The ``mastercard`` style cannot tell padding from data, so it returns the
    deciphered blocks as they are; the caller knows the plaintext length.
    """
    _double_length(key, "a confidentiality session key")
    if not ciphertext:
        raise CryptoInputError("no enciphered data")
    if style == "visa":
        clear = tdes_decrypt_ecb(key, ciphertext)
        length = clear[0]
        if 1 + length > len(clear):
            raise CryptoInputError(f"enciphered data says {length} bytes but holds {len(clear) - 1}")
        if unpad_iso9797_method2(clear) != clear[: 1 + length]:
            raise CryptoInputError("enciphered data length byte does not match its padding")
        return clear[1 : 1 + length]
    if style == "mastercard":
        return tdes_decrypt_cbc(key, ciphertext)
    if style == "emv":
        return unpad_iso9797_method2(tdes_decrypt_cbc(key, ciphertext))
    raise CryptoInputError(f"encipherment style is one of {_CIPHER_STYLES}, not {style!r}")


# --- PIN blocks for PIN CHANGE / UNBLOCK ---------------------------------------------


def _pin_digits(pin: str, what: str = "PIN") -> str:
    if not 4 <= len(pin) <= 12 or not set(pin) <= _DIGITS:
        raise CryptoInputError(f"a {what} is 4 to 12 decimal digits")
    return pin


def iso9564_format2_pin_block(pin: str) -> bytes:
    """ISO 9564-1 format 2: '2' || PIN length || PIN || 'F' padding, 8 bytes."""
    pin = _pin_digits(pin)
    return bytes.fromhex(f"2{len(pin):X}{pin}".ljust(16, "F"))


def _parse_length_prefixed_pin(nibbles: str, control: str) -> str:
    if nibbles[0] != control:
        raise CryptoInputError(f"PIN block control field is not {control}")
    length = int(nibbles[1], 16)
    pin, filler = nibbles[2 : 2 + length], nibbles[2 + length :]
    if not 4 <= length <= 12 or not set(pin) <= _DIGITS or set(filler) - {"F"}:
        raise CryptoInputError("malformed PIN block")
    return pin


def parse_iso9564_format2_pin_block(block: bytes) -> str:
    """The PIN held by an ISO 9564-1 format 2 PIN block."""
    if len(block) != 8:
        raise CryptoInputError(f"a PIN block is 8 bytes, not {len(block)}")
    return _parse_length_prefixed_pin(block.hex().upper(), "2")


def _vis_mask(icc_ac_master_key: bytes) -> bytes:
    _double_length(icc_ac_master_key, "the ICC AC master key")
    return bytes(4) + icc_ac_master_key[4:8]


def _vis_current_pin_block(current_pin: str) -> bytes:
    return bytes.fromhex(_pin_digits(current_pin, "current PIN").ljust(16, "0"))


def vis_pin_block(icc_ac_master_key: bytes, pin: str, current_pin: str | None = None) -> bytes:
    """VIS PIN block: (len || PIN || 'F'..) XOR (0000 0000 || rightmost 4 bytes of UDK A).

    With the current PIN, the block is further XORed with the current PIN
    left-justified and zero-filled (PIN CHANGE with current PIN, P2 = '01').
    """
    pin = _pin_digits(pin)
    clear = bytes.fromhex(f"{len(pin):02X}{pin}".ljust(16, "F"))
    block = xor(clear, _vis_mask(icc_ac_master_key))
    if current_pin is not None:
        block = xor(block, _vis_current_pin_block(current_pin))
    return block


def parse_vis_pin_block(icc_ac_master_key: bytes, block: bytes, current_pin: str | None = None) -> str:
    """The new PIN held by a VIS PIN block (the card knows its current PIN for P2 = '01')."""
    if len(block) != 8:
        raise CryptoInputError(f"a PIN block is 8 bytes, not {len(block)}")
    clear = xor(block, _vis_mask(icc_ac_master_key))
    if current_pin is not None:
        clear = xor(clear, _vis_current_pin_block(current_pin))
    return _parse_length_prefixed_pin(clear.hex().upper(), "0")
