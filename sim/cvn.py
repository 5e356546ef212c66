"""Cryptogram versions: what each supported CVN does, from issuer master keys to bytes.

Both sides of the simulated wire use this table: the card (:mod:`sim.cardcrypto`)
to make cryptograms and check issuer data, the issuer (:mod:`sim.issuer`) to
check cryptograms and make ARPCs and scripts. The byte-level primitives are in
:mod:`sim.emvcrypto`.

Crypto config, the ``"crypto"`` object of a card profile (all keys TEST keys)::

    {
      "cvn": 18,                                   required: 10, 18, 16, 17 or 1
      "imk_ac":  "0123456789ABCDEFFEDCBA9876543210", required, 32 hex digits:
      "imk_smi": "FEDCBA98765432100123456789ABCDEF",   issuer master keys for
      "imk_smc": "89ABCDEF0123456776543210FEDCBA98",   AC, script MAC, script cipher
      "arpc_method": 2,              optional: 1 or 2, default from the CVN
      "mk_derivation": "B",          optional: "A" or "B", default from the CVN
      "dki": 1,                      optional: derivation key index put in 9F10, default 1
      "script_mac_length": 8,        optional: 4 to 8, default from the CVN
      "aac_on_issuer_auth_failure": true,  optional: 2nd GENERATE AC answers AAC
                                     to a TC request when issuer authentication failed
      "label": "TEST KEYS - not for production"   optional, ignored ("comment", "note" too)
    }

The CVNs (the config number is the 9F10 CVN byte: 10 = '0A', 18 = '12', 16 = '10',
17 = '11', 1 = '01')::

    cvn  scheme  MK  AC session key            pad  card data in the AC
    10   Visa    A   none (the UDK itself)     1    CVR (4 bytes, 9F10[3:7])
    18   Visa    B   EMV CSK, R = ATC||0*6     2    the whole 9F10
    16   M/Chip  A   MC SKD, R = ATC||0000||UN 2    CVR (6 bytes, 9F10[2:8])
    17   M/Chip  A   MC SKD, R = ATC||0000||UN 2    CVR (6) || counters (9F10[10:18])
    1    PBOC    A   PBOC, 00..ATC / 00..~ATC  2    CVR (4 bytes, 9F10[3:7])

    cvn  ARPC            SM session keys          cipher      PIN block  script MAC
    10   method 1, UDK   Visa (halves XOR ATC)    visa        VIS        8 bytes
    18   method 2, SK    Visa (halves XOR ATC)    visa        VIS        8 bytes
    16   method 1, UDK   EMV CSK, R = ARQC + i    mastercard  ISO 2      8 bytes
    17   method 1, UDK   EMV CSK, R = ARQC + i    mastercard  ISO 2      8 bytes
    1    method 1, SK    PBOC (as the AC key)     visa        VIS        4 bytes

Cryptogram input, in this order: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 (the
terminal data, 29 bytes, from the GENERATE AC command data) || 82 AIP ||
9F36 ATC || the card data of the table. The issuer rebuilds it from the
same tags in field 55.

Issuer Application Data (9F10) the card returns:

- Visa 10 / 18: ``06 DKI CVN CVR(4)``, the CVR starting with its length '03'.
- PBOC 1: ``07 DKI 01 CVR(4) 01`` (algorithm 01 = TDES).
- M/Chip 16 / 17: ``DKI CVN CVR(6) 0000 counters(8)``, counters = cumulative
  offline amount (n12) || consecutive offline count || 'FF'.

Issuer authentication data (tag 91): method 1 ``ARPC(8) || ARC(2)``, the ARC
being the ASCII response code; method 2 ``ARPC(4) || CSU(4) [|| PAD(0-8)]``,
CSU byte 2 bit 8 = issuer approves.

Script secure messaging: MAC over ``CLA INS P1 P2 Lc || ATC || AC || data``
(Lc counts the MAC), padding method 2, under the SMI session key; AC is the
transaction's ARQC, plus i for the i-th script command (from 0) under M/Chip,
which also diversifies the SM session keys with it. PIN CHANGE / UNBLOCK data
is the PIN block enciphered under the SMC session key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sim import emvcrypto
from sim.errors import CryptoConfigError

__all__ = [
    "APPROVING_ARCS",
    "CRYPTOGRAM_VERSIONS",
    "CSU_ISSUER_APPROVES",
    "TERMINAL_AC_TAGS",
    "TEST_IMK_AC",
    "TEST_IMK_SMC",
    "TEST_IMK_SMI",
    "CardKeys",
    "CryptoConfig",
    "CryptoConfigError",
    "CryptogramVersion",
    "IssuerAuthentication",
    "ac_session_key",
    "build_iad",
    "check_issuer_authentication_data",
    "compute_cryptogram",
    "cryptogram_input",
    "decipher_pin",
    "derive_card_keys",
    "encipher_pin",
    "example_crypto_config",
    "iad_cvn",
    "make_issuer_authentication_data",
    "script_command_mac",
    "sm_cryptogram",
    "sm_session_keys",
]

TEST_IMK_AC = "0123456789ABCDEFFEDCBA9876543210"
TEST_IMK_SMI = "FEDCBA98765432100123456789ABCDEF"
TEST_IMK_SMC = "89ABCDEF0123456776543210FEDCBA98"

TERMINAL_AC_TAGS: tuple[tuple[int, int], ...] = (
    (0x9F02, 6),  # amount, authorised
    (0x9F03, 6),  # amount, other
    (0x9F1A, 2),  # terminal country code
    (0x95, 5),  # TVR
    (0x5F2A, 2),  # transaction currency code
    (0x9A, 3),  # transaction date
    (0x9C, 1),  # transaction type
    (0x9F37, 4),  # unpredictable number
)

APPROVING_ARCS = frozenset({b"00", b"08", b"10", b"11", b"Y1", b"Y3"})
CSU_ISSUER_APPROVES = 0x80  # in CSU byte 2

Scheme = Literal["visa", "mchip", "pboc"]


@dataclass(frozen=True)
class CryptogramVersion:
    """What one CVN does; see the module docstring for the table."""

    cvn: int
    scheme: Scheme
    mk_derivation: str
    ac_session_key: Literal["udk", "emv-csk", "mastercard-skd", "pboc"]
    ac_padding: int
    ac_card_data: Literal["cvr4", "iad", "cvr6", "cvr6+counters"]
    arpc_method: int
    arpc_key: Literal["udk", "session"]
    sm_session_key: Literal["visa", "arqc", "pboc"]
    sm_cipher: Literal["visa", "mastercard"]
    pin_block: Literal["vis", "iso2"]
    script_mac_length: int


CRYPTOGRAM_VERSIONS: Mapping[int, CryptogramVersion] = {
    10: CryptogramVersion(10, "visa", "A", "udk", 1, "cvr4", 1, "udk", "visa", "visa", "vis", 8),
    18: CryptogramVersion(18, "visa", "B", "emv-csk", 2, "iad", 2, "session", "visa", "visa", "vis", 8),
    16: CryptogramVersion(
        16, "mchip", "A", "mastercard-skd", 2, "cvr6", 1, "udk", "arqc", "mastercard", "iso2", 8
    ),
    17: CryptogramVersion(
        17, "mchip", "A", "mastercard-skd", 2, "cvr6+counters", 1, "udk", "arqc", "mastercard", "iso2", 8
    ),
    1: CryptogramVersion(1, "pboc", "A", "pboc", 2, "cvr4", 1, "session", "pboc", "visa", "vis", 4),
}

_IGNORED_KEYS = frozenset({"label", "comment", "note"})
_KNOWN_KEYS = frozenset(
    {
        "cvn",
        "imk_ac",
        "imk_smi",
        "imk_smc",
        "arpc_method",
        "mk_derivation",
        "dki",
        "script_mac_length",
        "aac_on_issuer_auth_failure",
    }
)


def _key(cfg: Mapping[str, object], name: str) -> bytes:
    value = cfg.get(name)
    if not isinstance(value, str):
        raise CryptoConfigError(f"crypto config needs {name!r} as 32 hex digits")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise CryptoConfigError(f"crypto config {name!r} is not hex") from None
    if len(key) != 16:
        raise CryptoConfigError(f"crypto config {name!r} is {len(key)} bytes, a double-length key is 16")
    return key


def _int(cfg: Mapping[str, object], name: str, default: int, allowed: range | tuple[int, ...]) -> int:
    value = cfg.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value not in allowed:
        raise CryptoConfigError(f"crypto config {name!r} must be one of {list(allowed)}, not {value!r}")
    return value


@dataclass(frozen=True)
class CryptoConfig:
    """A parsed, checked crypto config. ``repr`` shows key check values, never keys."""

    version: CryptogramVersion
    imk_ac: bytes = field(repr=False)
    imk_smi: bytes = field(repr=False)
    imk_smc: bytes = field(repr=False)
    arpc_method: int
    mk_derivation: str
    dki: int
    script_mac_length: int
    aac_on_issuer_auth_failure: bool

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, object]) -> CryptoConfig:
        unknown = set(cfg) - _KNOWN_KEYS - _IGNORED_KEYS
        if unknown:
            raise CryptoConfigError(f"crypto config has unknown keys {sorted(unknown)}")
        cvn = cfg.get("cvn")
        if not isinstance(cvn, int) or isinstance(cvn, bool) or cvn not in CRYPTOGRAM_VERSIONS:
            known = sorted(CRYPTOGRAM_VERSIONS)
            raise CryptoConfigError(f"crypto config 'cvn' must be one of {known}, not {cvn!r}")
        version = CRYPTOGRAM_VERSIONS[cvn]
        derivation = cfg.get("mk_derivation", version.mk_derivation)
        if derivation not in ("A", "B"):
            raise CryptoConfigError(f"crypto config 'mk_derivation' must be 'A' or 'B', not {derivation!r}")
        aac_on_failure = cfg.get("aac_on_issuer_auth_failure", True)
        if not isinstance(aac_on_failure, bool):
            raise CryptoConfigError("crypto config 'aac_on_issuer_auth_failure' must be true or false")
        return cls(
            version=version,
            imk_ac=_key(cfg, "imk_ac"),
            imk_smi=_key(cfg, "imk_smi"),
            imk_smc=_key(cfg, "imk_smc"),
            arpc_method=_int(cfg, "arpc_method", version.arpc_method, (1, 2)),
            mk_derivation=str(derivation),
            dki=_int(cfg, "dki", 1, range(256)),
            script_mac_length=_int(cfg, "script_mac_length", version.script_mac_length, range(4, 9)),
            aac_on_issuer_auth_failure=aac_on_failure,
        )

    def kcvs(self) -> str:
        """The issuer master keys named by their KCVs, for logs."""
        return " ".join(
            f"{name}:{emvcrypto.key_check_value(key).hex().upper()}"
            for name, key in (("ac", self.imk_ac), ("smi", self.imk_smi), ("smc", self.imk_smc))
        )


def example_crypto_config(cvn: int) -> dict[str, object]:
    """A crypto config with the well-known TEST issuer master keys, for profiles and tests."""
    if cvn not in CRYPTOGRAM_VERSIONS:
        raise CryptoConfigError(f"no cryptogram version {cvn}")
    return {
        "cvn": cvn,
        "imk_ac": TEST_IMK_AC,
        "imk_smi": TEST_IMK_SMI,
        "imk_smc": TEST_IMK_SMC,
        "label": "TEST KEYS - published test values, never for production",
    }


@dataclass(frozen=True)
class CardKeys:
    """One card's ICC master keys (UDKs) for AC, script MAC and script cipher."""

    ac: bytes = field(repr=False)
    smi: bytes = field(repr=False)
    smc: bytes = field(repr=False)


