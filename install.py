#!/usr/bin/env python3
"""One-command set-up of GIMP Colorize: backend virtualenv, models, GIMP plug-ins, smoke test.

    python3 install.py              install (safe to run again) and colorize the bundled sample
    python3 install.py --check      diagnose an existing installation
    python3 install.py --uninstall  remove everything install.py wrote

Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
VENV = REPO / ".venv"
PLUGIN_SRC = REPO / "plugin"
SAMPLE = REPO / "samples" / "sample.jpg"
OUTPUT_DIR = REPO / "out"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
RUNTIME_PACKAGES = ["numpy>=1.26", "pillow>=10", "pyzmq>=25", "scipy>=1.11"]
DEV_PACKAGES = ["pytest>=8", "hypothesis>=6", "ruff>=0.5", "scikit-image>=0.22", "onnx>=1.15"]
GIMP3_PLUGIN = "colorize"  # GIMP 3 needs plug-ins/NAME/NAME.py
GIMP2_PLUGIN = "colorize_gimp2"
CONFIG_NAME = "colorize-config.json"


def say(message: str) -> None:
    print(f"[install] {message}", flush=True)


def state_dir() -> Path:
    """Where the install record and the daemon log live (per user)."""
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "gimp-colorize"
    return (
        Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "gimp-colorize"
    )


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_launcher() -> Path:
    return VENV / ("Scripts/colorize-backend.exe" if os.name == "nt" else "bin/colorize-backend")


def use_locations(venv: Path, output: Path) -> None:
    """Point the installer at another virtualenv and output folder (--venv, --output)."""
    global VENV, OUTPUT_DIR
    VENV, OUTPUT_DIR = venv.absolute(), output.absolute()


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


# ------------------------------------------------------------------ backend


def has_nvidia_gpu() -> bool:
    if os.environ.get("COLORIZE_FORCE_CPU"):
        return False
    if Path("/proc/driver/nvidia/version").exists():
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        return subprocess.run([smi, "-L"], capture_output=True).returncode == 0
    return False


def onnxruntime_package() -> str:
    """onnxruntime-gpu where CUDA wheels exist and an NVIDIA GPU is present, else onnxruntime."""
    machine = platform.machine().lower()
    gpu_platform = platform.system() in ("Linux", "Windows") and machine in ("x86_64", "amd64")
    return "onnxruntime-gpu>=1.17" if gpu_platform and has_nvidia_gpu() else "onnxruntime>=1.17"


def install_backend(with_dev: bool) -> bool:
    """Create or update the virtualenv; True when this run created it."""
    if sys.version_info < (3, 11):  # noqa: UP036 - an older python3 may run this file
        sys.exit(f"Python 3.11 or newer is needed for the backend; this is {sys.version[:6]}")
    created = not venv_python().exists()
    if created:
        say(f"creating virtualenv {VENV}")
        run([sys.executable, "-m", "venv", VENV])
    packages = RUNTIME_PACKAGES + [onnxruntime_package()] + (DEV_PACKAGES if with_dev else [])
    say(f"installing {', '.join(p.split('>')[0] for p in packages)}")
    pip = [venv_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(pip + packages)
    # The runtime dependencies are already chosen above (CPU or GPU onnxruntime).
    run(pip + ["--no-deps", "--editable", REPO])
    return created


def verify_models() -> list[str]:
    manifest = json.loads((REPO / "colorize_backend" / "models" / "manifest.json").read_text())
    problems = []
    for entry in manifest["models"]:
        path = REPO / "colorize_backend" / "models" / entry["file"]
        if not path.exists():
            problems.append(f"{entry['name']}: {path} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['name']}: {path} does not match its sha256 (corrupted?)")
        else:
            say(f"model {entry['name']} ({entry['kind']}) ok: sha256 {entry['sha256'][:12]}…")
    return problems


# ------------------------------------------------------------------ GIMP plug-in folders


def gimp_config_roots() -> list[Path]:
    """Folders where GIMP keeps per-user configuration, for every platform and packaging."""
    home = Path.home()
    if os.name == "nt":
        appdata = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
        return [appdata / "GIMP"]
    if sys.platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return [xdg / "GIMP", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"]


def gimp_binaries() -> dict[str, str]:
    found = {}
    for major, names in (("3", ("gimp-3.0", "gimp-3", "gimp")), ("2", ("gimp-2.10",))):
        for name in names:
            path = shutil.which(name)
            if path:
                found[major] = path
                break
    return found


def plugin_folders(extra: list[Path]) -> list[tuple[str, Path]]:
    """(GIMP major version, plug-ins folder) for every GIMP 3.x and 2.10 found."""
    folders: list[tuple[str, Path]] = []
    for root in gimp_config_roots():
        if root.is_dir():
            for version_dir in sorted(root.iterdir()):
                name = version_dir.name
                if name.startswith("3.") or name == "2.10":
                    folders.append((name[0], version_dir / "plug-ins"))
    binaries = gimp_binaries()
    default_root = gimp_config_roots()[0]
    if "3" in binaries and not any(m == "3" for m, _ in folders):
        folders.append(("3", default_root / "3.0" / "plug-ins"))
    if "2" in binaries and not any(m == "2" for m, _ in folders):
        folders.append(("2", default_root / "2.10" / "plug-ins"))
    for folder in extra:  # --gimp-dir: a GIMP profile folder such as ~/.config/GIMP/3.0
        folders.append(("2" if folder.name.startswith("2.") else "3", folder / "plug-ins"))
    return list(dict.fromkeys(folders))


FLATPAK_MARK = ".var/app/org.gimp.GIMP"


def plugin_config(endpoint: str, flatpak: bool = False) -> dict:
    """The plug-in's config: where the daemon listens and how to start it.

    Flatpak's GIMP runs in a sandbox: it starts the daemon on the host through
    flatpak-spawn (allowed by the override that install_plugins sets).
    """
    launcher = [str(venv_launcher()), "serve", "--endpoint", endpoint]
    return {
        "endpoint": endpoint,
        "launcher": ["flatpak-spawn", "--host", *launcher] if flatpak else launcher,
        "log_file": str(state_dir() / "daemon.log"),
    }


def flatpak_host_launch(allow: bool) -> subprocess.CompletedProcess:
    """Let Flatpak's GIMP run flatpak-spawn --host, or take that back (a per-user override)."""
    talk = "--talk-name" if allow else "--no-talk-name"
    return subprocess.run(
        ["flatpak", "override", "--user", f"{talk}=org.freedesktop.Flatpak", "org.gimp.GIMP"],
        capture_output=True,
        text=True,
    )


