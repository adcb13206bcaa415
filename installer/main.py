"""The command line of install.py: install (default), --check or --uninstall.

Every problem is reported as one clear line (`[install] PROBLEM: ...`), never as a
traceback (--debug shows it for a bug report).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from installer.endpoint import DEFAULT_ENDPOINT
from installer.layout import REPO, Layout, say

USAGE = """Set up GIMP Colorize: backend virtualenv, models, GIMP plug-ins, smoke test.

    python3 install.py              install (safe to run again) and colorize the bundled sample
    python3 install.py --check      diagnose an existing installation
    python3 install.py --uninstall  remove everything install.py wrote
"""
__all__ = ["DEFAULT_ENDPOINT", "main"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
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
    parser.add_argument(
        "--endpoint",
        help=f"daemon endpoint (default: the previous install's, else {DEFAULT_ENDPOINT}, "
        "else a free port)",
    )
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="backend virtualenv")
    parser.add_argument("--output", type=Path, default=REPO / "out", help="where the sample goes")
    parser.add_argument("--no-dev", action="store_true", help="skip the test tools")
    parser.add_argument(
        "--no-vendor", action="store_true", help="do not vendor pyzmq into the plug-in folders"
    )
    parser.add_argument(
        "--no-smoke", action="store_true", help="skip the final sample colorization"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    return parser.parse_args(argv)


def install(layout: Layout, args: argparse.Namespace) -> int:
    from installer.backend import install_backend
    from installer.endpoint import choose_endpoint
    from installer.gimp import plugin_folders, plugin_name
    from installer.models import verify_models
    from installer.plugins import install_plugins
    from installer.record import write_record
    from installer.smoke import smoke_test

    started = time.time()
    created = [str(layout.venv)] if install_backend(layout, with_dev=not args.no_dev) else []
    problems = verify_models(layout)
    for problem in problems:
        say(f"PROBLEM: {problem}")
    if problems:
        return 1
    targets = [p / plugin_name(m) for m, p in plugin_folders(args.gimp_dir)]
    endpoint = choose_endpoint(layout, args.endpoint, targets)
    plugins = install_plugins(layout, args.gimp_dir, endpoint, vendor=not args.no_vendor)
    write_record(layout, plugins, created, endpoint)
    if args.no_smoke:
        say(f"done in {time.time() - started:.0f} s")
    else:
        result = smoke_test(layout, endpoint)
        write_record(layout, [], [str(result)], endpoint)
        say(f"done in {time.time() - started:.0f} s. Colorized sample: {result}")
    if plugins:
        say("In GIMP: Filters > Colorize > Auto Colorize… / Colorize from Reference…")
    else:
        say("Without GIMP: colorize-backend colorize PHOTO -o RESULT (see README)")
    return 0


def run(layout: Layout, args: argparse.Namespace) -> int:
    if args.check:
        from installer.check import check

        return check(layout)
    if args.uninstall:
        from installer.uninstall import uninstall

        return uninstall(layout)
    return install(layout, args)


def describe(error: BaseException) -> str:
    """One line for a failure: what failed and the last thing it said."""
    if isinstance(error, subprocess.CalledProcessError):
        output = (error.stderr or error.stdout or "").strip()
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        command = " ".join(str(c) for c in error.cmd[:4])
        last = output.splitlines()[-1] if output else f"exit status {error.returncode}"
        return f"`{command} ...` failed: {last}"
    return f"{type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - an older python3 may run this file
        print(f"Python 3.11 or newer is needed for the backend; this is {sys.version[:6]}")
        return 1
    args = parse_args(argv)
    layout = Layout(REPO, args.venv.absolute(), args.output.absolute())
    try:
        return run(layout, args)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as error:
        if args.debug:
            raise
        say(f"PROBLEM: {describe(error)}")
        say("run again with --debug to see where it failed")
        return 1