def derive_card_keys(config: CryptoConfig, pan: str, psn: int | None) -> CardKeys:
    """The card's master keys, as personalised from the issuer master keys."""
    option = config.mk_derivation
    return CardKeys(
        ac=emvcrypto.derive_icc_master_key(config.imk_ac, pan, psn, option),
        smi=emvcrypto.derive_icc_master_key(config.imk_smi, pan, psn, option),
        smc=emvcrypto.derive_icc_master_key(config.imk_smc, pan, psn, option),
    )


# --- application cryptograms ---------------------------------------------------------


def ac_session_key(config: CryptoConfig, keys: CardKeys, atc: int, unpredictable_number: bytes) -> bytes:
    """The key that makes this transaction's cryptograms."""
    kind = config.version.ac_session_key
    if kind == "udk":
        return keys.ac
    if kind == "emv-csk":
        return emvcrypto.derive_common_session_key(keys.ac, emvcrypto.emv_csk_diversifier(atc))
    if kind == "mastercard-skd":
        r = emvcrypto.mastercard_skd_diversifier(atc, unpredictable_number)
        return emvcrypto.derive_common_session_key(keys.ac, r)
    return emvcrypto.derive_pboc_session_key(keys.ac, atc)


def _iad_part(version: CryptogramVersion, iad: bytes) -> bytes:
    need = {"cvr4": 7, "iad": 1, "cvr6": 8, "cvr6+counters": 18}[version.ac_card_data]
    if len(iad) < need:
        raise emvcrypto.CryptoInputError(
            f"issuer application data of {len(iad)} bytes is short for CVN {version.cvn}"
        )
    if version.ac_card_data == "cvr4":
        return iad[3:7]
    if version.ac_card_data == "iad":
        return iad
    if version.ac_card_data == "cvr6":
        return iad[2:8]
    return iad[2:8] + iad[10:18]


