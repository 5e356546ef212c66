"""The test PKI of the simulated cards: CA, issuer and ICC keys and certificates.

ALL KEYS HERE ARE TEST KEYS, generated for the simulator and committed in
`sim/profiles/pki/`; every file name starts with ``TEST-`` (or ``test-``) and
every file says so in its first line.

``python -m sim.pki`` brings the directory up to date with the profiles: it
creates any key that is missing (``--new-keys`` replaces them all) and
rewrites every certificate from the profiles' current records. Signing is
deterministic, so with unchanged keys and profiles the files do not change.

File names (deterministic):
  TEST-ca-<RID>-<index>.key.pem          CA private key (1408 bits, e = 3)
  TEST-issuer-<issuer>.key.pem           issuer private key (1152 bits, e = 3)
  TEST-icc-<profile>-<AID>.key.pem       ICC private key (1024 bits, e = 3), DDA/CDA cards
  TEST-certs-<profile>-<AID>.json        the values the card's records carry (90, 92, 9F32,
                                         9F46, 9F47, 9F48, 93, 8F) and the hash of the
                                         static data they were signed over
  test-ca-keys.json                      the CA public keys for the terminal
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim import odasign
from sim.errors import PkiError, ProfileError
from sim.profile import PROFILE_DIR, AppProfile, CardProfile, afl_entries, load_profile, profile_names

__all__ = [
    "CA_EXPIRY",
    "CA_KEY_BITS",
    "ICC_KEY_BITS",
    "ISSUER_KEY_BITS",
    "PKI_DIR",
    "STAGE1_PLACEHOLDERS",
    "TEST_LABEL",
    "CardPki",
    "ca_key_path",
    "certs_path",
    "generate",
    "icc_key_path",
    "issuer_key_path",
    "load_card_pki",
    "load_private_key",
    "main",
    "oda_static_data",
]

PKI_DIR = PROFILE_DIR / "pki"
CA_KEY_BITS = 1408
ISSUER_KEY_BITS = 1152
ICC_KEY_BITS = 1024
PUBLIC_EXPONENT = 3
CA_EXPIRY = "2035-12-31"
TEST_LABEL = "TEST KEY MATERIAL for the POS simulator - never use in production"
CA_KEYS_FILE = "test-ca-keys.json"

# Placeholders that do not depend on the static data, so they may sit in records signed for ODA.
STAGE1_PLACEHOLDERS = frozenset(
    {"@ca_index", "@issuer_cert", "@issuer_remainder", "@issuer_exponent", "@icc_exponent"}
)


def ca_key_path(rid: bytes, index: int, directory: Path = PKI_DIR) -> Path:
    return directory / f"TEST-ca-{rid.hex().upper()}-{index:02X}.key.pem"


def issuer_key_path(issuer: str, directory: Path = PKI_DIR) -> Path:
    return directory / f"TEST-issuer-{issuer}.key.pem"


def icc_key_path(profile: str, aid: bytes, directory: Path = PKI_DIR) -> Path:
    return directory / f"TEST-icc-{profile}-{aid.hex().upper()}.key.pem"


def certs_path(profile: str, aid: bytes, directory: Path = PKI_DIR) -> Path:
    return directory / f"TEST-certs-{profile}-{aid.hex().upper()}.json"


@functools.lru_cache(maxsize=64)
def _load_key_cached(path: Path, mtime_ns: int) -> rsa.RSAPrivateKey:
    del mtime_ns  # part of the cache key only: a regenerated file is read again
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read TEST key {path.name}: {exc}; run `python -m sim.pki`") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(f"{path.name} is not an RSA key")
    return key


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise PkiError(f"TEST key {path.name} is missing; run `python -m sim.pki`") from None
    return _load_key_cached(path, mtime)


def _ensure_key(path: Path, bits: int, new_keys: bool, made: set[Path]) -> rsa.RSAPrivateKey:
    if path in made or (path.exists() and not new_keys):
        return load_private_key(path)
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(f"{TEST_LABEL}\n".encode() + pem)
    made.add(path)
    return load_private_key(path)


def oda_static_data(app: AppProfile, values: Mapping[str, bytes]) -> bytes:
    """The static data to be authenticated, from the profile's records as personalised."""
    records = []
    for sfi, first, _, count in afl_entries(app.afl):
        for number in range(first, first + count):
            spec = app.record(sfi, number)
            if spec is None:
                raise PkiError(f"AFL names SFI {sfi} record {number}, which the profile does not have")
            late = {value for _, value in spec.items if isinstance(value, str)} - STAGE1_PLACEHOLDERS
            if late:
                raise PkiError(f"SFI {sfi} record {number} is signed for ODA but carries {sorted(late)}")
            records.append((sfi, spec.encode(values)))
    return odasign.static_data_to_authenticate(records, app.aip, app.data(0x9F4A))


