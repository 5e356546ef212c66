"""TR-31 (ANSI X9.143) key blocks, versions B (TDES) and D (AES), and TMK injection.

Only the key derivation binding methods are accepted: version B (TDES KBPK,
CMAC-derived KBEK/KBAK, 8-byte TDES-CMAC) and D (AES KBPK, 16-byte
AES-CMAC). Versions A and C (variant binding) are refused.

Block layout: 16-character header (version, length, usage, algorithm, mode
of use, key version, exportability, number of optional blocks, reserved),
optional blocks, then hex of the encrypted key data, then hex of the MAC.
The MAC covers the ASCII header and the clear key data (2-byte key length
in bits, key, padding); the key data is CBC-encrypted with the MAC as IV.

A terminal master key must come as key usage K0 (key encryption or
wrapping key): the TMK's one job is to decrypt the working keys the host
sends at sign-on. K1 is a key block protection key, meant only to protect
other TR-31 blocks, and using it to decrypt UnionPay ECB key data would
break key separation, so it is refused like every other usage. The mode of
use must let the terminal decrypt: D (decrypt/unwrap only), B (both) or N
(no special restrictions); E (encrypt/wrap only) is refused. The algorithm
must be T (TDES), since UnionPay working keys are TDES-encrypted.

The key version number (header offset 9, two characters) is ``00`` when the
key is not versioned; a first character ``c`` says the block carries only a
component of a key, never a whole TMK, and is refused. Any other value is the
key's version, there to prevent re-injection of old keys: `check_newer_key_version`
refuses a block that is not newer than the installed key (compared in ASCII
order, so numerically for digits), unless neither is versioned.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field

from firmware.errors import CryptoError, KeyBlockError
from firmware.keys.blockcipher import (
    AES_BLOCK,
    DES_BLOCK,
    aes_decrypt_cbc,
    cmac_aes,
    cmac_tdes,
    tdes_decrypt_cbc,
)
from firmware.keys.kcv import kcv_hex

__all__ = [
    "NO_KEY_VERSION",
    "TMK_ALGORITHMS",
    "TMK_KEY_USAGE",
    "TMK_MODES_OF_USE",
    "KeyBlockHeader",
    "check_newer_key_version",
    "parse_header",
    "unwrap_key_block",
    "unwrap_tmk",
]

log = logging.getLogger(__name__)

TMK_KEY_USAGE = "K0"
TMK_MODES_OF_USE = ("B", "D", "N")
TMK_ALGORITHMS = ("T",)
NO_KEY_VERSION = "00"
_COMPONENT_MARK = "c"

_HEADER_LENGTH = 16
_ACCEPTED_VERSIONS = ("B", "D")
_MAC_LENGTH = {"B": 8, "D": 16}
_BLOCK_SIZE = {"B": DES_BLOCK, "D": AES_BLOCK}


@dataclass(frozen=True)
class KeyBlockHeader:
    version_id: str
    length: int
    key_usage: str
    algorithm: str
    mode_of_use: str
    key_version_number: str
    exportability: str
    optional_blocks: dict[str, str] = field(default_factory=dict)
    text: str = ""  # the header as it appears in the block, optional blocks included


def _hex_length(text: str, at: int, what: str, field: str) -> int:
    chunk = text[at : at + 2]
    if len(chunk) != 2 or any(c not in "0123456789ABCDEFabcdef" for c in chunk):
        raise KeyBlockError(f"key block header: {what} at offset {at} is not 2 hex digits", field)
    return int(chunk, 16)


def _parse_optional_blocks(block: str, count: int) -> tuple[dict[str, str], int]:
    blocks: dict[str, str] = {}
    pos = _HEADER_LENGTH
    for _ in range(count):
        block_id = block[pos : pos + 2]
        if len(block_id) != 2 or not block_id.isalnum():
            raise KeyBlockError(
                f"key block header: optional block ID at offset {pos} is malformed", "optional blocks"
            )
        length = _hex_length(block, pos + 2, f"optional block {block_id} length", block_id)
        data_start = pos + 4
        if length == 0:  # extended length: 2 hex digits of length-of-length, then the length
            length_of_length = _hex_length(
                block, pos + 4, f"optional block {block_id} length of length", block_id
            )
            # The length of the length counts bytes: the length itself has twice as many hex digits.
            length_text = block[pos + 6 : pos + 6 + 2 * length_of_length]
            if (
                length_of_length == 0
                or len(length_text) != 2 * length_of_length
                or not all(c in "0123456789ABCDEFabcdef" for c in length_text)
            ):
                raise KeyBlockError(
                    f"key block header: optional block {block_id} extended length is malformed", block_id
                )
            length = int(length_text, 16)
            data_start = pos + 6 + 2 * length_of_length
        end = pos + length
        if end < data_start or end > len(block):
            raise KeyBlockError(
                f"key block header: optional block {block_id} length {length} does not fit", block_id
            )
        blocks[block_id] = block[data_start:end]
        pos = end
    return blocks, pos


def parse_header(block: str) -> KeyBlockHeader:
    """Parse and check the header (optional blocks included) of a TR-31 key block."""
    if not block.isascii() or not block.isprintable():
        raise KeyBlockError("key block must be printable ASCII", "key block")
    if len(block) < _HEADER_LENGTH:
        raise KeyBlockError(f"key block too short for its header ({len(block)} characters)", "length")
    version = block[0]
    if version not in _ACCEPTED_VERSIONS:
        raise KeyBlockError(
            f"key block version {version!r} is not accepted "
            "(only B and D, the key derivation binding methods)",
            "version id",
        )
    if not block[1:5].isdigit():
        raise KeyBlockError("key block header: length field (offset 1) is not 4 digits", "length")
    length = int(block[1:5])
    if length != len(block):
        raise KeyBlockError(
            f"key block header: length field says {length}, the block has {len(block)} characters", "length"
        )
    for offset, width, name in [
        (5, 2, "key usage"),
        (7, 1, "algorithm"),
        (8, 1, "mode of use"),
        (9, 2, "key version number"),
        (11, 1, "exportability"),
    ]:
        if not block[offset : offset + width].isalnum():
            raise KeyBlockError(f"key block header: {name} (offset {offset}) is malformed", name)
    if not block[12:14].isdigit():
        raise KeyBlockError(
            "key block header: number of optional blocks (offset 12) is not 2 digits",
            "number of optional blocks",
        )
    optional, header_end = _parse_optional_blocks(block, int(block[12:14]))
    return KeyBlockHeader(
        version_id=version,
        length=length,
        key_usage=block[5:7],
        algorithm=block[7],
        mode_of_use=block[8],
        key_version_number=block[9:11],
        exportability=block[11],
        optional_blocks=optional,
        text=block[:header_end],
    )


# (algorithm indicator, key bits, CMAC calls) by KBPK length, per version.
_KDF_PARAMETERS = {
    "B": {16: (0x0000, 128, 2), 24: (0x0001, 192, 3)},
    "D": {16: (0x0002, 128, 1), 24: (0x0003, 192, 2), 32: (0x0004, 256, 2)},
}


def _derive_kbek_kbak(version: str, kbpk: bytes) -> tuple[bytes, bytes]:
    """KBEK and KBAK by CMAC over the TR-31 derivation data, one call per cipher block of key."""
    parameters = _KDF_PARAMETERS[version].get(len(kbpk))
    if parameters is None:
        sizes = " or ".join(str(n) for n in _KDF_PARAMETERS[version])
        raise KeyBlockError(f"version {version} needs a {sizes}-byte KBPK, got {len(kbpk)} bytes", "KBPK")
    algorithm, bits, calls = parameters
    cmac = cmac_tdes if version == "B" else cmac_aes

    def derive(usage: int) -> bytes:
        suffix = usage.to_bytes(2, "big") + b"\x00" + algorithm.to_bytes(2, "big") + bits.to_bytes(2, "big")
        material = b"".join(cmac(kbpk, bytes([counter]) + suffix) for counter in range(1, calls + 1))
        return material[: len(kbpk)]

    return derive(0x0000), derive(0x0001)


def unwrap_key_block(kbpk: bytes, block: str) -> tuple[KeyBlockHeader, bytes]:
    """Check the MAC of a version B or D key block under `kbpk` and return its header and clear key."""
    block = block.strip()
    header = parse_header(block)
    version = header.version_id
    mac_chars = _MAC_LENGTH[version] * 2
    body = block[len(header.text) :]
    if len(block) % _BLOCK_SIZE[version]:
        raise KeyBlockError(
            f"key block length {len(block)} is not a multiple of {_BLOCK_SIZE[version]}", "length"
        )
    try:
        encrypted = bytes.fromhex(body[:-mac_chars])
    except ValueError as exc:
        raise KeyBlockError("key block: encrypted key data or MAC is not hex", "key data") from exc
    try:
        received_mac = bytes.fromhex(body[-mac_chars:])
    except ValueError as exc:
        raise KeyBlockError("key block: encrypted key data or MAC is not hex", "MAC") from exc
    if not encrypted or len(encrypted) % _BLOCK_SIZE[version]:
        raise KeyBlockError(
            f"key block: encrypted key data of {len(encrypted)} bytes is malformed", "key data"
        )
    if len(received_mac) != _MAC_LENGTH[version]:
        raise KeyBlockError(f"key block: MAC of {len(received_mac)} bytes is malformed", "MAC")
    kbek, kbak = _derive_kbek_kbak(version, kbpk)
    try:
        if version == "B":
            clear = tdes_decrypt_cbc(kbek, received_mac, encrypted)
            mac = cmac_tdes(kbak, header.text.encode("ascii") + clear)
        else:
            clear = aes_decrypt_cbc(kbek, received_mac, encrypted)
            mac = cmac_aes(kbak, header.text.encode("ascii") + clear)
    except CryptoError as exc:
        raise KeyBlockError(f"key block: {exc}", "KBPK") from exc
    if not hmac.compare_digest(mac, received_mac):
        raise KeyBlockError("key block MAC does not verify: wrong KBPK or altered block", "MAC")
    key_bits = int.from_bytes(clear[:2], "big")
    if key_bits % 8 or key_bits == 0 or 2 + key_bits // 8 > len(clear):
        raise KeyBlockError(
            f"key block: key length field ({key_bits} bits) does not fit the key data", "key length"
        )
    return header, clear[2 : 2 + key_bits // 8]


def unwrap_tmk(kbpk: bytes, block: str) -> tuple[KeyBlockHeader, bytes]:
    """Unwrap a terminal master key: a K0 TDES key the terminal may decrypt with, else KeyBlockError."""
    header, key = unwrap_key_block(kbpk, block)
    if header.key_usage != TMK_KEY_USAGE:
        raise KeyBlockError(
            f"key block key usage {header.key_usage!r} is not a terminal master key (expected K0)",
            "key usage",
        )
    if header.algorithm not in TMK_ALGORITHMS:
        raise KeyBlockError(
            f"key block algorithm {header.algorithm!r} is not accepted for a TMK (expected T)", "algorithm"
        )
    if header.mode_of_use not in TMK_MODES_OF_USE:
        raise KeyBlockError(
            f"key block mode of use {header.mode_of_use!r} does not allow decryption (expected D, B or N)",
            "mode of use",
        )
    if header.key_version_number.startswith(_COMPONENT_MARK):
        raise KeyBlockError(
            f"key block key version number {header.key_version_number!r} (offset 9) marks a key "
            "component, not a whole TMK",
            "key version number",
        )
    if len(key) not in (16, 24):
        raise KeyBlockError(
            f"TMK must be a double or triple length TDES key, got {len(key)} bytes", "key length"
        )
    log.info("unwrapped TMK key block version %s, KCV %s", header.version_id, kcv_hex("tdes", key))
    return header, key


def check_newer_key_version(new: str, installed: str | None) -> None:
    """KeyBlockError unless a key of version `new` may replace the installed one (None: none installed).

    An unversioned installed key (``00``, or ``""`` for one stored without a
    version) may be replaced by any block; a versioned one only by a block of a
    higher version, so a captured older block cannot roll the key back.
    """
    if installed is None or installed in ("", NO_KEY_VERSION):
        return
    if new == NO_KEY_VERSION:
        raise KeyBlockError(
            f"key block has no key version (offset 9: '00') but the installed key is version "
            f"{installed!r}: refusing a block that may be an old key",
            "key version number",
        )
    if new <= installed:
        raise KeyBlockError(
            f"key block key version {new!r} (offset 9) is not newer than the installed {installed!r}: "
            "refusing to re-inject an old key",
            "key version number",
        )