def cryptogram_input(
    version: CryptogramVersion, terminal: Mapping[int, bytes], aip: bytes, atc: int, iad: bytes
) -> bytes:
    """Terminal data (TERMINAL_AC_TAGS order) || AIP || ATC || the CVN's card data."""
    missing = [f"{tag:X}" for tag, _ in TERMINAL_AC_TAGS if tag not in terminal]
    if missing:
        raise emvcrypto.CryptoInputError(f"cryptogram input lacks tags {missing}")
    if len(aip) != 2:
        raise emvcrypto.CryptoInputError(f"an AIP is 2 bytes, not {len(aip)}")
    if not 0 <= atc <= 0xFFFF:
        raise emvcrypto.CryptoInputError(f"an ATC is 0 to 65535, not {atc}")
    head = b"".join(terminal[tag] for tag, _ in TERMINAL_AC_TAGS)
    return head + aip + atc.to_bytes(2, "big") + _iad_part(version, iad)


def compute_cryptogram(
    config: CryptoConfig, keys: CardKeys, terminal: Mapping[int, bytes], aip: bytes, atc: int, iad: bytes
) -> bytes:
    """The 8-byte ARQC / TC / AAC over the CVN's cryptogram input."""
    un = terminal.get(0x9F37, b"")
    key = ac_session_key(config, keys, atc, un)
    data = cryptogram_input(config.version, terminal, aip, atc, iad)
    return emvcrypto.application_cryptogram(key, data, padding=config.version.ac_padding)


