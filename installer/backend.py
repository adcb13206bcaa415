"""The backend's virtualenv: created once, packages as pyproject.toml lists them."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

from installer.layout import Layout, say


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def has_nvidia_gpu() -> bool:
    if os.environ.get("COLORIZE_FORCE_CPU"):
        return False
    if os.path.exists("/proc/driver/nvidia/version"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        return subprocess.run([smi, "-L"], capture_output=True).returncode == 0
    return False


def pyproject(layout: Layout) -> dict:
    import tomllib

    return tomllib.loads((layout.repo / "pyproject.toml").read_text())


def project_requirements(layout: Layout) -> tuple[list[str], str, list[str]]:
    """(runtime requirements, onnxruntime's version range, dev tools) as pyproject.toml
    lists them; the runtime itself is the `cpu` or `gpu` extra. The dev tools include the
    build system's requirements, so that the checkout also builds without isolation (as
    the packaging test does)."""
    data = pyproject(layout)
    extras = data["project"]["optional-dependencies"]
    onnx_range = extras["cpu"][0].removeprefix("onnxruntime")
    dev = extras["dev"] + data["build-system"]["requires"]
    return list(data["project"]["dependencies"]), onnx_range, dev


def onnxruntime_package(version_range: str) -> str:
    """onnxruntime-gpu where CUDA wheels exist and an NVIDIA GPU is present, else onnxruntime."""
    machine = platform.machine().lower()
    gpu_platform = platform.system() in ("Linux", "Windows") and machine in ("x86_64", "amd64")
    name = "onnxruntime-gpu" if gpu_platform and has_nvidia_gpu() else "onnxruntime"
    return name + version_range


def install_backend(layout: Layout, with_dev: bool) -> bool:
    """Create or update the virtualenv; True when this run created it."""
    created = not layout.python.exists()
    if created:
        say(f"creating virtualenv {layout.venv}")
        run([sys.executable, "-m", "venv", layout.venv])
    runtime, onnx_range, dev = project_requirements(layout)
    onnx_runtime = onnxruntime_package(onnx_range)
    packages = runtime + [onnx_runtime] + (dev if with_dev else [])
    say(f"installing {', '.join(p.split('>')[0].split('=')[0] for p in packages)}")
    pip = [layout.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(pip + packages)
    if not onnx_runtime.startswith("onnxruntime-gpu"):
        add_openvino(pip, layout)
    # The runtime dependencies are already chosen above (CPU or GPU onnxruntime).
    run(pip + ["--no-deps", "--editable", layout.repo])
    return created


def add_openvino(pip: list, layout: Layout) -> None:
    """OpenVINO runs the networks faster on many CPUs; where no wheel exists, go without."""
    requirement = pyproject(layout)["project"]["optional-dependencies"]["openvino"][0]
    done = subprocess.run([str(c) for c in pip + [requirement]], capture_output=True, text=True)
    if done.returncode != 0:
        say("OpenVINO is not available for this machine; the CPU runtime is onnxruntime")
