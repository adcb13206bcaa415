"""Networks compiled once per model, runtime and machine, and reused by every process.

A fresh process used to optimise each ONNX graph again (onnxruntime: graph rewriting,
about 0.1 s for the default model here; OpenVINO: compiling for the CPU, about 0.4 s). Both
results are kept in the user's cache folder, keyed by the model's sha256 (or its file's
identity), the runtime's version and this CPU:
- onnxruntime: the optimised graph (`optimized_model_filepath`), loaded later with no
  further optimisation; written to a temporary name and renamed, so two processes starting
  at once never read half a file (the later rename simply wins);
- OpenVINO: its own model cache (`CACHE_DIR`).
A damaged cache entry is ignored and written again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path

import platformdirs

from colorize_backend.core.manifest import ModelEntry

LOG = logging.getLogger("colorize.compile_cache")


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("gimp-colorize")) / "compiled"


def cpu_name() -> str:
    """This CPU's model, as the kernel names it (compiled graphs are specific to it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_key(entry: ModelEntry, runtime: str) -> str:
    """One name per model file version, runtime version and CPU."""
    if entry.sha256:
        identity = entry.sha256
    else:
        stat = entry.path.stat()
        identity = f"{entry.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    text = f"{identity}|{runtime}|{cpu_name()}|{platform.machine()}"
    return f"{entry.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def ort_session(entry: ModelEntry, options, providers: list[str]):
    """An onnxruntime session for the model; on the CPU from the cached optimised graph when
    there is one, else optimising it now and keeping the result for the next process."""
    import onnxruntime as ort

    if providers[0] != "CPUExecutionProvider":  # GPU graphs are optimised per device: no cache
        return ort.InferenceSession(str(entry.path), options, providers=providers)
    cached = cache_dir() / f"{model_key(entry, 'onnxruntime-' + ort.__version__)}.onnx"
    if cached.is_file():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(cached), options, providers=providers)
        except Exception as exc:  # a damaged entry: optimise again
            LOG.warning("cached graph %s unusable (%s): optimising again", cached.name, exc)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        options.optimized_model_filepath = str(partial)
        options.log_severity_level = 3  # its note that the graph suits this machine only
    except OSError:
        partial = None
    session = ort.InferenceSession(str(entry.path), options, providers=providers)
    if partial is not None and partial.is_file():
        partial.replace(cached)
    return session


def openvino_core():
    """An OpenVINO Core whose compiled models are cached in the user's cache folder."""
    import openvino as ov

    core = ov.Core()
    folder = cache_dir() / f"openvino-{ov.__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(folder)})
    except (OSError, RuntimeError) as exc:
        LOG.info("no OpenVINO model cache: %s", exc)
    return core
