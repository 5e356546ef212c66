"""No single DES by default, the legacy mode named and shown, TLS the default of the real host link."""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import ssl
from pathlib import Path

import psec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import firmware.__main__ as entry
from firmware.cli.keys import main as pos_keys
from firmware.cli.txn import main as pos_txn
from firmware.errors import ConfigError, HostUnreachableError, KeyBlockError
from firmware.host.channel import HostAddress, HostLink, open_host_link
from firmware.host.profile import load_host_profile
from firmware.host.spec import pack, unpack
from firmware.keys.blockcipher import single_des_problem
from firmware.keys.layout import KeyLayout, open_key_store
from firmware.keys.tmk import install_tmk
from sim.host import AcquirerHost, SimHost

KBPK = bytes.fromhex("89E88CF7931444F334BD7547FC3F380C")  # TEST key
ECHO_TEST = {"t": "0820", "11": "000001", "41": "00000001", "42": "123456789012345", "60": "00000001301"}


def _self_signed(directory: Path) -> Path:
    """A TEST certificate for 127.0.0.1 and its key; returns the certificate (the key beside it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TEST sim host")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    (directory / "host.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "host.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return directory / "host.pem"
WEAK_TMK = bytes.fromhex("0123456789ABCDEF") * 2


def test_the_shipped_profile_is_not_single_des() -> None:
    profile = load_host_profile()
    assert profile.mac_profile == "x9.19" and not profile.legacy_single_des
    assert profile.key_scheme in ("003", "004")


def _profile(tmp_path: Path, **changes: object) -> Path:
    document = json.loads((Path(__file__).parent.parent / "firmware/data/host.json").read_text())
    document.update(changes)
    path = tmp_path / "host.json"
    path.write_text(json.dumps(document))
    return path


def test_the_single_length_scheme_needs_the_legacy_mode_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"001 .*legacy_single_des"):
        load_host_profile(_profile(tmp_path, key_scheme="001"))
    legacy = load_host_profile(_profile(tmp_path, key_scheme="001", legacy_single_des=True))
    assert legacy.legacy_single_des and legacy.key_scheme == "001"


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        (bytes(8), True),
        (WEAK_TMK, True),
        (bytes.fromhex("0123456789ABCDEF0023456789ABCDEF"), True),  # halves differ in a parity bit only
        (bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), False),
        (bytes.fromhex("0123456789ABCDEF") * 2 + bytes.fromhex("FEDCBA9876543210"), True),
        (bytes.fromhex("FEDCBA9876543210") + bytes.fromhex("0123456789ABCDEF") * 2, True),
        (bytes.fromhex("0123456789ABCDEFFEDCBA98765432101F2E3D4C5B6A7988"), False),
    ],
)
def test_single_des_problem(key: bytes, weak: bool) -> None:
    assert (single_des_problem(key) is not None) is weak


def test_a_tmk_with_equal_halves_is_refused_unless_legacy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert pos_keys(["--data-dir", str(data), "provision"], env={}, stdout=io.StringIO()) == 0
    store = open_key_store(KeyLayout.under(data))
    block = str(psec.tr31.wrap(KBPK, "B0000K0TD01N0000", WEAK_TMK))
    with pytest.raises(KeyBlockError, match="TMK is its first two halves are equal"):
        install_tmk(store, KBPK, block)
    with pytest.raises(KeyBlockError, match="KBPK"):
        install_tmk(store, bytes(16), block)
    assert "TMK" not in store
    install_tmk(store, KBPK, block, allow_single_des=True)
    assert store.get("TMK") == WEAK_TMK


def test_pos_keys_shows_the_legacy_mode_and_marks_single_des_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert pos_keys(["--data-dir", str(data), "provision"], env={}, stdout=io.StringIO()) == 0
    kbpk = tmp_path / "kbpk.hex"
    kbpk.write_text(KBPK.hex())
    block = str(psec.tr31.wrap(KBPK, "B0000K0TD01N0000", WEAK_TMK))
    load = ["load-tmk", "--block", "-", "--kbpk-file", str(kbpk)]
    err = io.StringIO()
    assert pos_keys(["--data-dir", str(data), *load], env={}, stdin=io.StringIO(block), stderr=err) == 1
    assert "equal" in err.getvalue()
    legacy = ["--data-dir", str(data), "--host-profile", str(_profile(tmp_path, legacy_single_des=True))]
    assert pos_keys([*legacy, *load], env={}, stdin=io.StringIO(block), stdout=io.StringIO()) == 0
    out = io.StringIO()
    assert pos_keys([*legacy, "list"], env={}, stdout=out) == 0
    assert out.getvalue().startswith("LEGACY MODE: the host profile allows single-DES keys")
    assert "TMK" in out.getvalue() and "SINGLE DES (legacy)" in out.getvalue()
    out = io.StringIO()
    assert pos_keys(["--data-dir", str(data), "list"], env={}, stdout=out) == 0
    assert "LEGACY" not in out.getvalue() and "SINGLE DES (not allowed)" in out.getvalue()


# ----- TLS by default ------------------------------------------------------------------------------


def test_the_real_host_link_is_tls_unless_plain_is_asked_for() -> None:
    assert entry.open_link(HostAddress("acquirer.example", 5000)).tls is not None  # type: ignore[attr-defined]
    assert entry.open_link(HostAddress("127.0.0.1", 5000, plain=True)).tls is None  # type: ignore[attr-defined]
    context = open_host_link(HostAddress("acquirer.example", 5000)).tls
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize("host", ["10.0.0.7", "acquirer.example", "0.0.0.0"])
def test_plain_tcp_only_to_this_machine(host: str) -> None:
    with pytest.raises(ConfigError, match="only to a host on this machine"):
        HostAddress(host, 5000, plain=True)


def test_pos_txn_refuses_plain_to_another_machine(tmp_path: Path) -> None:
    err = io.StringIO()
    code = pos_txn(
        ["--data-dir", str(tmp_path), "--host", "10.0.0.7:5000", "--plain", "queue"],
        open_reader=entry.open_reader,
        open_link=entry.open_link,
        stderr=err,
    )
    assert code == 64 and "only to a host on this machine" in err.getvalue()


def test_pos_txn_reaches_a_tls_host_by_default(tmp_path: Path) -> None:
    cert = _self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, tmp_path / "host.key")
    opened: list[HostLink] = []

    def open_link(address: HostAddress) -> HostLink:
        opened.append(open_host_link(address, connect_timeout=2.0, read_timeout=5.0))
        return opened[-1]

    with SimHost(AcquirerHost(), tls=server) as sim:
        address = ["--host", f"127.0.0.1:{sim.port}", "--tls-ca", str(cert)]
        pos_txn([*address, "--data-dir", str(tmp_path / "none"), "queue"], open_reader=entry.open_reader,
                open_link=open_link, stderr=io.StringIO())  # fmt: skip
        assert unpack(opened[-1].exchange(pack(ECHO_TEST)))["39"] == "00"
        untrusted = open_host_link(HostAddress("127.0.0.1", sim.port), connect_timeout=2.0, read_timeout=2.0)
        with pytest.raises(HostUnreachableError, match="TLS handshake"):
            untrusted.exchange(pack(ECHO_TEST))
