"""The code's own rules, checked on every run: lint, types, function size, and which parts
may import which (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SOURCE_FOLDERS = ("colorize_backend", "installer", "plugin", "training", "benchmarks")
CORE = (
    "contract",
    "color",
    "planes",
    "kernels",
    "reference",
    "guidance",
    "pipeline",
    "engine",
    "manifest",
    "adapters",
    "edge_filter",
)
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


def test_the_core_never_imports_transport_or_training():
    for name in CORE:
        for module in imported_modules(REPO / "colorize_backend" / f"{name}.py"):
            forbidden = ("zmq", "training", "colorize_backend.daemon", "colorize_backend.client")
            assert not module.startswith(forbidden), (name, module)


def test_the_installer_needs_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"installer", "colorize_client", "PIL"}
    for path in python_files("installer") + [REPO / "install.py"]:
        for module in imported_modules(path):
            assert module.split(".")[0] in allowed, (path, module)


def test_tests_stop_only_what_they_started():
    for path in python_files("tests"):
        assert "pkill" not in path.read_text() or path.name == Path(__file__).name
