# -*- coding: utf-8 -*-
"""Host-agnostic client for the colorize daemon, shared by the GIMP 3 and GIMP 2.10 entries.

Standard library + pyzmq only, and Python 2.7-compatible, because it runs inside
whatever Python the user's GIMP carries. It finds the daemon through the config
file install.py wrote, starts it from the recorded launcher when it is not running
(and says at once why when it cannot start), checks the protocol version and which
installation answers, checks the daemon's limits before sending, and waits for a
result while the daemon shows signs of life (a progress message at least every
second): a dead daemon is noticed within seconds and a colorize request is never sent
twice. Every failure becomes one BackendError with a message for the user.
"""

from __future__ import absolute_import, division, print_function

import json
import mmap
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "vendor")
if os.path.isdir(VENDOR) and VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)  # pyzmq vendored by install.py for GIMPs with their own Python

try:
    import zmq
    import zmq.auth
except ImportError:  # reported as a BackendError when the client is used
    zmq = None

PROTOCOL_VERSION = 2
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
CONFIG_NAME = "colorize-config.json"
FORMAT_CHANNELS = {"gray": 1, "graya": 2, "rgb": 3, "rgba": 4}
SAMPLE_SIZES = {"u8": 1, "u16": 2, "f32": 4}
REFERENCE_MODES = ("detect", "exemplar", "hints")  # how to read the reference layer
# The user's settings on the wire (the backend's core.options.ColorizeOptions): a new setting
# is a new name here, in the backend's options and protocol, and in the dialogs.
OPTION_NAMES = (
    "model", "strength", "saturation", "detail_size", "reference_mode", "sequence", "frame",
)  # fmt: skip
WAKE_HELLO_S = 0.3  # a running daemon on this machine answers hello within milliseconds
START_POLL_S = 0.2  # how often a starting daemon is asked whether it answers yet
# A busy daemon's queue frees a place every few tens of milliseconds: a client that waits
# longer than this between tries loses its turn to those that just tried (unfair at p99).
BUSY_PAUSE_MAX_S = 0.5
# The backend's protocol module defines all of these too; tests/test_protocol_parity.py
# fails when the two drift apart.
DEFAULTS = {
    "endpoint": DEFAULT_ENDPOINT,
    "launcher": None,  # argv list that starts the daemon, written by install.py
    "backend_prefix": None,  # the installation that should answer (install.py writes it)
    "hello_timeout_s": 2.0,
    "start_timeout_s": 60.0,
    "request_timeout_s": 600.0,
    "heartbeat_timeout_s": 5.0,  # no sign of life for so long: the daemon is gone
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
    try:
        if os.path.exists(path):
            with open(path) as fh:
                config.update(json.load(fh))
    except (IOError, OSError, ValueError) as exc:
        raise BackendError("The colorize config file %s cannot be read: %s" % (path, exc))
    return config


def _decode(frame, endpoint):
    try:
        header = json.loads(frame.decode("utf-8"))
        if isinstance(header, dict):
            return header
    except (UnicodeDecodeError, ValueError):
        pass
    raise BackendError(
        "Something that is not the colorize backend answers at %s. Stop that program, or "
        "give the plug-in another endpoint (re-run install.py)." % endpoint,
        "foreign",
    )


def _refusal(header):
    error = header.get("error") or {}
    message = error.get("message", "unknown error")
    code = error.get("code", "refused")
    return BackendError("The colorize backend refused the request: %s" % message, code)


class Client(object):
    """Conversations with the daemon. Every wait has a bound and a message."""

    def __init__(self, config=None):
        if zmq is None:
            raise BackendError(
                "The colorize plug-in needs pyzmq in GIMP's Python. Re-run install.py, which "
                "installs it next to the plug-in, or install python3-zmq."
            )
        self.config = config or load_config()
        self.context = zmq.Context.instance()
        self.daemon = None  # the daemon process this client started, if any
        self.limits = {}
        self.shared_memory = False  # the daemon leases shared buffers and they work here
        self.shared = None  # the shared file of the last result, until release()
        self.dealer = None  # one socket for lease, colorize and release (reset after a failure)

    @property
    def endpoint(self):
        return self.config["endpoint"]

    def _socket(self, kind, timeout_s):
        sock = self.context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
        sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        server_key = self.config.get("server_public_key")
        if server_key:
            key_file = self.config.get("client_key_file")
            try:
                if key_file:
                    public, secret = zmq.auth.load_certificate(key_file)
                else:
                    public, secret = zmq.curve_keypair()
            except (IOError, OSError, ValueError) as exc:
                sock.close()
                raise BackendError("The client key %s cannot be read: %s" % (key_file, exc))
            sock.curve_publickey = public
            sock.curve_secretkey = secret
            sock.curve_serverkey = server_key.encode("ascii")
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            raise BackendError("The endpoint %r is not valid: %s" % (self.endpoint, exc))
        return sock

    def _unanswered(self, timeout_s):
        if self.config.get("server_public_key"):
            return BackendError(
                "The colorize backend at %s did not answer within %.0f s: it is not running, or "
                "authentication failed (the daemon does not know this client's key; copy the "
                "client's .key file into the daemon's key folder)." % (self.endpoint, timeout_s),
                "timeout",
            )
        return BackendError(
            "The colorize backend at %s did not answer within %.0f s. Is it running? Start it "
            "with `colorize-backend serve` or check %s."
            % (self.endpoint, timeout_s, config_path()),
            "timeout",
        )

    def _call(self, header, timeout_s, retries=0):
        """One request and its one reply on a fresh REQ socket (for short, idempotent ones)."""
        message = json.dumps(dict(header, v=PROTOCOL_VERSION)).encode("utf-8")
        for attempt in range(retries + 1):
            sock = self._socket(zmq.REQ, timeout_s)
            try:
                sock.send(message)
                return _decode(sock.recv(), self.endpoint)
            except zmq.Again:
                if attempt == retries:
                    raise self._unanswered(timeout_s)
            finally:
                sock.close()

    def hello(self, timeout_s=None, retries=0):
        """Handshake: protocol version and installation; retried (it is idempotent)."""
        timeout_s = timeout_s or self.config["hello_timeout_s"]
        reply = self._call({"op": "hello"}, timeout_s, retries)
        if reply.get("protocol") != PROTOCOL_VERSION:
            raise BackendError(
                "The colorize backend speaks protocol v%s but this plug-in needs v%d; re-run "
                "install.py to update both." % (reply.get("protocol"), PROTOCOL_VERSION),
                "version",
            )
        if not reply.get("ok"):
            raise _refusal(reply)
        self._check_identity(reply)
        self.limits = reply.get("limits") or {}
        # Only the daemon's answer says whether it offers shared memory; whether a buffer can
        # be opened here is found out on the first lease (and the socket used if not).
        self.shared_memory = bool(reply.get("shared_memory")) and sys.version_info[0] >= 3
        return reply

    def models(self):
        """The models the daemon serves, as it lists them (name, kind, input_size, ...)."""
        reply = self._call({"op": "models"}, self.config["hello_timeout_s"])
        if not reply.get("ok"):
            raise _refusal(reply)
        return reply.get("models") or []

    def _check_identity(self, reply):
        expected = self.config.get("backend_prefix")
        found = reply.get("install")
        if expected and found and os.path.normpath(expected) != os.path.normpath(found):
            raise BackendError(
                "Another installation of the colorize backend (%s, pid %s) answers at %s, not "
                "this one (%s). Stop it with `colorize-backend stop --endpoint %s` and try again."
                % (found, reply.get("pid"), self.endpoint, expected, self.endpoint),
                "identity",
            )

    def wake(self):
        """Start the daemon now when it is not running, without waiting for it: called as a
        dialog opens, so that the model is warm by the time the user clicks OK."""
        try:
            self.hello(timeout_s=WAKE_HELLO_S)
        except BackendError as exc:
            launcher = self.config.get("launcher")
            if exc.code == "timeout" and launcher and self.daemon is None:
                try:
                    self.daemon = start_daemon(launcher, self.config.get("log_file"))
                except BackendError:
                    pass  # said again, with its reason, when the colorization needs it

    def _local(self):
        """A daemon on this machine answers within milliseconds: no need to wait long."""
        endpoint = self.endpoint
        return endpoint.startswith(("ipc://", "tcp://127.", "tcp://localhost", "tcp://[::1]"))

    def ensure_daemon(self, progress=None):
        """Return the hello reply, starting the daemon from the launcher when it is down (or
        waiting for the one wake() started)."""
        quick = self.daemon is not None or self._local()
        try:
            return self.hello(timeout_s=WAKE_HELLO_S if quick else None)
        except BackendError as exc:
            if exc.code != "timeout":
                raise
        launcher = self.config.get("launcher")
        if not launcher:
            raise BackendError(
                "The colorize backend is not running at %s and no launcher is configured; "
                "run `colorize-backend serve` or re-run install.py." % self.endpoint,
                "unreachable",
            )
        if progress:
            progress("Starting the colorizer...")
        if self.daemon is None or self.daemon.poll() is not None:
            self.daemon = start_daemon(launcher, self.config.get("log_file"))
        deadline = time.time() + self.config["start_timeout_s"]
        while time.time() < deadline:
            if self.daemon.poll() is not None:
                raise BackendError(
                    "The colorize backend could not start (exit status %s): %s"
                    % (self.daemon.returncode, startup_error(self.config.get("log_file"))),
                    "unreachable",
                )
            try:
                return self.hello(timeout_s=START_POLL_S)
            except BackendError as exc:
                if exc.code != "timeout":
                    raise
        raise BackendError(
            "Started the colorize backend (%s) but it did not answer within %.0f s; see its "
            "log %s." % (" ".join(launcher), self.config["start_timeout_s"],
                         self.config.get("log_file") or "(none)"),
            "unreachable",
        )  # fmt: skip

    def check_limits(self, width, height, fmt, sample):
        """Refuse before sending what the daemon would refuse (it said its limits in hello)."""
        pixels = width * height
        max_pixels = self.limits.get("max_pixels")
        if max_pixels and pixels > max_pixels:
            raise BackendError(
                "The layer has %d pixels; the colorize backend accepts at most %d. Scale the "
                "image down, or start the daemon with a larger --max-pixels."
                % (pixels, max_pixels),
                "too_large",
            )
        frame = pixels * FORMAT_CHANNELS[fmt] * SAMPLE_SIZES[sample]
        max_frame = self.limits.get("max_frame_bytes")
        if max_frame and frame > max_frame:
            raise BackendError(
                "The layer is %d MB; the colorize backend accepts at most %d MB per layer."
                % (frame // 1000000, max_frame // 1000000),
                "too_large",
            )

    def colorize(
        self,
        width,
        height,
        fmt,
        pixels,
        options=None,
        reference=None,
        offset=(0, 0),
        sample="u8",
        progress=None,
    ):
        """Colorize raw pixels; reference is None or (width, height, fmt, bytes, (x, y), sample).

        options: the user's settings as the wire names them (OPTION_NAMES: model, strength,
        saturation, detail_size, reference_mode); unset or None ones are left to the daemon.
        progress(stage, done) is called on each sign of life. Returns (reply header, result
        bytes) where the result is rgb or rgba in the same sample type.
        """
        if width * height * FORMAT_CHANNELS[fmt] * SAMPLE_SIZES[sample] != len(pixels):
            raise BackendError(
                "Internal error: %dx%d %s %s does not match %d bytes"
                % (width, height, fmt, sample, len(pixels))
            )
        self.check_limits(width, height, fmt, sample)
        request_id = "%d.%d" % (os.getpid(), random.randint(0, 10**9))
        header = _colorize_header(request_id, _spec(width, height, fmt, offset, sample))
        for name, value in (options or {}).items():
            if name not in OPTION_NAMES:
                raise BackendError("Internal error: unknown colorize option %r" % name)
            if value is not None:
                header[name] = value
        payload = [pixels]
        if reference is not None:
            ref_w, ref_h, ref_fmt, ref_pixels, ref_offset, ref_sample = reference
            self.check_limits(ref_w, ref_h, ref_fmt, ref_sample)
            header["reference"] = _spec(ref_w, ref_h, ref_fmt, ref_offset, ref_sample)
            payload.append(ref_pixels)
        result_size = width * height * FORMAT_CHANNELS[_result_format(fmt)] * SAMPLE_SIZES[sample]
        self.release()
        frames = self._share(header, payload, result_size) if self.shared_memory else None
        if frames is None:
            frames = [json.dumps(header).encode("utf-8")] + payload
        try:
            reply, result = self._request_with_retries(frames, request_id, progress)
            if reply.get("shared") and self.shared is not None:
                result = [self.shared.view(header["shm"]["result"], result_size)]
        except BaseException:
            self.release()
            raise
        if len(result) != 1 or len(result[0]) != result_size:
            raise BackendError("The colorize backend sent a malformed result.")
        return reply, result[0]

    def _share(self, header, payload, result_size):
        """Put the pixels in a buffer leased from the daemon; only the header is sent. None
        when the buffer cannot be used here (another machine's or a sandboxed view of the
        daemon's memory): it is handed back, and this client uses the socket from then on."""
        offsets, end = [], 0
        for data in payload:
            offsets.append(end)
            end = _aligned(end + len(data))
        lease_id = header["id"] + ".lease"
        wanted = {"v": PROTOCOL_VERSION, "op": "lease", "id": lease_id, "bytes": end + result_size}
        self._dealer().send_multipart([b"", json.dumps(wanted).encode("utf-8")])
        deadline = time.time() + self.config["hello_timeout_s"] + 5
        lease = self._await(lease_id, None, deadline)[0]
        try:
            self.shared = SharedFile(lease["path"], lease["name"], lease["bytes"])
        except BackendError:
            self.shared_memory = False
            message = {"v": PROTOCOL_VERSION, "op": "release", "id": "release",
                       "name": lease["name"]}  # fmt: skip
            self._dealer().send_multipart([b"", json.dumps(message).encode("utf-8")])
            return None
        for offset, data in zip(offsets, payload):
            self.shared.write(offset, data)
        header["shm"] = {"name": self.shared.name, "image": offsets[0], "result": end}
        if len(offsets) > 1:
            header["shm"]["reference"] = offsets[1]
        return [json.dumps(header).encode("utf-8")]

    def release(self):
        """Hand the last result's shared buffer back (after the result was used); nothing is
        awaited: should the message be lost, the daemon takes the buffer back by itself."""
        if self.shared is None:
            return
        name, self.shared = self.shared.name, self.shared.close()
        if self.dealer is not None:
            message = {"v": PROTOCOL_VERSION, "op": "release", "id": "release", "name": name}
            self.dealer.send_multipart([b"", json.dumps(message).encode("utf-8")])

    def _dealer(self):
        if self.dealer is None:
            self.dealer = self._socket(zmq.DEALER, self.config["hello_timeout_s"])
            self.dealer.setsockopt(zmq.LINGER, 1000)  # a last release still goes out
        return self.dealer

    def _reset(self):
        """After a failure, replies to what was sent must not reach the next request."""
        if self.dealer is not None:
            self.dealer.close(0)
            self.dealer = None

    def _request_with_retries(self, frames, request_id, progress):
        """Send the request; a `busy` daemon did not take it, so it is sent again after a
        growing pause, until the request's time is up. Nothing else is ever re-sent."""
        deadline = time.time() + self.config["request_timeout_s"]
        pause = 0.2
        while True:
            try:
                return self._request(frames, request_id, progress, deadline)
            except BackendError as exc:
                if exc.code != "busy" or time.time() + pause > deadline:
                    raise
            if progress:
                progress("waiting for the backend", 0.0)
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, BUSY_PAUSE_MAX_S)

    def _request(self, frames, request_id, progress, deadline):
        self._dealer().send_multipart([b""] + frames, copy=False)
        return self._await(request_id, progress, deadline)

    def _await(self, request_id, progress, deadline):
        """The reply to request_id; its progress messages go to progress(stage, done)."""
        try:
            while True:
                wait = min(self.config["heartbeat_timeout_s"], deadline - time.time())
                if wait <= 0:
                    raise BackendError(
                        "The colorize backend did not finish within %.0f s."
                        % self.config["request_timeout_s"],
                        "timeout",
                    )
                if not self.dealer.poll(int(wait * 1000)):
                    raise self._dead()
                message = self.dealer.recv_multipart(copy=False)
                header = _decode(message[1].bytes if len(message) > 1 else b"", self.endpoint)
                if header.get("id") != request_id:
                    continue  # e.g. the reply to a release
                if not header.get("ok"):
                    raise _refusal(header)
                if header.get("op") == "progress":
                    if progress:
                        progress(header.get("stage", ""), float(header.get("done", 0.0)))
                    continue
                return header, [frame.buffer for frame in message[2:]]
        except BackendError as exc:
            if exc.code in ("dead", "timeout", "foreign"):
                self._reset()
            raise

    def _dead(self):
        started = self.daemon is not None and self.daemon.poll() is not None
        return BackendError(
            "The colorize backend stopped responding (no sign of life for %.0f s%s); it may have "
            "crashed. See its log %s. Try again: it will be restarted."
            % (
                self.config["heartbeat_timeout_s"],
                ", and it has exited" if started else "",
                self.config.get("log_file") or "(none)",
            ),
            "dead",
        )


def _result_format(fmt):
    return "rgba" if FORMAT_CHANNELS[fmt] in (2, 4) else "rgb"


def _aligned(size):
    return (size + 7) // 8 * 8


class SharedFile(object):
    """A buffer the daemon leased, mapped into this process (its pages already exist)."""

    def __init__(self, path, name, size):
        self.path = path
        self.name = name
        try:
            descriptor = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise BackendError("The colorize backend's shared buffer cannot be opened: %s" % exc)
        try:
            if os.fstat(descriptor).st_size < size:
                raise BackendError("The colorize backend's shared buffer is smaller than leased.")
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            self.map = mmap.mmap(descriptor, size, flags=flags)
        except (OSError, ValueError) as exc:
            raise BackendError("The colorize backend's shared buffer cannot be mapped: %s" % exc)
        finally:
            os.close(descriptor)

    def write(self, offset, data):
        self.map[offset : offset + len(data)] = data

    def view(self, offset, size):
        return memoryview(self.map)[offset : offset + size]

    def close(self):
        try:
            self.map.close()
        except BufferError:  # the caller still holds the result: unmapped when it lets go
            pass


def _colorize_header(request_id, image):
    """A colorize request that asks for progress (the daemon's sign of life)."""
    return {"v": PROTOCOL_VERSION, "op": "colorize", "id": request_id, "image": image,
            "progress": True}  # fmt: skip


def _spec(width, height, fmt, offset, sample):
    return {
        "width": width,
        "height": height,
        "format": fmt,
        "sample": sample,
        "offset": list(offset),
    }


def startup_error(log_file):
    """The last lines the daemon wrote while starting, for the user to see."""
    if not log_file:
        return "no log file is configured"
    try:
        with open(log_file + ".startup") as fh:
            lines = [line.strip() for line in fh.read().splitlines() if line.strip()]
    except (IOError, OSError):
        return "see %s" % log_file
    return " / ".join(lines[-3:])[-500:] if lines else "see %s" % log_file


def start_daemon(launcher, log_file=None):
    """Start the daemon detached from GIMP so it survives the plug-in process.

    What it prints while starting goes to LOG.startup (replaced each time, so it stays
    small); once running it logs to its own rotated log file.
    """
    output = None
    if log_file:
        try:
            folder = os.path.dirname(log_file)
            if folder and not os.path.isdir(folder):
                os.makedirs(folder)
            output = open(log_file + ".startup", "wb")
        except (IOError, OSError):
            output = None
    kwargs = {
        "stdout": output or open(os.devnull, "wb"),
        "stderr": subprocess.STDOUT,
        "stdin": open(os.devnull, "rb"),
        "close_fds": True,
    }
    if os.name == "nt":
        kwargs["creationflags"] = 0x00000008 | 0x00000200  # DETACHED_PROCESS | NEW_PROCESS_GROUP
    else:
        kwargs["preexec_fn"] = os.setsid
    try:
        return subprocess.Popen(launcher, **kwargs)
    except (OSError, ValueError) as exc:
        raise BackendError(
            "Could not start the colorize backend with %s: %s" % (" ".join(launcher), exc),
            "unreachable",
        )
