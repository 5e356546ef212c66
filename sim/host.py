"""The simulated acquirer host on 127.0.0.1: `AcquirerHost` behind a threaded TCP server.

Frames are a 2-byte big-endian length and the message (TPDU first), several
per connection if the terminal keeps it open; optional TLS. ``pos-sim host
--port N [--faults SPEC] [--terminals FILE] [--ledger FILE] [--notices FILE]
[--completion-tolerance PCT]`` (or ``python -m sim.host``) prints the port it
listens on and then takes ``faults SPEC`` / ``quit`` lines on standard input.
``--terminals`` is a JSON list of registered terminals (what ``pos-sim kit``
writes); ``--ledger`` / ``--notices`` get the host's ledger and the customer
notices it received as JSON, rewritten crash-safe after every change.
See `sim.acquirer` for what it answers and the fault switches.
"""

from __future__ import annotations

import argparse
import logging
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sim.acquirer import (
    DEFAULT_COMPLETION_TOLERANCE,
    DEFAULT_TERMINALS,
    AcquirerHost,
    Faults,
    IssuerDecision,
    LedgerEntry,
    LedgerStatus,
    RegisteredTerminal,
    Reply,
    ReplyAction,
    TransactionCode,
    amount_rules,
    issuer_from_profiles,
    load_terminals,
    signed_record_field,
)
from sim.emvcrypto import SimCryptoError
from sim.errors import HostCodecError, HostConfigError, ProfileError

__all__ = [
    "DEFAULT_COMPLETION_TOLERANCE",
    "DEFAULT_TERMINALS",
    "MAX_FRAME",
    "AcquirerHost",
    "Faults",
    "IssuerDecision",
    "LedgerEntry",
    "LedgerStatus",
    "RegisteredTerminal",
    "Reply",
    "ReplyAction",
    "SimHost",
    "TransactionCode",
    "add_host_command",
    "amount_rules",
    "issuer_from_profiles",
    "load_terminals",
    "main",
    "signed_record_field",
]

log = logging.getLogger("sim.host")

MAX_FRAME: Final = 4096


# ----- TCP server ---------------------------------------------------------------------
def _read_frame(sock: socket.socket, max_frame: int) -> bytes | None:
    """One whole frame, or None when the peer closed between frames."""
    header = _read_exactly(sock, 2)
    if header is None:
        return None
    length = int.from_bytes(header, "big")
    if not 0 < length <= max_frame:
        raise HostCodecError(0, 0, f"frame length {length} out of bounds")
    body = _read_exactly(sock, length)
    if body is None:
        raise HostCodecError(0, 2, "peer closed inside a frame")
    return body


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        if self.server.tls is not None:
            try:
                sock.settimeout(5.0)
                sock = self.server.tls.wrap_socket(sock, server_side=True)
                sock.settimeout(None)
            except OSError as error:
                log.info("TLS handshake failed: %s", error)
                return
        self.server.track(sock)
        try:
            while not self.server.stopping.is_set():
                payload = _read_frame(sock, self.server.max_frame)
                if payload is None:
                    return
                reply = self.server.host.handle(payload)
                if reply.delay and self.server.stopping.wait(reply.delay):
                    return
                if reply.action is ReplyAction.CLOSE:
                    return
                if reply.action is ReplyAction.ANSWER:
                    sock.sendall(len(reply.answer).to_bytes(2, "big") + reply.answer)
        except (OSError, HostCodecError) as error:
            log.info("connection ended: %s", error)
        except Exception:
            # A bug in the simulated host must not leave the terminal waiting: close, and say why.
            log.exception("simulated host failed on a request; closing the connection")
        finally:
            self.server.untrack(sock)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], host: AcquirerHost, tls: ssl.SSLContext | None, max_frame: int
    ) -> None:
        super().__init__(address, _Handler)
        self.host = host
        self.tls = tls
        self.max_frame = max_frame
        self.stopping = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()

    def track(self, sock: socket.socket) -> None:
        with self._clients_lock:
            self._clients.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._clients_lock:
            self._clients.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def close_clients(self) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SimHost:
    """`AcquirerHost` behind a threaded TCP server; ``with SimHost() as host: host.port``."""

    def __init__(
        self,
        host: AcquirerHost | None = None,
        *,
        address: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        max_frame: int = MAX_FRAME,
    ) -> None:
        self.host = host or AcquirerHost()
        self._server = _Server((address, port), self.host, tls, max_frame)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> SimHost:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sim-host", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.close_clients()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimHost:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# ----- command line -------------------------------------------------------------------
def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def _configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--faults", default="", help="comma-separated: drop, close, garbage, bad_mac, delay=S, decline=CODE"
    )
    parser.add_argument("--terminals", type=Path, help="JSON list of terminals (ids, TEST TMK, MAC profile)")
    parser.add_argument("--ledger", type=Path, help="keep the ledger as JSON in this file")
    parser.add_argument("--notices", type=Path, help="keep the customer notices received as JSON here")
    parser.add_argument(
        "--completion-tolerance", type=int, default=DEFAULT_COMPLETION_TOLERANCE, metavar="PCT",
        help="how far above the pre-authorised amount a completion may go (default %(default)s %%)",
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.set_defaults(func=_run)


def add_host_command(subparsers: Any) -> None:
    """Add ``host`` to a ``pos-sim`` argparse subparsers object."""
    parser = subparsers.add_parser("host", help="run the simulated acquirer host on 127.0.0.1")
    _configure_parser(parser)


def _control_loop(sim: SimHost, stream: Any, done: threading.Event) -> None:
    for line in stream:
        command, _, argument = line.strip().partition(" ")
        if command == "faults":
            try:
                sim.host.set_faults(argument)
                print(f"faults: {sim.host.faults}", flush=True)
            except HostConfigError as error:
                print(f"error: {error}", flush=True)
        elif command == "quit":
            done.set()
            return


def _run(args: argparse.Namespace) -> int:
    try:
        terminals: Sequence[RegisteredTerminal] = (
            load_terminals(args.terminals) if args.terminals else DEFAULT_TERMINALS
        )
        host = AcquirerHost(
            terminals, faults=Faults.parse(args.faults), issuer=issuer_from_profiles(),
            completion_tolerance=args.completion_tolerance, ledger_path=args.ledger,
            notices_path=args.notices,
        )
        tls = _tls_context(args.tls_cert, args.tls_key)
    except (HostConfigError, ProfileError, SimCryptoError, OSError, ssl.SSLError) as error:
        print(f"pos-sim host: {error}", file=sys.stderr)
        return 2
    done = threading.Event()
    with SimHost(host, port=args.port, tls=tls) as sim:
        print(f"listening on {sim.address}:{sim.port}", flush=True)
        threading.Thread(target=_control_loop, args=(sim, sys.stdin, done), daemon=True).start()
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sim.host [--port N] [--faults SPEC]`` (the same as ``pos-sim host``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="pos-sim host", description="simulated acquirer host")
    _configure_parser(parser)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

