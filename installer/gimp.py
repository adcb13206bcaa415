"""Finding GIMP: per-user plug-in folders of every 3.x and 2.10 install, and its Python."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from installer.layout import is_macos, is_windows

FLATPAK_MARK = ".var/app/org.gimp.GIMP"
GIMP3_PLUGIN = "colorize"  # GIMP 3 needs plug-ins/NAME/NAME.py
GIMP2_PLUGIN = "colorize_gimp2"
BUNDLED_PYTHONS = [  # GIMP 3 installers that carry their own Python
    Path(os.environ.get("ProgramFiles", "C:/Program Files")) / "GIMP 3" / "bin" / "python.exe",
    Path("/Applications/GIMP.app/Contents/MacOS/python3"),
    Path("/Applications/GIMP-3.0.app/Contents/MacOS/python3"),
]


def gimp_config_roots() -> list[Path]:
    """Folders where GIMP keeps per-user configuration, for every platform and packaging."""
    home = Path.home()
    if is_windows():
        appdata = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
        return [appdata / "GIMP"]
    if is_macos():
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


def plugin_name(major: str) -> str:
    return GIMP3_PLUGIN if major == "3" else GIMP2_PLUGIN


def is_flatpak(plugins: Path) -> bool:
    return FLATPAK_MARK in str(plugins)


def interpreter_files(gimp: Path) -> list[Path]:
    """GIMP's interpreter configuration files (*.interp) next to a GIMP executable."""
    prefix = gimp.resolve().parent.parent
    folders = [prefix / "lib" / "gimp" / "3.0" / "interpreters"]
    folders += sorted((prefix / "lib").glob("*/gimp/3.0/interpreters"))
    return [f for folder in folders if folder.is_dir() for f in sorted(folder.glob("*.interp"))]


def python_of_interpreter_file(path: Path) -> str | None:
    """The Python an interp file registers (`python=PATH`, `python3=PATH`, or a binfmt line
    for .py files), if any."""
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith(("python=", "python3=")):
            return line.split("=", 1)[1]
        fields = line.split(":")
        if line.startswith(":") and len(fields) > 6 and fields[4] == "py":
            return fields[6]
    return None


def gimp_python_for(plugins: Path) -> list[str] | None:
    """The command of the Python that really runs GIMP's plug-ins for this folder: Flatpak's
    own, the one GIMP's interpreter configuration names, a bundled one, or the python3 beside
    the GIMP executable (a distribution GIMP runs `#!/usr/bin/env python3` with the system's
    Python, not with a python3 that PATH in this shell may name first)."""
    if is_flatpak(plugins):
        if not shutil.which("flatpak"):
            return None
        return ["flatpak", "run", "--command=python3", "org.gimp.GIMP"]
    gimp = gimp_binaries().get("2" if "/2.10/" in str(plugins) else "3")
    if gimp:
        for interp in interpreter_files(Path(gimp)):
            python = python_of_interpreter_file(interp)
            if python and Path(python).exists():
                return [python]
        beside = Path(gimp).resolve().parent / "python3"
        if beside.exists():
            return [str(beside)]
    for bundled in BUNDLED_PYTHONS:
        if bundled.exists():
            return [str(bundled)]
    if os.name == "posix" and not is_macos() and shutil.which("python3"):
        return [str(shutil.which("python3"))]  # no GIMP found here: the likeliest guess
    return None
