"""systemd's notify protocol, with no dependency: READY=1 once the kiosk is up, WATCHDOG=1 while it lives.

    notify("READY=1")                       # True when sent; False with no $NOTIFY_SOCKET (not under systemd)
    watchdog_interval()                     # seconds between WATCHDOG=1 pings (half of WatchdogSec), or None

The unit (`firmware/update/build.py`: Type=notify, WatchdogSec=30) sets
$NOTIFY_SOCKET to a datagram socket, a path or "@name" in the abstract
namespace; each message is one datagram of `KEY=VALUE` lines
(sd_notify(3)). $WATCHDOG_USEC is the watchdog's period in microseconds,
for the process $WATCHDOG_PID when it is set; a ping every half period is
what sd_watchdog_enabled(3) advises. A socket that refuses the datagram is
an OSError for the caller to log: the kiosk goes on (systemd restarts it
if the pings stop).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "watchdog_interval"]


def _address(env: Mapping[str, str]) -> str | None:
    address = env.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        return "\0" + address[1:]
    return address if address.startswith("/") else None


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1" or "WATCHDOG=1") to systemd; False when not run by systemd."""
    address = _address(os.environ if env is None else env)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode("utf-8"))
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Half of systemd's watchdog period in seconds, or None when no watchdog is asked of this process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
