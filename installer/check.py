"""install.py --check: is the backend healthy, and is the plug-in in every GIMP?"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from installer.gimp import plugin_folders, plugin_name
from installer.layout import CONFIG_NAME, Layout, say
from installer.record import read_record


def plugin_problem(target: Path) -> str | None:
    entry = next((p for p in target.glob("colorize*.py") if p.name != "colorize_client.py"), None)
    if entry is None or not os.access(entry, os.X_OK):
        return f"{target}: plug-in entry missing or not executable"
    if not (target / CONFIG_NAME).exists():
        return f"{target}: {CONFIG_NAME} missing"
    return None


def check(layout: Layout) -> int:
    """Print what is fine and what is wrong; 1 when anything is wrong."""
    problems = []
    if not layout.python.exists():
        problems.append(f"no virtualenv at {layout.venv}: run python3 install.py")
    elif subprocess.run([str(layout.launcher), "doctor"]).returncode != 0:
        problems.append("colorize-backend doctor reported problems (see above)")
    record = read_record()
    for folder in record["plugins"]:
        problem = plugin_problem(Path(folder))
        if problem:
            problems.append(problem)
        else:
            say(f"plug-in ok: {folder}")
    for major, plugins in plugin_folders([]):
        if str(plugins / plugin_name(major)) not in record["plugins"]:
            problems.append(
                f"GIMP plug-in folder {plugins} has no colorize plug-in: re-run install"
            )
    for problem in problems:
        say(f"PROBLEM: {problem}")
    say("everything looks fine" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
