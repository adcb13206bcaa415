"""`colorize-backend doctor`: what is installed, what runs, and what is wrong — and why.

Each check is a line (`[ok]` or `[!!]`); `--json` gives the same as data. When the
machine has an NVIDIA GPU but the models run on the CPU, it says why: onnxruntime-gpu
missing, or which CUDA / cuDNN library the CUDA provider could not load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from colorize_backend import __version__
from colorize_backend.core.engine import available_providers, runtime_order
from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.manifest import Manifest, ManifestError
from colorize_backend.daemon.client import DaemonClient
from colorize_backend.daemon.protocol import DEFAULT_ENDPOINT, PROTOCOL_VERSION

CUDA_LIBRARIES = ("cudart", "cublas", "cublasLt", "cufft", "curand", "cudnn")


@dataclass
class Report:
    checks: list[dict] = field(default_factory=list)

    def add(self, ok: bool, text: str) -> None:
        self.checks.append({"ok": ok, "text": text})

    @property
    def problems(self) -> list[str]:
        return [c["text"] for c in self.checks if not c["ok"]]


def probe_daemon(endpoint: str, timeout_s: float = 1.5) -> dict | None:
    """The daemon's hello reply, or None when nothing answers at endpoint."""
    try:
        return DaemonClient(endpoint).hello(timeout_s)
    except ColorizeError:
        return None


def has_nvidia_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([str(smi), "-L"], capture_output=True).returncode == 0


def missing_cuda_libraries() -> list[str]:
    """The CUDA and cuDNN libraries this system cannot load (what the CUDA provider needs)."""
    missing = []
    for name in CUDA_LIBRARIES:
        found = ctypes.util.find_library(name)
        try:
            ctypes.CDLL(found or f"lib{name}.so")
        except OSError:
            missing.append(f"lib{name}")
    return missing


def check_runtimes(report: Report) -> None:
    providers = available_providers()
    report.add(True, f"runtimes, tried in this order: {', '.join(runtime_order())}")
    if not has_nvidia_gpu():
        return
    if "CUDAExecutionProvider" not in providers:
        report.add(
            False,
            "an NVIDIA GPU is present but onnxruntime-gpu is not installed: re-run install.py "
            "(it installs onnxruntime-gpu when it sees the GPU)",
        )
        return
    missing = missing_cuda_libraries()
    if missing:
        libraries = ", ".join(missing)
        report.add(
            False,
            f"the CUDA provider cannot load {libraries}: install the CUDA runtime and cuDNN "
            "that this onnxruntime-gpu was built for",
        )


def check_modules(report: Report) -> None:
    """Each module the backend needs is installed, with its version (found, not imported:
    importing numba or scipy alone would take longer than the whole diagnosis)."""
    distributions = importlib.metadata.packages_distributions()
    for module in ("numpy", "PIL", "zmq", "onnxruntime", "scipy", "numba", "imagecodecs"):
        if importlib.util.find_spec(module) is None:
            report.add(False, f"{module} is not installed: re-run install.py")
            continue
        names = distributions.get(module, [module])
        try:
            version = importlib.metadata.version(names[0])
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        report.add(True, f"{module} {version}")


def check_models(report: Report, manifest_path: Path) -> None:
    try:
        manifest = Manifest.load(manifest_path)
    except ManifestError as exc:
        report.add(False, str(exc))
        return
    report.add(True, f"{len(manifest.entries)} model(s), default {manifest.default}")
    for problem in manifest.verify():
        report.add(False, problem)


def check_daemon(report: Report, endpoint: str) -> None:
    hello = probe_daemon(endpoint)
    if hello is None:
        report.add(True, f"no daemon answering at {endpoint} (the plug-in starts one when needed)")
    elif hello.get("protocol") != PROTOCOL_VERSION:
        report.add(False, f"daemon at {endpoint} speaks protocol {hello.get('protocol')}")
    else:
        backend, pid, install = hello.get("backend_version"), hello.get("pid"), hello.get("install")
        report.add(True, f"daemon at {endpoint}: backend {backend}, pid {pid}, from {install}")


def diagnose(
    manifest_path: Path, endpoint: str = DEFAULT_ENDPOINT, as_json: bool = False
) -> list[str]:
    """Print the report (as lines, or as JSON); return the problems found."""
    report = Report()
    check_modules(report)
    check_runtimes(report)
    check_models(report, manifest_path)
    check_daemon(report, endpoint)
    system = (
        f"colorize-backend {__version__}, Python {sys.version.split()[0]}, {platform.platform()}"
    )
    if as_json:
        print(json.dumps({"system": system, **asdict(report), "problems": report.problems}))
        return report.problems
    print(system)
    for check in report.checks:
        print(f"[{'ok' if check['ok'] else '!!'}] {check['text']}")
    problems = report.problems
    print("no problems found" if not problems else f"{len(problems)} problem(s) found")
    return problems
