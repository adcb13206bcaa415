"""The GIMP 2.10 gimpfu entry against a stand-in gimpfu module and a live daemon.

Runs under a real Python 2.7 when one with pyzmq is installed (as GIMP 2.10 has),
and always under this Python 3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, loopback_endpoint


def interpreter_env(python: str) -> dict[str, str]:
    return {"PATH": str(Path(python).parent) + ":/usr/bin:/bin", "PYENV_VERSION": "2.7.18"}


def interpreters() -> list:
    found = [pytest.param(sys.executable, id="python3")]
    python2 = shutil.which("python2.7")
    usable = (
        python2
        and subprocess.run(
            [python2, "-c", "import zmq"], capture_output=True, env=interpreter_env(python2)
        ).returncode
        == 0
    )
    found.append(
        pytest.param(
            python2,
            id="python2.7",
            marks=pytest.mark.skipif(not usable, reason="no Python 2.7 with pyzmq on this machine"),
        )
    )
    return found


@pytest.mark.parametrize("python", interpreters())
def test_gimpfu_entry_registers_and_colorizes(python, daemon, photo, tmp_path):
    plugin = tmp_path / "plug-ins" / "colorize_gimp2"
    plugin.mkdir(parents=True)
    shutil.copy(REPO / "plugin/colorize_gimp2/colorize_gimp2.py", plugin)
    shutil.copy(REPO / "plugin/colorize/colorize_client.py", plugin)
    (plugin / "colorize-config.json").write_text(json.dumps({"endpoint": daemon}))
    (tmp_path / "down.json").write_text(
        json.dumps(
            {
                "endpoint": loopback_endpoint(),
                "launcher": ["/nonexistent/backend"],
                "hello_timeout_s": 0.3,
                "start_timeout_s": 1,
            }
        )
    )
    grey = np.ascontiguousarray(photo[..., 0])
    (tmp_path / "photo.gray").write_bytes(grey.tobytes())
    run = subprocess.run(
        [
            python,
            str(REPO / "tests/gimp2/scenario.py"),
            str(plugin),
            str(tmp_path / "photo.gray"),
            str(grey.shape[1]),
            str(grey.shape[0]),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=interpreter_env(python),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    facts = json.loads((tmp_path / "facts.json").read_text())

    registered = facts["registered"]
    assert registered["python-fu-colorize-auto"]["label"] == "Auto Colorize..."
    assert registered["python-fu-colorize-reference"]["label"] == "Colorize from Reference..."
    assert {r["menu"] for r in registered.values()} == {"<Image>/Filters/Colorize"}
    assert "reference" in registered["python-fu-colorize-reference"]["params"]

    auto = facts["runs"]["auto"]
    assert auto["error"] is None and auto["source_unchanged"]
    assert auto["layers"] == ["Photo (colorized)", "Photo"]  # new layer above the source
    assert auto["result"] == {"bpp": 3, "offsets": [7, 5], "size": [grey.shape[1], grey.shape[0]]}
    assert auto["events"].index("undo_start") < auto["events"].index("undo_end")
    result = (
        np.frombuffer((tmp_path / "auto.rgb").read_bytes(), np.uint8)
        .reshape(grey.shape + (3,))
        .astype(int)
    )
    assert np.abs(result[..., 0] - result[..., 2]).mean() > 5

    failure = facts["runs"]["failure"]
    assert "colorize backend" in failure["error"] and failure["source_unchanged"]
    assert failure["layers"] == ["Photo"] and failure["base_type"] == 1  # still grey, untouched
    assert "undo_start" not in failure["events"]
    assert any(e.startswith("message: ") for e in failure["events"])

    sixteen = facts["runs"]["sixteen-bit"]  # GIMP 2.10's pixel regions: 8-bit only here
    assert sixteen["layers"] == ["Photo"] and sixteen["source_unchanged"]
    assert any("Image > Precision" in e for e in sixteen["events"])
