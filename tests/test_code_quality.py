"""The code's own rules, checked on every run: lint, types, function size, and which parts
may import which (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SOURCE_FOLDERS = ("backend", "installer", "plugin", "training", "benchmarks")
PACKAGE = REPO / "backend" / "colorize_backend"
# What each part of the backend (a folder) may import of the backend: the core nothing but
# itself, the daemon the core, the tools everything; none of them training code.
ALLOWED_PARTS = {
    "core": {"core"},
    "daemon": {"core", "daemon"},
    "tools": {"core", "daemon", "tools"},
}
MAX_FUNCTION_LINES = 60


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def run_tool(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_and_format_are_clean():
    lint = run_tool("ruff", "check", ".")
    assert lint.returncode == 0, lint.stdout
    formatted = run_tool("ruff", "format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout


def test_backend_type_checks():
    pytest.importorskip("mypy")
    done = run_tool("mypy")
    assert done.returncode == 0, done.stdout


def test_no_function_outside_the_tests_is_longer_than_60_lines():
    long = []
    for path in python_files(*SOURCE_FOLDERS) + [REPO / "install.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} {lines}")
    assert not long


def test_the_plugin_imports_nothing_of_the_backend_and_no_numpy():
    for path in python_files("plugin"):
        for module in imported_modules(path):
            assert not module.startswith(("colorize_backend", "numpy")), (path, module)


def backend_part(module: str) -> str | None:
    """The part (folder) of the backend a module name belongs to, if it is the backend's."""
    parts = module.split(".")
    return parts[1] if parts[0] == "colorize_backend" and len(parts) > 1 else None


@pytest.mark.parametrize("part", sorted(ALLOWED_PARTS))
def test_each_part_of_the_backend_imports_only_what_its_folder_may(part):
    for path in sorted((PACKAGE / part).rglob("*.py")):
        for module in imported_modules(path):
            assert not module.startswith(("training", "tests")), (path, module)
            imported = backend_part(module)
            assert imported is None or imported in ALLOWED_PARTS[part], (path, module)
            if part == "core":
                assert module.split(".")[0] != "zmq", (path, module)


def test_training_uses_the_core_and_the_tools_never_the_daemon():
    for path in python_files("training"):
        for module in imported_modules(path):
            assert backend_part(module) != "daemon", (path, module)


def test_every_backend_module_lives_in_a_part():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert not loose


def test_the_installer_needs_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"installer", "colorize_client", "PIL"}
    for path in python_files("installer") + [REPO / "install.py"]:
        for module in imported_modules(path):
            assert module.split(".")[0] in allowed, (path, module)


def test_tests_stop_only_what_they_started():
    for path in python_files("tests"):
        assert "pkill" not in path.read_text() or path.name == Path(__file__).name