def build_iad(config: CryptoConfig, cvr: bytes, counters: bytes = bytes(7) + b"\xff") -> bytes:
    """The Issuer Application Data (9F10) a card of this CVN returns with this CVR."""
    version = config.version
    if version.scheme == "mchip":
        if len(cvr) != 6 or len(counters) != 8:
            raise emvcrypto.CryptoInputError("an M/Chip IAD needs a 6-byte CVR and 8 bytes of counters")
        return bytes([config.dki, version.cvn]) + cvr + bytes(2) + counters
    if len(cvr) != 4:
        raise emvcrypto.CryptoInputError(f"this CVR is 4 bytes (length byte first), not {len(cvr)}")
    if version.scheme == "pboc":
        return bytes([0x07, config.dki, version.cvn]) + cvr + b"\x01"
    return bytes([0x06, config.dki, version.cvn]) + cvr


def iad_cvn(version: CryptogramVersion, iad: bytes) -> int | None:
    """The CVN byte inside an IAD laid out as this version lays it out, or None if too short."""
    position = 1 if version.scheme == "mchip" else 2
    return iad[position] if len(iad) > position else None


# --- issuer authentication -------------------------------------------------------------


def _arpc_key(config: CryptoConfig, keys: CardKeys, atc: int, unpredictable_number: bytes) -> bytes:
    if config.version.arpc_key == "udk":
        return keys.ac
    return ac_session_key(config, keys, atc, unpredictable_number)


def make_issuer_authentication_data(
    config: CryptoConfig,
    keys: CardKeys,
    *,
    arqc: bytes,
    atc: int,
    unpredictable_number: bytes,
    response_code: str,
    proprietary: bytes = b"",
) -> bytes:
    """Tag 91 contents: method 1 ARPC || ARC, method 2 ARPC || CSU || proprietary data."""
    if len(response_code) != 2 or not response_code.isascii():
        raise emvcrypto.CryptoInputError(f"a response code is two ASCII characters, not {response_code!r}")
    arc = response_code.encode("ascii")
    key = _arpc_key(config, keys, atc, unpredictable_number)
    if config.arpc_method == 1:
        return emvcrypto.arpc_method1(key, arqc, arc) + arc
    approves = arc in APPROVING_ARCS
    csu = bytes([0x80 if proprietary else 0x00, CSU_ISSUER_APPROVES if approves else 0x00, 0x00, 0x00])
    return emvcrypto.arpc_method2(key, arqc, csu, proprietary) + csu + proprietary


