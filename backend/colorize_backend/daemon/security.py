"""CURVE for serving other machines: the server's keys, and which clients are admitted.

A client is admitted when its public certificate (`*.key`, from `colorize-backend keys`)
lies in the server key's folder. The folder is read again whenever it changes, so a
client added later needs no restart; every rejection is logged (at most once a minute
per key), and the client sees its handshake refused (the plug-in says "authentication
failed").
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

LOG = logging.getLogger("colorize.security")
REJECTION_LOG_INTERVAL_S = 60.0


class KeyFolder:
    """The public keys of admitted clients, re-read when the folder changes."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._stamp: tuple[float, int] | None = None
        self._keys: set[bytes] = set()
        self._rejected: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _current_stamp(self) -> tuple[float, int]:
        files = list(self.folder.glob("*.key"))
        return max((f.stat().st_mtime for f in files), default=0.0), len(files)

    def keys(self) -> set[bytes]:
        stamp = self._current_stamp()
        if stamp != self._stamp:
            keys = set()
            for path in self.folder.glob("*.key"):
                try:
                    public, _ = zmq.auth.load_certificate(str(path))
                    keys.add(public)
                except (OSError, ValueError):
                    LOG.warning("skipping unreadable certificate %s", path.name)
            self._keys, self._stamp = keys, stamp
            LOG.info("%d client certificate(s) admitted from %s", len(keys), self.folder)
        return self._keys

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP's question: may the client with this public key (z85 or raw) connect?"""
        with self._lock:
            z85 = key if len(key) == 40 else zmq.utils.z85.encode(key)
            if z85 in self.keys():
                return True
            now = time.monotonic()
            if now - self._rejected.get(z85, -REJECTION_LOG_INTERVAL_S) >= REJECTION_LOG_INTERVAL_S:
                self._rejected[z85] = now
                LOG.warning("refused a client with unknown key %s…", z85[:8].decode())
            return False


def secure(front: zmq.Socket, context: zmq.Context, secret_key: Path) -> ThreadAuthenticator:
    """Make the front socket a CURVE server admitting the key folder's clients."""
    public, secret = zmq.auth.load_certificate(str(secret_key))
    if secret is None:
        raise ValueError(f"{secret_key} holds no secret key")
    front.curve_secretkey = secret
    front.curve_publickey = public
    front.curve_server = True
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    folder = KeyFolder(Path(secret_key).parent)
    authenticator.configure_curve_callback(domain="*", credentials_provider=folder)
    LOG.info("CURVE on: admitting client certificates in %s", folder.folder)
    return authenticator
