"""The TCP channel against the simulated host on 127.0.0.1, each fault switch, and scripted raw servers."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware.errors import (
    HostConnectionLostError,
    HostTimeoutError,
    HostUnreachableError,
    MessageFieldError,
    MessageFormatError,
)
from firmware.host.channel import TcpHostLink, frame, read_frame
from firmware.host.spec import pack, unpack
from sim.host import AcquirerHost, Faults, SimHost

ECHO_TEST = {
    "t": "0820",
    "11": "000042",
    "41": "00000001",
    "42": "123456789012345",
    "60": "00000001301",
}
LINK_TIMEOUT = 60.0  # the links' own bounds: only a test that asks for a shorter one times out
WAIT_S = 30.0  # well under LINK_TIMEOUT: proves the shorter bound asked for was kept


@pytest.fixture
def sim() -> Iterator[SimHost]:
    with SimHost(AcquirerHost()) as running:
        yield running


def _link(port: int, **kwargs: object) -> TcpHostLink:
    return TcpHostLink(
        "127.0.0.1",
        port,
        connect_timeout=LINK_TIMEOUT,
        read_timeout=LINK_TIMEOUT,
        **kwargs,  # type: ignore[arg-type]
    )


def test_exchange_gets_the_answer(sim: SimHost) -> None:
    answer = unpack(_link(sim.port).exchange(pack(ECHO_TEST)))
    assert answer["t"] == "0830"
    assert answer["11"] == "000042"
    assert answer["39"] == "00"


def test_answer_tpdu_swaps_the_addresses(sim: SimHost) -> None:
    answer = unpack(_link(sim.port).exchange(pack({**ECHO_TEST, "tpdu": "6000120034"})))
    assert answer["tpdu"] == "6000340012"


def test_drop_times_out_within_the_bound(sim: SimHost) -> None:
    sim.host.set_faults("drop")
    started = time.monotonic()
    with pytest.raises(HostTimeoutError):
        _link(sim.port).exchange(pack(ECHO_TEST), timeout=0.3)
    assert 0.25 <= time.monotonic() - started < WAIT_S  # the 0.3 s asked for, not the link's 60 s


def test_close_without_answer(sim: SimHost) -> None:
    sim.host.set_faults("close")
    with pytest.raises(HostConnectionLostError):
        _link(sim.port).exchange(pack(ECHO_TEST))


def test_garbage_answer_is_a_format_error(sim: SimHost) -> None:
    sim.host.set_faults(Faults(garbage=True))
    for _ in range(5):
        raw = _link(sim.port).exchange(pack(ECHO_TEST))
        with pytest.raises(MessageFormatError):
            unpack(raw)


def test_delay_shorter_than_the_timeout_is_answered(sim: SimHost) -> None:
    sim.host.set_faults("delay=0.2")
    assert unpack(_link(sim.port).exchange(pack(ECHO_TEST), timeout=WAIT_S))["39"] == "00"


def test_delay_longer_than_the_timeout_times_out(sim: SimHost) -> None:
    sim.host.set_faults(
        f"delay={LINK_TIMEOUT}"
    )  # no answer while the test runs (stopping the host ends the wait)
    with pytest.raises(HostTimeoutError):
        _link(sim.port).exchange(pack(ECHO_TEST), timeout=0.3)


def test_faults_aimed_and_counted(sim: SimHost) -> None:
    sim.host.set_faults("close,only=0820,times=1")
    with pytest.raises(HostConnectionLostError):
        _link(sim.port).exchange(pack(ECHO_TEST))
    assert unpack(_link(sim.port).exchange(pack(ECHO_TEST)))["39"] == "00"


def test_decline_switch(sim: SimHost) -> None:
    sim.host.set_faults("decline=96")
    # network management is answered by the host itself: a forced decline is for financial messages
    assert unpack(_link(sim.port).exchange(pack(ECHO_TEST)))["39"] == "00"


def test_unreachable_host_means_nothing_was_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening: refused, and no other socket can take the port
        port = probe.getsockname()[1]
        with pytest.raises(HostUnreachableError):
            _link(port).exchange(pack(ECHO_TEST))


# ----- scripted raw servers -------------------------------------------------------------------------------


def _serve_once(script: Callable[[socket.socket], None]) -> tuple[int, threading.Thread]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        with listener:
            listener.settimeout(WAIT_S)
            connection, _ = listener.accept()
            with connection:
                script(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def _read_request(connection: socket.socket) -> bytes:
    return read_frame(connection, time.monotonic() + WAIT_S)


ANSWER = pack({**ECHO_TEST, "t": "0830", "39": "00"})


def test_answer_trickling_in_byte_by_byte_is_assembled() -> None:
    def script(connection: socket.socket) -> None:
        _read_request(connection)
        for byte in frame(ANSWER):
            connection.sendall(bytes([byte]))
            time.sleep(0.002)

    port, thread = _serve_once(script)
    assert _link(port).exchange(pack(ECHO_TEST), timeout=WAIT_S) == ANSWER
    thread.join(WAIT_S)


def test_trickle_past_the_deadline_times_out() -> None:
    stop = threading.Event()

    def script(connection: socket.socket) -> None:
        _read_request(connection)
        for byte in frame(ANSWER):
            if stop.wait(0.1):
                return
            connection.sendall(bytes([byte]))

    port, thread = _serve_once(script)
    started = time.monotonic()
    with pytest.raises(HostTimeoutError):
        _link(port).exchange(pack(ECHO_TEST), timeout=0.5)
    assert time.monotonic() - started < WAIT_S  # the 0.5 s asked for, not the link's 60 s
    stop.set()
    thread.join(WAIT_S)


def test_close_in_the_middle_of_the_answer() -> None:
    def script(connection: socket.socket) -> None:
        _read_request(connection)
        connection.sendall(frame(ANSWER)[:10])

    port, thread = _serve_once(script)
    with pytest.raises(HostConnectionLostError):
        _link(port).exchange(pack(ECHO_TEST), timeout=WAIT_S)
    thread.join(WAIT_S)


def test_reset_is_a_lost_connection() -> None:
    def script(connection: socket.socket) -> None:
        _read_request(connection)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    port, thread = _serve_once(script)
    with pytest.raises(HostConnectionLostError):
        _link(port).exchange(pack(ECHO_TEST), timeout=WAIT_S)
    thread.join(WAIT_S)


@pytest.mark.parametrize("length", [0, 4097, 0xFFFF])
def test_frame_length_out_of_bounds(length: int) -> None:
    def script(connection: socket.socket) -> None:
        _read_request(connection)
        connection.sendall(length.to_bytes(2, "big") + b"\x00" * 16)

    port, thread = _serve_once(script)
    with pytest.raises(MessageFieldError) as caught:
        _link(port).exchange(pack(ECHO_TEST), timeout=WAIT_S)
    assert caught.value.field == "length"
    thread.join(WAIT_S)


def test_outgoing_frame_is_bounded() -> None:
    with pytest.raises(MessageFieldError):
        frame(b"\x00" * 5000)
    with pytest.raises(MessageFieldError):
        frame(b"")


def test_request_goes_out_as_one_length_prefixed_frame() -> None:
    received: list[bytes] = []

    def script(connection: socket.socket) -> None:
        received.append(_read_request(connection))
        connection.sendall(frame(ANSWER))

    port, thread = _serve_once(script)
    _link(port).exchange(pack(ECHO_TEST))
    thread.join(WAIT_S)
    assert received == [pack(ECHO_TEST)]


# ----- TLS ----------------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
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
    cert_path, key_path = directory / "host.pem", directory / "host.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_exchange_and_untrusted_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    with SimHost(AcquirerHost(), tls=server_context) as sim:
        trusting = ssl.create_default_context(cafile=str(cert))
        answer = unpack(_link(sim.port, tls=trusting).exchange(pack(ECHO_TEST)))
        assert answer["39"] == "00"
        with pytest.raises(HostUnreachableError):
            _link(sim.port, tls=ssl.create_default_context()).exchange(pack(ECHO_TEST))
        with pytest.raises((HostConnectionLostError, HostTimeoutError)):
            _link(sim.port).exchange(pack(ECHO_TEST), timeout=1.0)  # plain TCP to a TLS port