def _icc_cert_expiry(app: AppProfile) -> bytes:
    assert app.pki is not None
    if app.pki.icc_cert_expiry is not None:
        return app.pki.icc_cert_expiry
    expiry = app.data(0x5F24)
    if expiry is None or len(expiry) != 3:
        raise PkiError("no application expiry date (5F24) to take the ICC certificate expiry from")
    return bytes([expiry[1], expiry[0]])  # YYMMDD -> MMYY


def _stage1(
    app: AppProfile,
    ca_key: rsa.RSAPrivateKey,
    issuer_key: rsa.RSAPrivateKey,
    icc_key: rsa.RSAPrivateKey | None,
) -> dict[str, bytes]:
    assert app.pki is not None
    issuer_cert = odasign.issuer_certificate(
        ca_key,
        issuer_key.public_key().public_numbers(),
        odasign.issuer_identifier(app.pan, app.pki.issuer_id_digits),
        app.pki.issuer_cert_expiry,
        app.pki.issuer_cert_serial,
    )
    values = {
        "@ca_index": bytes([app.pki.ca_index]),
        "@issuer_cert": issuer_cert.certificate,
        "@issuer_remainder": issuer_cert.remainder,
        "@issuer_exponent": issuer_cert.exponent,
    }
    if icc_key is not None:
        values["@icc_exponent"] = odasign.exponent_bytes(icc_key.public_key().public_numbers())
    return values


def _write_certs(
    profile: CardProfile, app: AppProfile, directory: Path, new_keys: bool, made: set[Path]
) -> set[Path]:
    assert app.pki is not None
    ca_path = ca_key_path(app.pki.rid, app.pki.ca_index, directory)
    issuer_path = issuer_key_path(app.pki.issuer, directory)
    ca_key = _ensure_key(ca_path, CA_KEY_BITS, new_keys, made)
    issuer_key = _ensure_key(issuer_path, ISSUER_KEY_BITS, new_keys, made)
    used = {ca_path, issuer_path}
    icc_key = None
    if app.oda in ("dda", "cda"):
        icc_path = icc_key_path(profile.name, app.aid, directory)
        icc_key = _ensure_key(icc_path, ICC_KEY_BITS, new_keys, made)
        used.add(icc_path)
    values = _stage1(app, ca_key, issuer_key, icc_key)
    static_data = oda_static_data(app, values)
    values["@ssad"] = odasign.signed_static_data(issuer_key, app.pki.dac, static_data)
    if icc_key is not None:
        icc_cert = odasign.icc_certificate(
            issuer_key,
            icc_key.public_key().public_numbers(),
            app.pan,
            _icc_cert_expiry(app),
            app.pki.icc_cert_serial,
            static_data,
        )
        values["@icc_cert"] = icc_cert.certificate
        values["@icc_remainder"] = icc_cert.remainder
    document = {
        "label": TEST_LABEL,
        "profile": profile.name,
        "aid": app.aid.hex().upper(),
        "static_data_sha1": odasign.sha1(static_data).hex().upper(),
        "values": {name: value.hex().upper() for name, value in sorted(values.items())},
    }
    path = certs_path(profile.name, app.aid, directory)
    _write_text_if_changed(path, json.dumps(document, indent=2) + "\n")
    used.add(path)
    return used


