"""Is a TCP port free, and if not, which program holds it (so the installer can say so)?"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit


def tcp_port(endpoint: str) -> int | None:
    """The port of a tcp:// endpoint on this machine, else None."""
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp":
        return None
    try:
        return parts.port
    except ValueError:
        return None


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str:
    """`command (pid N)` of the process listening on port, as far as this system tells."""
    inodes = _listening_inodes(port)
    for pid in filter(str.isdigit, os.listdir("/proc") if os.path.isdir("/proc") else []):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                command = "?"
            return f"{command.strip()[:80]} (pid {pid})"
    return "another program (this system does not say which)"
