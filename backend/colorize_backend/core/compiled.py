"""The compiled kernels (core.kernels), loaded once per process, now or in the background.

Importing numba and loading the kernels from its cache takes about 0.9 s on a 2-core
machine, far more than the kernels save on one photo (about 60 ms at 1 MP). A command that
colorizes one photo, or a daemon that has just started, therefore starts loading them in
the background and meanwhile uses the numpy path (the same results within one level, as
tests/test_kernels.py checks); once loaded, they are used. Code that never asked for the
background gets them loaded on first use, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from types import ModuleType

LOG = logging.getLogger("colorize.compiled")
_lock = threading.Lock()
_loaded = threading.Event()
_module: ModuleType | None = None
_started = False


def _load() -> None:
    global _module
    started = time.perf_counter()
    from colorize_backend.core import kernels

    kernels.warm_up()  # compiled, or loaded from numba's cache
    _module = kernels
    _loaded.set()
    LOG.info("compiled kernels ready in %.2f s", time.perf_counter() - started)


def load_in_background() -> None:
    """Start loading the kernels on a thread of their own (once per process)."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    threading.Thread(target=_load, name="colorize-kernels", daemon=True).start()


def not_needed() -> None:
    """The numpy path until load() is called (if ever): this process colorizes too little
    for the compiler to pay, or loads it later."""
    global _started
    with _lock:
        _started = True


def load() -> None:
    """Load the kernels now, on this thread, unless they are loaded already."""
    if not _loaded.is_set():
        _load()


def kernels() -> ModuleType | None:
    """The kernels if ready; None while they load in the background (use numpy meanwhile).
    Unless loading was started in the background, they are loaded here and now."""
    global _started
    if _loaded.is_set():
        return _module
    with _lock:
        if _started:
            return None
        _started = True
    _load()
    return _module


def wait(timeout_s: float | None = None) -> bool:
    """Block until the kernels are ready (True) or timeout_s has passed."""
    return _loaded.wait(timeout_s)
