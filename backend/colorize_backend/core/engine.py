"""Running ONNX models: onnxruntime (CUDA first where present, else CPU) or OpenVINO.

Each model file gets one runner, created on first use and reused, at most `max_sessions`
of them (least recently used go first; a file replaced on disk gets a new one).
- onnxruntime on the CPU runs with thread spinning off: its idle threads would otherwise
  keep spinning after each run and slow the full-resolution stages that follow.
- With CUDA the inputs and outputs are bound through IOBinding (one copy each way).
- On a CPU, OpenVINO (when installed, at f32 precision) runs the same graph in about 0.6×
  the time here; the first time a model is loaded on a machine, both runtimes run it a
  few times on an input of its working size and OpenVINO is used only when it is faster
  and its output matches onnxruntime's. The verdict is remembered (per model file, CPU,
  OpenVINO version and thread count) in the user's cache folder.
Nothing here knows about images: inputs and outputs are the arrays of the model contract.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import platformdirs

try:
    import onnxruntime as ort
except ModuleNotFoundError as missing:  # installed without its runtime extra
    raise ModuleNotFoundError(
        "no ONNX runtime is installed: pip install 'gimp-colorize[cpu]' "
        "(or 'gimp-colorize[gpu]' on a machine with an NVIDIA GPU)",
        name="onnxruntime",
    ) from missing

from colorize_backend.core.atomic_file import write_text_atomically
from colorize_backend.core.compile_cache import openvino_core, ort_session
from colorize_backend.core.contract import LIGHTNESS, OUTPUT, example_inputs
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.manifest import ModelEntry

LOG = logging.getLogger("colorize.engine")
# GPUs first (NVIDIA, then DirectML on Windows, then Core ML on macOS), the CPU last; an
# onnxruntime build offers only some of them. OpenVINO runs as its own runtime (below).
PREFERRED_PROVIDERS = (
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
OPENVINO = "OpenVINO (CPU)"
MATCH_TOLERANCE = 0.01  # a*b* units: far below what anyone could see
AB_LIMIT = 128.0  # a*b* beyond this lie outside every RGB gamut
COMPARE_PAIRS = 9  # interleaved timings per runtime when choosing between them


def available_providers() -> list[str]:
    """Execution providers usable here, in the order they are tried."""
    present = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in present]


def runtime_order(openvino: str = "auto") -> list[str]:
    """The runtimes an Engine tries, in its order, as people read them: the accelerated
    providers, then on the CPU OpenVINO (always, or when it measures faster) or onnxruntime."""
    order = [p for p in available_providers() if p != "CPUExecutionProvider"]
    if openvino == "on" or (openvino == "auto" and openvino_available()):
        order.append(OPENVINO if openvino == "on" else f"{OPENVINO} where it measures faster")
    if openvino != "on":
        order.append("CPUExecutionProvider")
    return order


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None  # found, not imported (slow)


class Runner(Protocol):
    provider: str
    input_names: set[str]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


class OrtRunner:
    def __init__(self, entry: ModelEntry, providers: list[str], threads: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort_session(entry, options, providers)
        self.provider = self.session.get_providers()[0]
        self.input_names = {i.name for i in self.session.get_inputs()}
        names = [o.name for o in self.session.get_outputs()]
        self.output = OUTPUT if OUTPUT in names else names[0]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's (first) output for batch item 0."""
        if self.provider != "CUDAExecutionProvider":  # DirectML and Core ML copy by themselves
            return self.session.run([self.output], inputs)[0][0]
        binding = self.session.io_binding()  # inputs copied to the GPU once, output kept there
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        binding.bind_output(self.output, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0][0]


class OpenVinoRunner:
    provider = OPENVINO

    def __init__(self, entry: ModelEntry, threads: int):
        settings = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
        self.compiled = openvino_core().compile_model(str(entry.path), "CPU", settings)
        self.input_names = {port.get_any_name() for port in self.compiled.inputs}
        self._lock = threading.Lock()  # one inference request at a time per model

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            return np.array(self.compiled(inputs)[0][0])


