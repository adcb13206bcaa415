"""A job whose worker never comes back: what the daemon logs and tells its clients.

A worker stuck in native code (a runtime deadlocked in its thread pools) cannot be
interrupted from Python, and every later request would queue behind it until each client
gave up. So when a job stays in one stage far longer than any real one takes, the front
answers every job it holds with the message below, logs every thread's stack (what the
stuck worker was doing: the bug report) and the daemon exits; the plug-in's next request
starts a fresh one.
"""

from __future__ import annotations

import sys
import threading
import traceback

EXIT_STUCK = 3  # `colorize-backend serve`'s exit status after giving up on a stuck job


def thread_stacks() -> str:
    """Every thread's Python stack, named, innermost call last."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"thread {names.get(ident, ident)}:\n" + "".join(traceback.format_stack(frame))
        for ident, frame in sys._current_frames().items()
    )


def retry_message(stage: str, bound_s: float) -> str:
    """What each client whose job was given up is told."""
    return (
        f"the colorize backend got stuck (a request spent more than {bound_s:.0f} s in its "
        f"{stage!r} stage) and is restarting; please try again (details in the daemon's log)"
    )
