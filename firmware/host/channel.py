"""The channel to the acquirer host (jPOS style: framing and socket, no message knowledge).

A frame is a 2-byte big-endian length followed by that many bytes (the packed
message, TPDU first). `TcpHostLink` opens one connection per exchange: send one
frame, read one frame, close. A kept-open connection would save a handshake,
but after a timeout a late answer could then be read as the answer to the next
request (a 0400 reading the 0210 it is reversing); a fresh connection can only
ever carry the answer to its own request, and needs no stale-socket detection
on a terminal whose network comes and goes.

TLS is the default (`HostAddress`, `open_host_link`): the server's certificate
is checked against the system's CAs or a given CA file, TLS 1.2 at least.
Plain TCP only when asked for by name (`plain`, the `--plain` of the command
lines), and then only to this machine (a simulated host on 127.0.0.1).

Errors say whether the request may have reached the host, which is what the
reversal logic needs to know:
- `HostUnreachableError`: no connection (or TLS handshake) - nothing was sent;
- `HostTimeoutError`: sent, no whole answer before the deadline;
- `HostConnectionLostError`: sent, then the connection was closed or reset;
- `MessageFieldError` (field ``"length"``): a frame length of 0 or above the bound.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import Final, Protocol

from firmware.clocks import MonotonicClock
from firmware.errors import (
    ConfigError,
    HostConnectionLostError,
    HostTimeoutError,
    HostUnreachableError,
    MessageFieldError,
)

__all__ = [
    "DEFAULT_MAX_FRAME",
    "LOOPBACK_HOSTS",
    "HostAddress",
    "HostLink",
    "TcpHostLink",
    "client_tls_context",
    "frame",
    "open_host_link",
    "read_frame",
]

DEFAULT_MAX_FRAME: Final = 4096
_LENGTH_BYTES: Final = 2
LOOPBACK_HOSTS: Final = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class HostAddress:
    """Where the acquirer is and how to reach it: TLS unless `plain` is asked for (loopback only)."""

    host: str
    port: int
    plain: bool = False
    tls_ca: str | None = None  # PEM file of the CA to trust instead of the system's

    def __post_init__(self) -> None:
        if self.plain and self.host not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"plain TCP to {self.host}: only to a host on this machine ({', '.join(LOOPBACK_HOSTS)}); "
                "the acquirer is reached over TLS"
            )
        if self.plain and self.tls_ca is not None:
            raise ConfigError("a TLS CA file and plain TCP exclude each other")


def client_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The terminal's TLS client: certificate and host name checked, TLS 1.2 or later."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS CA file {ca_file}: cannot be used ({exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class HostLink(Protocol):
    """Send one packed request, get the packed answer (or an error of `firmware.errors`)."""

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes: ...


def frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Length-prefix one message."""
    if not 0 < len(payload) <= min(max_frame, 0xFFFF):
        raise MessageFieldError(f"message of {len(payload)} bytes cannot be framed", "length")
    return len(payload).to_bytes(_LENGTH_BYTES, "big") + payload


def _recv_exactly(
    sock: socket.socket, count: int, deadline: float, monotonic: MonotonicClock, what: str
) -> bytes:
    chunks: list[bytes] = []
    received = 0
    while received < count:
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise HostTimeoutError(f"no {what} from the host in time ({received} of {count} bytes)")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(count - received)
        except TimeoutError:
            raise HostTimeoutError(f"no {what} from the host in time ({received} of {count} bytes)") from None
        except OSError as error:
            raise HostConnectionLostError(f"connection lost while reading the {what}: {error}") from None
        if not chunk:
            raise HostConnectionLostError(
                f"host closed the connection after {received} of {count} bytes of the {what}"
            )
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def read_frame(
    sock: socket.socket,
    deadline: float,
    max_frame: int = DEFAULT_MAX_FRAME,
    monotonic: MonotonicClock = time.monotonic,
) -> bytes:
    """Read one whole frame before `deadline` (a `monotonic` time), however the bytes trickle in."""
    length = int.from_bytes(_recv_exactly(sock, _LENGTH_BYTES, deadline, monotonic, "length"), "big")
    if not 0 < length <= max_frame:
        raise MessageFieldError(
            f"answer frame announces {length} bytes (allowed 1..{max_frame})", "length", 0
        )
    return _recv_exactly(sock, length, deadline, monotonic, "answer")


class TcpHostLink:
    """One TCP (optionally TLS) connection per exchange to the acquirer host."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        tls: ssl.SSLContext | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        monotonic: MonotonicClock = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.tls = tls
        self.max_frame = max_frame
        self._monotonic = monotonic

    def __repr__(self) -> str:
        return f"TcpHostLink({self.host!r}, {self.port}, tls={self.tls is not None})"

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as error:
            raise HostUnreachableError(f"cannot connect to {self.host}:{self.port}: {error}") from None
        if self.tls is None:
            return sock
        try:
            return self.tls.wrap_socket(sock, server_hostname=self.host)
        except OSError as error:
            sock.close()
            raise HostUnreachableError(
                f"TLS handshake with {self.host}:{self.port} failed: {error}"
            ) from None

    def exchange(self, packed: bytes, timeout: float | None = None) -> bytes:
        """Send `packed` (framed), return the answer's payload. Waits at most `timeout` s for it."""
        request = frame(packed, self.max_frame)
        sock = self._connect()
        try:
            deadline = self._monotonic() + (self.read_timeout if timeout is None else timeout)
            try:
                sock.settimeout(max(deadline - self._monotonic(), 0.001))
                sock.sendall(request)
            except TimeoutError:
                raise HostTimeoutError("the host did not take the request in time") from None
            except OSError as error:
                raise HostConnectionLostError(f"connection lost while sending: {error}") from None
            return read_frame(sock, deadline, self.max_frame, self._monotonic)
        finally:
            sock.close()


def open_host_link(
    address: HostAddress, *, connect_timeout: float = 10.0, read_timeout: float = 60.0
) -> TcpHostLink:
    """The link to `address`: TLS (checked against `address.tls_ca` or the system's CAs) unless plain."""
    tls = None if address.plain else client_tls_context(address.tls_ca)
    return TcpHostLink(
        address.host, address.port, connect_timeout=connect_timeout, read_timeout=read_timeout, tls=tls
    )