def _write_text_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _ca_keys_document(paths: Sequence[Path]) -> list[dict[str, str]]:
    entries = []
    for path in sorted(paths):
        _, _, rid_hex, index_hex = path.name.removesuffix(".key.pem").split("-")
        rid, index = bytes.fromhex(rid_hex), int(index_hex, 16)
        numbers = load_private_key(path).public_key().public_numbers()
        entries.append(
            {
                "label": "TEST CA KEY - simulator only",
                "rid": rid_hex,
                "index": index_hex,
                "modulus": odasign.modulus_bytes(numbers).hex().upper(),
                "exponent": odasign.exponent_bytes(numbers).hex().upper(),
                "checksum": odasign.ca_key_checksum(rid, index, numbers).hex().upper(),
                "hash_algorithm": "01",
                "key_algorithm": "01",
                "expiry": CA_EXPIRY,
            }
        )
    return entries


def generate(
    directory: Path = PKI_DIR, profiles_dir: Path = PROFILE_DIR, new_keys: bool = False
) -> list[Path]:
    """Bring `directory` up to date with every profile; returns the files it holds afterwards.

    Files named TEST-* that no profile uses any more are removed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    made: set[Path] = set()
    used: set[Path] = set()
    for name in profile_names(profiles_dir):
        profile = load_profile(name, profiles_dir)
        for app in profile.applications:
            if app.pki is not None:
                used |= _write_certs(profile, app, directory, new_keys, made)
    ca_paths = [path for path in used if path.name.startswith("TEST-ca-")]
    ca_file = directory / CA_KEYS_FILE
    document = {"label": TEST_LABEL, "keys": _ca_keys_document(ca_paths)}
    _write_text_if_changed(ca_file, json.dumps(document, indent=2) + "\n")
    used.add(ca_file)
    for path in directory.glob("TEST-*"):
        if path not in used:
            path.unlink()
    return sorted(used)


@dataclass(frozen=True)
class CardPki:
    """What a card needs at run time: the placeholder values of its records, and its ICC key."""

    values: Mapping[str, bytes]
    icc_key: rsa.RSAPrivateKey | None


def load_card_pki(profile: CardProfile, app: AppProfile, directory: Path = PKI_DIR) -> CardPki:
    """Read an application's certificates and ICC key; refuses certificates signed over other data."""
    if app.pki is None:
        return CardPki({}, None)
    path = certs_path(profile.name, app.aid, directory)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        values = {name: bytes.fromhex(text) for name, text in document["values"].items()}
        signed_hash = bytes.fromhex(document["static_data_sha1"])
    except FileNotFoundError:
        raise PkiError(f"{path.name} is missing; run `python -m sim.pki`") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PkiError(f"{path.name} is unreadable ({exc}); run `python -m sim.pki`") from None
    if odasign.sha1(oda_static_data(app, values)) != signed_hash:
        raise PkiError(
            f"{path.name} was signed over other records than profile {profile.name!r} has now;"
            " run `python -m sim.pki`"
        )
    icc_key = None
    if app.oda in ("dda", "cda"):
        icc_key = load_private_key(icc_key_path(profile.name, app.aid, directory))
    return CardPki(values, icc_key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.pki", description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-keys", action="store_true", help="replace every TEST key with a new one")
    args = parser.parse_args(argv)
    try:
        files = generate(new_keys=args.new_keys)
    except (PkiError, ProfileError) as exc:
        print(f"sim.pki: {exc}", file=sys.stderr)
        return 1
    print(f"{len(files)} TEST PKI files up to date in {PKI_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
