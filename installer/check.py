"""install.py --check: is the backend healthy, is the plug-in in every GIMP, and does GIMP's
own Python import it?"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from installer.gimp import gimp_python_for, plugin_folders, plugin_name
from installer.layout import CONFIG_NAME, Layout, say
from installer.record import read_record

IMPORT_PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); import colorize_client; "
    "print('%d.%d' % sys.version_info[:2], colorize_client.zmq.zmq_version())"
)


def plugin_problem(target: Path) -> str | None:
    entry = next((p for p in target.glob("colorize*.py") if p.name != "colorize_client.py"), None)
    if entry is None or not os.access(entry, os.X_OK):
        return f"{target}: plug-in entry missing or not executable"
    if not (target / CONFIG_NAME).exists():
        return f"{target}: {CONFIG_NAME} missing"
    return gimp_python_problem(target)


def gimp_python_problem(target: Path) -> str | None:
    """Import the plug-in's client under the Python GIMP runs it with (needs pyzmq there)."""
    python = gimp_python_for(target.parent)
    if python is None:
        say(f"{target}: GIMP's Python not found here; its import was not checked")
        return None
    done = subprocess.run(
        python + ["-c", IMPORT_PROBE, str(target)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 or "None" in done.stdout:
        last = (done.stderr.strip().splitlines() or ["pyzmq missing"])[-1]
        return f"{target}: GIMP's Python ({' '.join(python)}) cannot load the plug-in: {last}"
    version, zmq_version = done.stdout.split()
    say(f"plug-in ok: {target} (GIMP's Python {version}, ZeroMQ {zmq_version})")
    return None


def configured_endpoint(target: Path) -> str | None:
    try:
        return json.loads((target / CONFIG_NAME).read_text()).get("endpoint")
    except (OSError, ValueError, AttributeError):
        return None


def check(layout: Layout) -> int:
    """Print what is fine and what is wrong; 1 when anything is wrong."""
    problems = []
    record = read_record(layout)
    targets = [Path(folder) for folder in record["plugins"]]
    endpoints = sorted({e for e in map(configured_endpoint, targets) if e}) or [None]
    if not layout.python.exists():
        problems.append(f"no virtualenv at {layout.venv}: run python3 install.py")
    else:
        for endpoint in endpoints:
            command = [str(layout.launcher), "doctor"]
            if endpoint:
                command += ["--endpoint", endpoint]
            if subprocess.run(command).returncode != 0:
                problems.append(f"colorize-backend doctor reported problems for {endpoint}")
    problems += [p for p in map(plugin_problem, targets) if p]
    if not targets:
        problems.append(
            "the plug-in is installed in no GIMP: install GIMP 3 (or 2.10) and re-run "
            "python3 install.py, or pass --gimp-dir FOLDER"
        )
    for major, plugins in plugin_folders([]):
        if str(plugins / plugin_name(major)) not in record["plugins"]:
            problems.append(
                f"GIMP plug-in folder {plugins} has no colorize plug-in: re-run install"
            )
    for problem in problems:
        say(f"PROBLEM: {problem}")
    say("everything looks fine" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
