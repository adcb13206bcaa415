"""Where the daemon will listen: the user's choice, the previous install's, or a free port.

When the default port is held by another program, the installer says which program and
picks a free port instead, rather than letting the plug-in wait for a daemon that cannot
start there.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from installer.layout import CONFIG_NAME, DEFAULT_ENDPOINT, Layout, say
from installer.ports import free_port, is_listening, port_holder, tcp_port

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_local(endpoint: str) -> bool:
    return endpoint.startswith("ipc://") or any(f"//{h}:" in endpoint for h in LOOPBACK_HOSTS)


def previous_endpoint(folders: list[Path]) -> str | None:
    """The local endpoint an earlier install recorded in a plug-in config, if any."""
    for folder in folders:
        try:
            endpoint = json.loads((folder / CONFIG_NAME).read_text()).get("endpoint")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(endpoint, str) and is_local(endpoint):
            return endpoint
    return None


def who_answers(layout: Layout, endpoint: str) -> str:
    probe = [layout.python, "-m", "installer.probe", layout.plugin_src / "colorize", endpoint]
    done = subprocess.run(
        [str(c) for c in probe + [layout.venv]],
        capture_output=True,
        text=True,
        cwd=layout.repo,
        timeout=30,
    )
    return done.stdout.strip() or "foreign"


def choose_endpoint(layout: Layout, requested: str | None, folders: list[Path]) -> str:
    if requested:
        return requested
    endpoint = previous_endpoint(folders) or DEFAULT_ENDPOINT
    port = tcp_port(endpoint)
    if port is None or not is_listening(port):
        return endpoint
    answer = who_answers(layout, endpoint)
    if answer == "ours":
        return endpoint
    replacement = f"tcp://127.0.0.1:{free_port()}"
    if answer.startswith("other: "):
        held = f"port {port}: {answer.removeprefix('other: ')}"
    else:
        held = f"port {port} is in use by {port_holder(port)}."
    say(f"{held} This installation's daemon will listen on {replacement} instead.")
    return replacement