def run_times(run: Callable[[], object], repeat: int) -> list[float]:
    """Seconds each of `repeat` calls took."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def choice_key(entry: ModelEntry, threads: int) -> str:
    import importlib.metadata
    import platform

    version = importlib.metadata.version("openvino")  # known without importing it (slow)
    stat = entry.path.stat()
    return f"{entry.path.resolve()}|{stat.st_size}|{stat.st_mtime}|{platform.processor()}|" + (
        f"{version}|{threads}"
    )


def remembered_choices() -> tuple[Path, dict]:
    path = Path(platformdirs.user_cache_dir("gimp-colorize")) / "runtime-choices.json"
    try:
        return path, json.loads(path.read_text())
    except (OSError, ValueError):
        return path, {}


def faster_runner(entry: ModelEntry, ort_runner: OrtRunner, threads: int) -> Runner:
    """OpenVINO when it is faster on this CPU and matches onnxruntime, else onnxruntime."""
    try:
        path, choices = remembered_choices()
        key = choice_key(entry, threads)
        if choices.get(key) == "onnxruntime":
            return ort_runner
        candidate = OpenVinoRunner(entry, threads)
    except Exception as exc:  # any OpenVINO failure only means: keep onnxruntime
        LOG.info("model %s: OpenVINO not used (%s)", entry.name, exc)
        return ort_runner
    if key in choices:
        return candidate
    chosen = _compare(entry, ort_runner, candidate)
    choices[key] = chosen.provider if chosen is candidate else "onnxruntime"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(choices, indent=1))
    except OSError:
        pass
    return chosen


def _compare(entry: ModelEntry, ort_runner: OrtRunner, candidate: OpenVinoRunner) -> Runner:
    """Time both runtimes on an input of the model's working size, interleaved (A B A B: a
    busy moment slows both alike); OpenVINO wins when its median is at least 10 % faster
    and its output matches."""
    width = (entry.input_size * 11 // 8) // entry.multiple * entry.multiple
    inputs = example_inputs(entry.kind, entry.input_size, width, optional=ort_runner.input_names)
    inputs[LIGHTNESS][:] = np.linspace(0, 100, inputs[LIGHTNESS].size, dtype=np.float32).reshape(
        inputs[LIGHTNESS].shape
    )
    if entry.adapter is not None:
        inputs = entry.adapter.inputs(inputs[LIGHTNESS])
    difference = float(np.abs(candidate.run(inputs) - ort_runner.run(inputs)).max())
    ort_times: list[float] = []
    ov_times: list[float] = []
    for _ in range(COMPARE_PAIRS):
        ort_times += run_times(lambda: ort_runner.run(inputs), 1)
        ov_times += run_times(lambda: candidate.run(inputs), 1)
    ort_time, ov_time = statistics.median(ort_times), statistics.median(ov_times)
    chosen = difference < MATCH_TOLERANCE and ov_time < 0.9 * ort_time
    LOG.info(
        "model %s: onnxruntime %.1f ms, OpenVINO %.1f ms (outputs differ by %.2g): using %s",
        entry.name,
        ort_time * 1000,
        ov_time * 1000,
        difference,
        OPENVINO if chosen else "onnxruntime",
    )
    return candidate if chosen else ort_runner


class Engine:
    """Runs contract-following ONNX models; a thread-safe cache of runners.

    openvino: "auto" (use it where faster and identical), "off", or "on" (on the CPU).
    upgrade_in_background: with "auto", serve a model with onnxruntime at once and let a
    background thread load OpenVINO (and time it, the first time on this machine), taking
    it over when it is the faster (a daemon's first photo need not wait for OpenVINO).
    """

    def __init__(
        self,
        providers: list[str] | None = None,
        threads: int | None = None,
        max_sessions: int = 4,
        openvino: str = "auto",
        upgrade_in_background: bool = False,
    ):
        self.providers = providers or available_providers()
        self.upgrade_in_background = upgrade_in_background
        self._upgrades: list[threading.Thread] = []
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self.max_sessions = max_sessions
        self.openvino = openvino
        self._runners: OrderedDict[tuple, Runner] = OrderedDict()
        self._lock = threading.Lock()

    def runner(self, entry: ModelEntry) -> Runner:
        stat = entry.path.stat()
        key = (str(entry.path.resolve()), stat.st_size, stat.st_mtime)
        with self._lock:
            cached = self._runners.get(key)
            if cached is not None:
                self._runners.move_to_end(key)
                return cached
            runner = self._load(entry, key)
            self._runners[key] = runner
            while len(self._runners) > self.max_sessions:
                self._runners.popitem(last=False)
            return runner

    def _load(self, entry: ModelEntry, key: tuple) -> Runner:
        ort_runner = OrtRunner(entry, self.providers, self.threads)
        if ort_runner.provider != self.providers[0]:
            LOG.warning(
                "model %s: %s unavailable, falling back to %s",
                entry.name,
                self.providers[0],
                ort_runner.provider,
            )
        runner: Runner = ort_runner
        on_cpu = ort_runner.provider == "CPUExecutionProvider"
        if on_cpu and self.openvino == "on":
            runner = OpenVinoRunner(entry, self.threads)
        elif on_cpu and self.openvino == "auto" and openvino_available():
            if self.upgrade_in_background:
                upgrade = threading.Thread(
                    target=self._upgrade, args=(entry, key, ort_runner), daemon=True
                )
                upgrade.start()
                self._upgrades.append(upgrade)
            else:
                runner = faster_runner(entry, ort_runner, self.threads)
        LOG.info("model %s loaded from %s on %s", entry.name, entry.path, runner.provider)
        return runner

    def wait_for_upgrades(self, timeout_s: float) -> None:
        """Let background loads finish (a process must not exit while a runtime compiles:
        its threads would abort it)."""
        for upgrade in self._upgrades:
            upgrade.join(timeout_s)

    def _upgrade(self, entry: ModelEntry, key: tuple, ort_runner: OrtRunner) -> None:
        """OpenVINO in place of onnxruntime for this model, when it is the faster here."""
        chosen = faster_runner(entry, ort_runner, self.threads)
        if chosen is not ort_runner:
            with self._lock:
                if key in self._runners:
                    self._runners[key] = chosen
            LOG.info("model %s now runs on %s", entry.name, chosen.provider)

    def provider_of(self, entry: ModelEntry) -> str:
        return self.runner(entry).provider

    def input_names(self, entry: ModelEntry) -> set[str]:
        """What the model's graph reads: its kind's inputs, and any optional ones."""
        return self.runner(entry).input_names

    def run(self, entry: ModelEntry, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run a model on its contract inputs (batch 1); returns its ab output [2, h', w'],
        checked against the contract and finite."""
        runner = self.runner(entry)
        if entry.adapter is not None:
            return checked_ab(entry, entry.adapter.run(runner.run, inputs))
        return checked_ab(entry, runner.run(inputs))


def checked_ab(entry: ModelEntry, ab: np.ndarray) -> np.ndarray:
    """A model's a*b* as the contract wants it ([2, h, w]), or a clear refusal; a NaN or
    infinite value (a broken or overflowing model) is made finite, never passed on."""
    if ab.ndim != 3 or ab.shape[0] != 2 or min(ab.shape[1:]) < 1:
        raise ColorizeError(
            ErrorCode.BAD_REQUEST,
            f"model {entry.name} returned an output of shape {[1, *ab.shape]}; the model "
            "contract (docs/models.md) wants [N, 2, h, w]: the a* and b* planes",
        )
    ab = np.asarray(ab, dtype=np.float32)
    if not np.isfinite(ab).all():
        ab = np.nan_to_num(ab, nan=0.0, posinf=AB_LIMIT, neginf=-AB_LIMIT)
    return np.clip(ab, -AB_LIMIT, AB_LIMIT)
