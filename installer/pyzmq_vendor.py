"""Make `import zmq` work in GIMP's own Python: use its pyzmq, or vendor a matching wheel."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from installer.backend import run
from installer.layout import Layout


def ensure_pyzmq(layout: Layout, target: Path, interpreter: list[str] | None) -> str:
    """Vendor pyzmq into target/vendor when GIMP's Python lacks it; says what was done."""
    if interpreter is None:
        return (
            "GIMP's Python could not be located; if the plug-in says pyzmq is missing, "
            f"install pyzmq for GIMP's Python into {target / 'vendor'}"
        )
    probe = subprocess.run(
        interpreter + ["-c", "import sys, zmq; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return f"GIMP's Python already has pyzmq ({' '.join(interpreter)})"
    version = subprocess.run(
        interpreter + ["-c", "import sys; print('%d%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not version:
        return f"could not run GIMP's Python ({' '.join(interpreter)}); pyzmq not vendored"
    with tempfile.TemporaryDirectory() as tmp:
        download = [layout.python, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
        run(download + ["--no-deps", "--python-version", version, "--dest", tmp, "pyzmq"])
        wheel = next(Path(tmp).glob("pyzmq-*.whl"))
        vendor = target / "vendor"
        shutil.rmtree(vendor, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(vendor)
    return f"vendored {wheel.name} for GIMP's Python {version[0]}.{version[1:]}"