def allow_flatpak_host_launch() -> str:
    """Set the override on install (undone on uninstall); says how it went."""
    if not shutil.which("flatpak"):
        return "flatpak not found: start the daemon yourself (colorize-backend serve)"
    done = flatpak_host_launch(allow=True)
    return (
        "flatpak override set"
        if done.returncode == 0
        else f"flatpak override failed: {done.stderr.strip()}"
    )


BUNDLED_PYTHONS = [  # GIMP 3 installers that carry their own Python
    Path(os.environ.get("ProgramFiles", "C:/Program Files")) / "GIMP 3" / "bin" / "python.exe",
    Path("/Applications/GIMP.app/Contents/MacOS/python3"),
    Path("/Applications/GIMP-3.0.app/Contents/MacOS/python3"),
]


def gimp_python_for(plugins: Path) -> list[str] | None:
    """The command of the Python that runs GIMP's plug-ins for this folder, if it can be run."""
    if FLATPAK_MARK in str(plugins):
        return (
            ["flatpak", "run", "--command=python3", "org.gimp.GIMP"]
            if shutil.which("flatpak")
            else None
        )
    for bundled in BUNDLED_PYTHONS:
        if bundled.exists():
            return [str(bundled)]
    if os.name == "posix" and sys.platform != "darwin" and shutil.which("python3"):
        return [shutil.which("python3")]  # distribution GIMP runs plug-ins with python3
    return None


