"""Copying the plug-in into GIMP's plug-in folders and writing its config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from installer.endpoint import DEFAULT_ENDPOINT, is_local
from installer.flatpak import allow_flatpak_host_launch
from installer.gimp import gimp_python_for, is_flatpak, plugin_folders, plugin_name
from installer.layout import CONFIG_NAME, Layout, say
from installer.pyzmq_vendor import ensure_pyzmq

IDLE_MINUTES = 30  # a daemon the plug-in started exits after so long without requests


def plugin_config(layout: Layout, endpoint: str, flatpak: bool = False) -> dict:
    """The plug-in's config: where the daemon listens, how to start it, which installation
    must answer, and where it logs.

    Flatpak's GIMP runs in a sandbox: it starts the daemon on the host through
    flatpak-spawn (allowed by the override that install_plugins sets).
    """
    log_file = str(layout.state_dir / "daemon.log")
    launcher = [str(layout.launcher), "serve", "--endpoint", endpoint, "--log-file", log_file]
    launcher += ["--idle-timeout", str(IDLE_MINUTES)]
    models, default = installed_models(layout)
    return {
        "endpoint": endpoint,
        "launcher": ["flatpak-spawn", "--host", *launcher] if flatpak else launcher,
        "backend_prefix": str(layout.venv),
        "log_file": log_file,
        "models": models,  # what the GIMP dialog offers in its Model list
        "default_model": default,
    }


def installed_models(layout: Layout) -> tuple[list[dict], str | None]:
    """Name, kind, description and working size of each model the backend offers (shipped,
    and the user's own in ~/.local/share/gimp-colorize/models: those by path), and the
    default; asked of the backend itself, so that the GIMP list is what the daemon serves."""
    listed = subprocess.run(
        [str(layout.python), "-m", "colorize_backend.tools.cli", "models", "--json", "--verify"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if listed.returncode != 0:
        raise RuntimeError(f"the backend cannot list its models: {listed.stderr.strip()[-300:]}")
    models, default = [], None
    for row in json.loads(listed.stdout):
        models.append({k: row.get(k) for k in ("name", "kind", "description", "input_size")})
        if row.get("path"):
            models[-1]["path"] = row["path"]  # the daemon takes the user's models by path
        if row.get("default"):
            default = row["name"]
    return models, default


def merged_config(path: Path, fresh: dict) -> dict:
    """The new config over the user's: their own settings (timeouts, CURVE keys) survive a
    re-install; a daemon they use on another machine keeps its endpoint and no launcher."""
    try:
        existing = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh
    if not isinstance(existing, dict):
        return fresh
    if not is_local(str(existing.get("endpoint", DEFAULT_ENDPOINT))):
        kept = {
            k: v for k, v in fresh.items() if k not in ("endpoint", "launcher", "backend_prefix")
        }
        return {**existing, **kept}
    return {**existing, **fresh}


def entry_script(layout: Layout, major: str) -> Path:
    if major == "3":
        return layout.plugin_src / "colorize" / "colorize.py"
    return layout.plugin_src / "colorize_gimp2" / "colorize_gimp2.py"


def install_plugin(layout: Layout, major: str, plugins: Path, endpoint: str, vendor: bool) -> Path:
    """One GIMP's plug-in: entry + shared client, executable, with its config."""
    target = plugins / plugin_name(major)
    target.mkdir(parents=True, exist_ok=True)
    entry = entry_script(layout, major)
    for source in (entry, layout.plugin_src / "colorize" / "colorize_client.py"):
        shutil.copy2(source, target / source.name)
    (target / entry.name).chmod(0o755)  # GIMP skips plug-ins that are not executable
    flatpak = is_flatpak(plugins)
    config = merged_config(target / CONFIG_NAME, plugin_config(layout, endpoint, flatpak))
    (target / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    note = (
        ensure_pyzmq(layout, target, gimp_python_for(plugins))
        if vendor
        else "pyzmq vendoring skipped (--no-vendor)"
    )
    if flatpak:
        note += "; " + allow_flatpak_host_launch()
    say(f"GIMP {'3' if major == '3' else '2.10'} plug-in -> {target} ({note})")
    return target


def install_plugins(layout: Layout, extra: list[Path], endpoint: str, vendor: bool) -> list[str]:
    """The plug-in in every GIMP plug-in folder found (and those given); the folders written."""
    folders = plugin_folders(extra)
    if not folders:
        say(
            "no GIMP found; the backend and CLI are installed. Re-run after installing GIMP, "
            "or pass --gimp-dir ~/.config/GIMP/3.0"
        )
    return [str(install_plugin(layout, major, p, endpoint, vendor)) for major, p in folders]
