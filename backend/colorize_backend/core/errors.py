"""Every way a request can fail, and the code each failure carries on the wire.

A user's mistake (an unknown model, a hint layer without colour, a malformed message)
is a ColorizeError with one of these codes; the daemon sends the code and the message
back as they are, the CLI prints the message. Anything else is a bug: `internal`.
"""

from __future__ import annotations

import re
from enum import StrEnum


class ErrorCode(StrEnum):
    """The wire's error codes (docs/protocol.md)."""

    BAD_HEADER = "bad_header"  # not a JSON object, or a field of the wrong type or value
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_OP = "unknown_op"
    BAD_FRAMES = "bad_frames"  # wrong number of frames for the operation
    BAD_SIZE = "bad_size"  # width x height x channels does not match the pixel frame
    BAD_FORMAT = "bad_format"
    TOO_LARGE = "too_large"
    BUSY = "busy"  # queue full: retry shortly
    CANCELLED = "cancelled"  # the client cancelled the job, or went away
    BAD_REQUEST = "bad_request"  # well formed, but cannot be done (model, reference)
    INTERNAL = "internal"
    # Never sent by the daemon: a client's own verdict when nothing answers, or answers stop.
    UNREACHABLE = "unreachable"


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^/\\\s'\"<>|:]+){2,}[/\\]?")


def without_paths(text: str) -> str:
    """A message for a client: file-system paths (of models, links, the server's folders)
    replaced, since a daemon's client learns nothing of its files."""
    text = re.sub(r"\bfrom .+? failed", "from <file> failed", text)  # onnxruntime's loads
    return _PATH.sub("<file>", text)


class ColorizeError(Exception):
    """A request that cannot be served, with the code and the message its sender gets."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
