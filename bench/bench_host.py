"""Host round trips over loopback TCP, as a ratio to a bare TCP echo of the same size.

Floor (measured in the same run): connect, send one length-prefixed frame of
the request's size, read back a frame of the answer's size, close - against a
bare echo server, the same connection-per-exchange pattern `TcpHostLink` uses.
The ratio says what the packager, the MACs, the simulated host's work (codec,
keys, ledger) and, for the sign-on, the key store's crash-safe write cost on
top of the network itself. A kept-open echo connection is printed too, to
show what one connection per exchange costs.
"""

from __future__ import annotations

import socket
import socketserver
import tempfile
import threading
import time
from pathlib import Path

from _harness import best_of

from firmware.errors import PosError
from firmware.host.channel import TcpHostLink, frame, read_frame
from firmware.host.codes import TransactionCode
from firmware.host.mac import KeyMac, StoreMac, seal
from firmware.host.messages import TerminalIdentity, field60, format_amount, send
from firmware.host.signon import build_sign_on, sign_on
from firmware.host.spec import pack
from firmware.keys.device import DeviceKey
from firmware.keys.kcv import KIND_TDES
from firmware.keys.mac import MacProfile
from firmware.keys.store import KeyStore
from sim.host import AcquirerHost, RegisteredTerminal, SimHost

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # TEST key
TERMINAL = TerminalIdentity("00000001", "123456789012345")
ROUNDS = 200


class _Echo(socketserver.BaseRequestHandler):
    """Answers each frame with a frame of the size the server was told to answer with."""

    server: _EchoServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                read_frame(sock, time.monotonic() + 5)
            except PosError:  # the client closed: this connection is done
                return
            sock.sendall(frame(bytes(self.server.answer_size)))


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    answer_size = 1


def _echo_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(frame(payload))
        return read_frame(sock, time.monotonic() + 5)


def main() -> None:
    echo = _EchoServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    echo_port = echo.server_address[1]

    with tempfile.TemporaryDirectory() as directory, SimHost(
        AcquirerHost((RegisteredTerminal("00000001", "123456789012345", TMK),))
    ) as sim:
        store = KeyStore(Path(directory), DeviceKey(bytes(range(32))))
        store.put("TMK", TMK, KIND_TDES, 1)
        link = TcpHostLink("127.0.0.1", sim.port, connect_timeout=5, read_timeout=5)
        stan = iter(range(1, 999_999))

        sign_on_request = pack(build_sign_on(TERMINAL, stan=1, batch_number=1, operator="001"))
        sign_on_answer = link.exchange(sign_on_request)
        sign_on(link, store, TERMINAL, stan=next(stan), batch_number=1)
        memory_mac = KeyMac(MacProfile.UNIONPAY_ECB, store.get("MAK"))
        store_mac = StoreMac(store, MacProfile.UNIONPAY_ECB)

        def sale() -> dict[str, str]:
            return {
                **TERMINAL.fields(), "t": "0200", "3": "000000", "4": format_amount(1000),
                "11": f"{next(stan):06d}", "60": field60(TransactionCode.SALE, 1),
            }

        sale_request = seal(sale(), memory_mac)
        sale_answer = link.exchange(sale_request)

        echo.answer_size = len(sign_on_answer)
        floor_sign_on = best_of(5, ROUNDS, lambda: _echo_exchange(echo_port, sign_on_request))
        t_sign_on_wire = best_of(5, ROUNDS, lambda: link.exchange(sign_on_request))
        t_sign_on = best_of(
            3, ROUNDS // 4, lambda: sign_on(link, store, TERMINAL, stan=next(stan), batch_number=1)
        )

        echo.answer_size = len(sale_answer)
        floor_sale = best_of(5, ROUNDS, lambda: _echo_exchange(echo_port, sale_request))
        with socket.create_connection(("127.0.0.1", echo_port)) as kept:
            kept.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def kept_open() -> bytes:
                kept.sendall(frame(sale_request))
                return read_frame(kept, time.monotonic() + 5)

            floor_kept = best_of(5, ROUNDS, kept_open)
        t_sale = best_of(5, ROUNDS, lambda: send(link, sale(), memory_mac))
        t_sale_store = best_of(3, ROUNDS // 2, lambda: send(link, sale(), store_mac))

    echo.shutdown()
    echo.server_close()
    print(f"request/answer sizes: sign-on {len(sign_on_request)}/{len(sign_on_answer)} B, "
          f"0200 {len(sale_request)}/{len(sale_answer)} B")
    print(f"floor: bare TCP echo, new connection, sign-on sizes  {floor_sign_on * 1e6:8.1f} us")
    print(f"floor: bare TCP echo, new connection, 0200 sizes     {floor_sale * 1e6:8.1f} us")
    print(f"       bare TCP echo, kept-open connection, 0200     {floor_kept * 1e6:8.1f} us"
          f"  ({floor_kept / floor_sale:.2f}x the new-connection floor)")
    print(f"sign-on exchange only (sim host issues keys)        {t_sign_on_wire * 1e6:8.1f} us"
          f"  {t_sign_on_wire / floor_sign_on:6.2f}x floor")
    print(f"sign-on, keys checked and stored (fsync'd store)    {t_sign_on * 1e6:8.1f} us"
          f"  {t_sign_on / floor_sign_on:6.2f}x floor")
    print(f"0200 sealed + answer MAC-checked, MAK in memory     {t_sale * 1e6:8.1f} us"
          f"  {t_sale / floor_sale:6.2f}x floor")
    print(f"0200 sealed + answer MAC-checked, MAK from store    {t_sale_store * 1e6:8.1f} us"
          f"  {t_sale_store / floor_sale:6.2f}x floor")


if __name__ == "__main__":
    main()
