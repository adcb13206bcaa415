"""ONNX Runtime: execution providers, one session per model file, and running a model.

Sessions are created on first use and reused, at most `max_sessions` of them (least
recently used go first; a file replaced on disk gets a new session); CUDA is tried first
where present and the CPU is the fallback. Nothing here knows about images: inputs and
outputs are the arrays of the model contract.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

import numpy as np
import onnxruntime as ort

from colorize_backend.contract import OUTPUT
from colorize_backend.manifest import ModelEntry

LOG = logging.getLogger("colorize.engine")
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def available_providers() -> list[str]:
    """Execution providers usable here, in the order they are tried."""
    present = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in present]


class Engine:
    """Runs contract-following ONNX models; thread-safe session cache."""

    def __init__(
        self, providers: list[str] | None = None, threads: int | None = None, max_sessions: int = 4
    ):
        self.providers = providers or available_providers()
        self.threads = threads
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[tuple, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()

    def session(self, entry: ModelEntry) -> ort.InferenceSession:
        stat = entry.path.stat()
        key = (str(entry.path.resolve()), stat.st_size, stat.st_mtime)
        with self._lock:
            cached = self._sessions.get(key)
            if cached is not None:
                self._sessions.move_to_end(key)
                return cached
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or min(os.cpu_count() or 1, 8)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(entry.path), options, providers=self.providers)
            used = session.get_providers()[0]
            if used != self.providers[0]:
                LOG.warning(
                    "model %s: %s unavailable, falling back to %s",
                    entry.name,
                    self.providers[0],
                    used,
                )
            LOG.info("model %s loaded from %s on %s", entry.name, entry.path, used)
            self._sessions[key] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def provider_of(self, entry: ModelEntry) -> str:
        return self.session(entry).get_providers()[0]

    def run(self, entry: ModelEntry, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run a model on its contract inputs (batch 1); returns its ab output [2, h', w']."""
        (ab,) = self.session(entry).run([OUTPUT], inputs)
        return ab[0]