def ensure_pyzmq(target: Path, interpreter: list[str] | None) -> str:
    """Make `import zmq` work in GIMP's Python: use its own, or vendor a matching wheel."""
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
        run(
            [
                venv_python(),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--no-deps",
                "--python-version",
                version,
                "--dest",
                tmp,
                "pyzmq",
            ]
        )
        wheel = next(Path(tmp).glob("pyzmq-*.whl"))
        vendor = target / "vendor"
        shutil.rmtree(vendor, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(vendor)
    return f"vendored {wheel.name} for GIMP's Python {version[0]}.{version[1:]}"


def install_plugins(extra: list[Path], endpoint: str, vendor: bool) -> list[str]:
    written = []
    folders = plugin_folders(extra)
    if not folders:
        say(
            "no GIMP found; the backend and CLI are installed. Re-run after installing GIMP, "
            "or pass --gimp-dir ~/.config/GIMP/3.0"
        )
    for major, plugins in folders:
        name = GIMP3_PLUGIN if major == "3" else GIMP2_PLUGIN
        target = plugins / name
        target.mkdir(parents=True, exist_ok=True)
        entry = (
            PLUGIN_SRC / "colorize" / "colorize.py"
            if major == "3"
            else PLUGIN_SRC / "colorize_gimp2" / "colorize_gimp2.py"
        )
        for source in (entry, PLUGIN_SRC / "colorize" / "colorize_client.py"):
            shutil.copy2(source, target / source.name)
        (target / entry.name).chmod(0o755)  # GIMP skips plug-ins that are not executable
        flatpak = FLATPAK_MARK in str(plugins)
        config = plugin_config(endpoint, flatpak)
        (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        note = (
            ensure_pyzmq(target, gimp_python_for(plugins))
            if vendor
            else "pyzmq vendoring skipped (--no-vendor)"
        )
        if flatpak:
            note += "; " + allow_flatpak_host_launch()
        say(f"GIMP {'3' if major == '3' else '2.10'} plug-in -> {target} ({note})")
        written.append(str(target))
    return written


# ------------------------------------------------------------------ smoke test

SMOKE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from colorize_client import Client, load_config
from PIL import Image
config = load_config(sys.argv[2])
image = Image.open(sys.argv[3])
fmt = {"L": "gray", "LA": "graya", "RGB": "rgb", "RGBA": "rgba"}.get(image.mode)
if fmt is None:
    image, fmt = image.convert("RGB"), "rgb"
client = Client(config)
deadline = time.time() + 90
while True:
    try:
        hello = client.hello()
        break
    except Exception:
        if time.time() > deadline:
            raise
started = time.perf_counter()
reply, pixels = client.colorize(image.width, image.height, fmt, image.tobytes())
mode = "RGBA" if reply["format"] == "rgba" else "RGB"
Image.frombytes(mode, image.size, pixels).save(sys.argv[4])
print(json.dumps({"model": reply["model"], "provider": reply["provider"],
                  "seconds": round(time.perf_counter() - started, 3),
                  "backend": hello["backend_version"]}))
"""


def smoke_test(endpoint: str) -> Path:
    """Colorize the bundled sample through the daemon with the plug-in's own client."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    result = OUTPUT_DIR / "sample-colorized.png"
    state_dir().mkdir(parents=True, exist_ok=True)
    config_file = state_dir() / "smoke-config.json"
    config = plugin_config(endpoint)
    config_file.write_text(json.dumps(config))
    already_running = _daemon_answers(config_file)
    daemon = None
    if not already_running:
        log = open(config["log_file"], "ab")
        daemon = subprocess.Popen(config["launcher"], stdout=log, stderr=subprocess.STDOUT)
    try:
        out = run(
            [venv_python(), "-c", SMOKE, PLUGIN_SRC / "colorize", config_file, SAMPLE, result],
            capture_output=True,
            text=True,
        )
        info = json.loads(out.stdout.strip().splitlines()[-1])
        say(
            f"sample colorized by {info['model']} on {info['provider']} in {info['seconds']} s "
            "through the daemon"
        )
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
        config_file.unlink(missing_ok=True)
    return result


def _daemon_answers(config_file: Path) -> bool:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from colorize_client import Client, "
        "load_config; Client(load_config(sys.argv[2])).hello()"
    )
    probe = [venv_python(), "-c", code, PLUGIN_SRC / "colorize", config_file]
    return subprocess.run([str(c) for c in probe], capture_output=True).returncode == 0


# ------------------------------------------------------------------ record, check, uninstall


def record_path() -> Path:
    return state_dir() / "install-record.json"


def read_record() -> dict:
    if record_path().exists():
        return json.loads(record_path().read_text())
    return {"plugins": [], "created": []}


def write_record(plugins: list[str], created: list[str]) -> None:
    """Remember what this and earlier runs wrote, so that --uninstall removes exactly that."""
    state_dir().mkdir(parents=True, exist_ok=True)
    previous = read_record()
    record = {
        "repo": str(REPO),
        "installed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "plugins": sorted(set(previous["plugins"]) | set(plugins)),
        "created": sorted(set(previous["created"]) | set(created)),
    }
    record_path().write_text(json.dumps(record, indent=2) + "\n")


def check() -> int:
    problems = []
    if not venv_python().exists():
        problems.append(f"no virtualenv at {VENV}: run python3 install.py")
    else:
        doctor = subprocess.run([str(venv_launcher()), "doctor"])
        if doctor.returncode != 0:
            problems.append("colorize-backend doctor reported problems (see above)")
    record = read_record()
    for folder in record["plugins"]:
        target = Path(folder)
        entry = next(
            (p for p in target.glob("colorize*.py") if p.name != "colorize_client.py"), None
        )
        if entry is None or not os.access(entry, os.X_OK):
            problems.append(f"{target}: plug-in entry missing or not executable")
        elif not (target / CONFIG_NAME).exists():
            problems.append(f"{target}: {CONFIG_NAME} missing")
        else:
            say(f"plug-in ok: {target}")
    for major, plugins in plugin_folders([]):
        name = GIMP3_PLUGIN if major == "3" else GIMP2_PLUGIN
        if str(plugins / name) not in record["plugins"]:
            problems.append(
                f"GIMP plug-in folder {plugins} has no colorize plug-in: re-run install"
            )
    for problem in problems:
        say(f"PROBLEM: {problem}")
    say("everything looks fine" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def uninstall() -> int:
    record = read_record()
    if any(FLATPAK_MARK in p for p in record["plugins"]) and shutil.which("flatpak"):
        flatpak_host_launch(allow=False)
    for path in [*record["plugins"], *record["created"], str(state_dir())]:
        target = Path(path)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink()
        else:
            continue
        say(f"removed {path}")
    say("uninstalled")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="diagnose the installation")
    parser.add_argument("--uninstall", action="store_true", help="remove what install.py wrote")
    parser.add_argument(
        "--gimp-dir",
        type=Path,
        action="append",
        default=[],
        help="also install into this GIMP profile folder (e.g. ~/.config/GIMP/3.0)",
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="daemon endpoint")
    parser.add_argument("--venv", type=Path, default=VENV, help="virtualenv for the backend")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="where the sample goes")
    parser.add_argument("--no-dev", action="store_true", help="skip the test tools")
    parser.add_argument(
        "--no-vendor", action="store_true", help="do not vendor pyzmq into the plug-in folders"
    )
    parser.add_argument(
        "--no-smoke", action="store_true", help="skip the final sample colorization"
    )
    args = parser.parse_args(argv)
    use_locations(args.venv, args.output)
    if args.check:
        return check()
    if args.uninstall:
        return uninstall()
    started = time.time()
    created = [str(VENV)] if install_backend(with_dev=not args.no_dev) else []
    problems = verify_models()
    if problems:
        for problem in problems:
            say(f"PROBLEM: {problem}")
        return 1
    plugins = install_plugins(args.gimp_dir, args.endpoint, vendor=not args.no_vendor)
    write_record(plugins, created)
    if not args.no_smoke:
        result = smoke_test(args.endpoint)
        write_record([], [str(result)])
        say(f"done in {time.time() - started:.0f} s. Colorized sample: {result}")
    else:
        say(f"done in {time.time() - started:.0f} s")
    say("In GIMP: Filters > Colorize > Auto Colorize… / Colorize from Reference…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