@dataclass(frozen=True)
class IssuerAuthentication:
    """What the card learnt from tag 91: was the ARPC right, and did the issuer approve."""

    valid: bool
    issuer_approves: bool
    arc: bytes | None
    csu: bytes | None


def check_issuer_authentication_data(
    config: CryptoConfig, keys: CardKeys, *, arqc: bytes, atc: int, unpredictable_number: bytes, data: bytes
) -> IssuerAuthentication:
    """Card side of EXTERNAL AUTHENTICATE; raises CryptoInputError when the length is wrong."""
    key = _arpc_key(config, keys, atc, unpredictable_number)
    if config.arpc_method == 1:
        if len(data) != 10:
            raise emvcrypto.CryptoInputError(f"method 1 issuer auth data is 10 bytes, not {len(data)}")
        arpc, arc = data[:8], data[8:]
        valid = emvcrypto.arpc_method1(key, arqc, arc) == arpc
        return IssuerAuthentication(valid, valid and arc in APPROVING_ARCS, arc, None)
    if not 8 <= len(data) <= 16:
        raise emvcrypto.CryptoInputError(f"method 2 issuer auth data is 8 to 16 bytes, not {len(data)}")
    arpc, csu, proprietary = data[:4], data[4:8], data[8:]
    valid = emvcrypto.arpc_method2(key, arqc, csu, proprietary) == arpc
    return IssuerAuthentication(valid, valid and bool(csu[1] & CSU_ISSUER_APPROVES), None, csu)


# --- script secure messaging -------------------------------------------------------------


def sm_cryptogram(version: CryptogramVersion, arqc: bytes, index: int) -> bytes:
    """The AC that diversifies script command number ``index`` (ARQC + index under M/Chip)."""
    if version.scheme != "mchip":
        return arqc
    return ((int.from_bytes(arqc, "big") + index) % (1 << 64)).to_bytes(8, "big")


def sm_session_keys(
    config: CryptoConfig, keys: CardKeys, *, atc: int, arqc: bytes, index: int
) -> tuple[bytes, bytes]:
    """(SMI, SMC) session keys for script command number ``index`` of the transaction."""
    kind = config.version.sm_session_key
    if kind == "visa":
        return (
            emvcrypto.derive_visa_sm_session_key(keys.smi, atc),
            emvcrypto.derive_visa_sm_session_key(keys.smc, atc),
        )
    if kind == "pboc":
        return (
            emvcrypto.derive_pboc_session_key(keys.smi, atc),
            emvcrypto.derive_pboc_session_key(keys.smc, atc),
        )
    r = sm_cryptogram(config.version, arqc, index)
    return emvcrypto.derive_common_session_key(keys.smi, r), emvcrypto.derive_common_session_key(keys.smc, r)


def script_command_mac(
    config: CryptoConfig, smi_session_key: bytes, *, header: bytes, atc: int, cryptogram: bytes, data: bytes
) -> bytes:
    """The MAC ending a script command whose header (Lc included) and data are given."""
    mac_input = emvcrypto.script_mac_input(header, atc, cryptogram, data)
    return emvcrypto.script_mac(smi_session_key, mac_input, config.script_mac_length)


def encipher_pin(
    config: CryptoConfig, keys: CardKeys, smc_session_key: bytes, new_pin: str, current_pin: str | None
) -> bytes:
    """The enciphered PIN data of a PIN CHANGE (issuer side)."""
    version = config.version
    if version.pin_block == "vis":
        block = emvcrypto.vis_pin_block(keys.ac, new_pin, current_pin)
    else:
        block = emvcrypto.iso9564_format2_pin_block(new_pin)
    cipher = "visa" if version.sm_cipher == "visa" else "mastercard"
    return emvcrypto.encrypt_script_data(smc_session_key, block, cipher)


def decipher_pin(
    config: CryptoConfig, keys: CardKeys, smc_session_key: bytes, data: bytes, current_pin: str | None
) -> str:
    """The new PIN of a PIN CHANGE (card side); raises CryptoInputError when malformed."""
    version = config.version
    cipher = "visa" if version.sm_cipher == "visa" else "mastercard"
    block = emvcrypto.decrypt_script_data(smc_session_key, data, cipher)
    if version.pin_block == "vis":
        return emvcrypto.parse_vis_pin_block(keys.ac, block, current_pin)
    return emvcrypto.parse_iso9564_format2_pin_block(block[:8])
