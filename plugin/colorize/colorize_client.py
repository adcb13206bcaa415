# -*- coding: utf-8 -*-
"""Host-agnostic client for the colorize daemon, shared by the GIMP 3 and GIMP 2.10 entries.

Standard library + pyzmq only, and Python 2.7-compatible, because it runs inside
whatever Python the user's GIMP carries. It finds the daemon through the config
file install.py wrote, starts it from the recorded launcher when it is not
running, checks the protocol version, and retries once on a timeout.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "vendor")
if os.path.isdir(VENDOR) and VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)  # pyzmq vendored by install.py for GIMPs with their own Python

import zmq  # noqa: E402
import zmq.auth  # noqa: E402

PROTOCOL_VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
CONFIG_NAME = "colorize-config.json"
FORMAT_CHANNELS = {"gray": 1, "graya": 2, "rgb": 3, "rgba": 4}
REFERENCE_MODES = ("detect", "exemplar", "hints")  # how to read the reference layer
# The backend's protocol module defines all of these too; tests/test_protocol_parity.py
# fails when the two drift apart.
DEFAULTS = {
    "endpoint": DEFAULT_ENDPOINT,
    "launcher": None,  # argv list that starts the daemon, written by install.py
    "hello_timeout_s": 2.0,
    "start_timeout_s": 60.0,
    "request_timeout_s": 300.0,
    "server_public_key": None,  # CURVE: the remote daemon's public key (z85 text)
    "client_key_file": None,  # CURVE: this client's certificate file (secret part)
    "log_file": None,
}


class BackendError(Exception):
    """Anything that stops a colorization; the message is shown to the user as is."""

    def __init__(self, message, code="backend"):
        Exception.__init__(self, message)
        self.message = message
        self.code = code


def config_path():
    """COLORIZE_CONFIG, else the config file beside the installed plug-in."""
    return os.environ.get("COLORIZE_CONFIG") or os.path.join(HERE, CONFIG_NAME)


def load_config(path=None):
    """Defaults overlaid with the JSON config file (a missing file means defaults)."""
    config = dict(DEFAULTS)
    path = path or config_path()
    if os.path.exists(path):
        with open(path) as fh:
            try:
                config.update(json.load(fh))
            except ValueError as exc:
                raise BackendError(
                    "The colorize config file %s is not valid JSON: %s" % (path, exc)
                )
    return config


class Client(object):
    """One conversation with the daemon; every call opens a fresh REQ socket (lazy pirate)."""

    def __init__(self, config=None):
        self.config = config or load_config()
        self.context = zmq.Context.instance()

    def _socket(self, timeout_s):
        sock = self.context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
        sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        server_key = self.config.get("server_public_key")
        if server_key:
            key_file = self.config.get("client_key_file")
            if key_file:
                public, secret = zmq.auth.load_certificate(key_file)
            else:
                public, secret = zmq.curve_keypair()
            sock.curve_publickey = public
            sock.curve_secretkey = secret
            sock.curve_serverkey = server_key.encode("ascii")
        sock.connect(self.config["endpoint"])
        return sock

    def request(self, header, frames=(), timeout_s=None, retries=1):
        """Send header + frames; return (reply header, reply frames). Retries once on timeout."""
        timeout_s = timeout_s or self.config["request_timeout_s"]
        header = dict(header, v=PROTOCOL_VERSION)
        message = [json.dumps(header).encode("utf-8")] + list(frames)
        for attempt in range(retries + 1):
            sock = self._socket(timeout_s)
            try:
                sock.send_multipart(message, copy=False)
                reply = sock.recv_multipart()
            except zmq.Again:
                if attempt < retries:
                    continue
                raise BackendError(
                    "The colorize backend at %s did not answer within %.0f s. Is it running? "
                    "Start it with `colorize-backend serve` or check %s."
                    % (self.config["endpoint"], timeout_s, config_path()),
                    "timeout",
                )
            finally:
                sock.close()
            reply_header = json.loads(reply[0].decode("utf-8"))
            if not reply_header.get("ok"):
                error = reply_header.get("error") or {}
                raise BackendError(
                    "The colorize backend refused the request: %s"
                    % error.get("message", "unknown error"),
                    error.get("code", "refused"),
                )
            return reply_header, reply[1:]

    def hello(self, timeout_s=None, retries=0):
        """Protocol handshake; raises BackendError on a version mismatch."""
        reply, _ = self.request(
            {"op": "hello"}, timeout_s=timeout_s or self.config["hello_timeout_s"], retries=retries
        )
        if reply.get("protocol") != PROTOCOL_VERSION:
            raise BackendError(
                "The colorize backend speaks protocol v%s but this plug-in needs "
                "v%d; re-run install.py to update both."
                % (reply.get("protocol"), PROTOCOL_VERSION),
                "version",
            )
        return reply

    def ensure_daemon(self, progress=None):
        """Return the hello reply, starting the daemon from the launcher when it is down."""
        try:
            return self.hello()
        except BackendError as exc:
            if exc.code != "timeout":
                raise
        launcher = self.config.get("launcher")
        if not launcher:
            raise BackendError(
                "The colorize backend is not running at %s and no launcher is "
                "configured; run `colorize-backend serve` or re-run install.py."
                % self.config["endpoint"],
                "unreachable",
            )
        if progress:
            progress("Starting the colorize backend...")
        start_daemon(launcher, self.config.get("log_file"))
        deadline = time.time() + self.config["start_timeout_s"]
        while time.time() < deadline:
            try:
                return self.hello()
            except BackendError as exc:
                if exc.code != "timeout":
                    raise
        raise BackendError(
            "Started the colorize backend (%s) but it did not answer within %.0f s;"
            " see its log %s."
            % (
                " ".join(launcher),
                self.config["start_timeout_s"],
                self.config.get("log_file") or "(none)",
            ),
            "unreachable",
        )

    def colorize(
        self,
        width,
        height,
        fmt,
        pixels,
        model=None,
        reference=None,
        reference_mode="detect",
        strength=1.0,
        offset=(0, 0),
    ):
        """Colorize raw u8 pixels; reference is None or (width, height, fmt, bytes, (x, y)).

        Returns (reply header, result bytes) where the result is rgb or rgba u8.
        """
        if width * height * FORMAT_CHANNELS[fmt] != len(pixels):
            raise BackendError(
                "Internal error: %dx%d %s does not match %d bytes"
                % (width, height, fmt, len(pixels))
            )
        header = {
            "op": "colorize",
            "id": "%d-%f" % (os.getpid(), time.time()),
            "image": {"width": width, "height": height, "format": fmt, "offset": list(offset)},
            "strength": strength,
            "reference_mode": reference_mode,
        }
        if model:
            header["model"] = model
        frames = [pixels]
        if reference is not None:
            ref_w, ref_h, ref_fmt, ref_pixels, ref_offset = reference
            header["reference"] = {
                "width": ref_w,
                "height": ref_h,
                "format": ref_fmt,
                "offset": list(ref_offset),
            }
            frames.append(ref_pixels)
        reply, result = self.request(header, frames)
        if len(result) != 1 or len(result[0]) != width * height * FORMAT_CHANNELS[reply["format"]]:
            raise BackendError("The colorize backend sent a malformed result.")
        return reply, result[0]


def start_daemon(launcher, log_file=None):
    """Start the daemon detached from GIMP so it survives the plug-in process."""
    log = open(log_file, "ab") if log_file else open(os.devnull, "wb")
    kwargs = {
        "stdout": log,
        "stderr": subprocess.STDOUT,
        "stdin": open(os.devnull, "rb"),
        "close_fds": True,
    }
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | NEW_PROCESS_GROUP
    else:
        kwargs["preexec_fn"] = os.setsid
    try:
        subprocess.Popen(launcher, **kwargs)
    except OSError as exc:
        raise BackendError(
            "Could not start the colorize backend with %s: %s" % (" ".join(launcher), exc),
            "unreachable",
        )
