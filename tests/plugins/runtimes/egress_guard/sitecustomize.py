"""Loaded by every Python process started with this folder on PYTHONPATH (forked and
spawned children too): records each network connection or name lookup into the file
``MMSHIP_EGRESS_LOG`` names and refuses it unless it stays on this machine."""

import ipaddress
import os
import socket
import sys

LOG = os.environ.get("MMSHIP_EGRESS_LOG")
LOCAL_NAMES = {"localhost", "localhost.localdomain", "", None}


def _local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple) -> None:
    if event not in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname"):
        return
    if event == "socket.getaddrinfo" or event == "socket.gethostbyname":
        host = args[0]
    else:
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) == socket.AF_UNIX:
            return
        host = address[0] if isinstance(address, tuple) else address
    if _local(host):
        return
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()} {event} {host!r}\n")
    raise PermissionError(f"egress refused by the test: {event} {host!r}")


if LOG:
    sys.addaudithook(_hook)
