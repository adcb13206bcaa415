"""`colorize-backend bench`: how fast, through what, and with how much memory — measured
as users meet it.

- the network alone at its working sizes, for each runtime this machine has (onnxruntime
  on the CPU, OpenVINO, CUDA when a GPU is present);
- whole photos: in this process (`direct`) and through a daemon started as a separate
  process, with the GIMP plug-in's own client, over shared memory and over the socket;
  the three are interleaved (A B C A B C …) so that a noisy machine hits them alike, and
  reported as min / median / max with the ratio of medians;
- the daemon's peak memory per request above its level before it, read from outside
  (/proc/PID/clear_refs, VmHWM), in bytes per pixel;
- the CLI on a folder of 1-MP photos, in photos per second.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from colorize_backend import __version__
from colorize_backend.core.contract import ModelKind, example_inputs, network_size
from colorize_backend.core.engine import (
    Engine,
    OpenVinoRunner,
    OrtRunner,
    available_providers,
    run_times,
)
from colorize_backend.core.manifest import ModelEntry
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon.front import TRIM_AFTER_S
from colorize_backend.tools.cold_start import cold_start_rows

PLUGIN_CLIENT = Path(__file__).resolve().parents[3] / "plugin" / "colorize"  # in a checkout


def spread(times: list[float]) -> dict[str, float]:
    ms = sorted(t * 1000 for t in times)
    return {
        "min_ms": round(ms[0], 1),
        "median_ms": round(statistics.median(ms), 1),
        "max_ms": round(ms[-1], 1),
    }


def timed(run, repeat: int) -> list[float]:
    run()  # warm-up
    return run_times(run, repeat)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for module in ("onnxruntime", "openvino", "numba", "numpy", "zmq"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except (ImportError, AttributeError):
            continue
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], **versions}


def synthetic_photo(megapixels: float) -> np.ndarray:
    """A deterministic textured grey test image of about the given size (4:3)."""
    height = int(round((megapixels * 1e6 * 3 / 4) ** 0.5))
    width = int(round(height * 4 / 3))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = 128 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0) + 40 * np.sin((x + y) / 91.0)
    return np.clip(grey, 0, 255).astype(np.uint8)[..., None]


def network_times(entry: ModelEntry, threads: int, repeat: int) -> dict[str, Any]:
    """The network alone, per runtime, at square and 4:3 working sizes and at 512²."""
    runners: dict[str, Any] = {
        "onnxruntime-cpu": OrtRunner(entry, ["CPUExecutionProvider"], threads)
    }
    try:
        runners["openvino-cpu"] = OpenVinoRunner(entry, threads)
    except ImportError:
        pass
    if "CUDAExecutionProvider" in available_providers():
        runners["onnxruntime-cuda"] = OrtRunner(entry, ["CUDAExecutionProvider"], threads)
    w43, h43 = network_size(4000, 3000, entry.input_size, entry.multiple)
    shapes = [(entry.input_size, entry.input_size), (h43, w43), (512, 512)]
    report: dict[str, Any] = {}
    for h, w in shapes:  # the runtimes interleaved (A B A B): a busy moment slows both alike
        inputs = example_inputs(entry.kind, h, w)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for runner in runners.values():
            runner.run(inputs)  # warm-up
        for _ in range(repeat):
            for name, runner in runners.items():
                started = time.perf_counter()
                runner.run(inputs)
                times[name].append(time.perf_counter() - started)
        for name, values in times.items():
            report[f"{name} {w}x{h}"] = spread(values)
    return report


def runtime_check(report: dict[str, Any], entry: ModelEntry) -> str:
    """Whether the runtime the engine chose is the faster one in this run's own timings at
    the model's working size (the choice is made once per model and machine, and cached)."""
    size = f"{entry.input_size}x{entry.input_size}"
    medians = {
        name.split()[0]: row["median_ms"]
        for name, row in report["network"].items()
        if name.endswith(size)
    }
    if len(medians) < 2:
        return "only one runtime here"
    fastest = min(medians, key=medians.__getitem__)
    chosen = "openvino-cpu" if report["runtime"].startswith("OpenVINO") else "onnxruntime-cpu"
    if chosen == fastest or medians[chosen] <= 1.1 * medians[fastest]:
        return f"{report['runtime']} is the faster here, or within 10 %"
    return (
        f"{report['runtime']} was chosen but {fastest} measured faster in this run "
        f"({medians[fastest]} against {medians[chosen]} ms): delete the cached choice "
        "(runtime-choices.json in the user cache folder) to have it measured again"
    )


class DaemonUnderTest:
    """A daemon in its own process, with the plug-in's own client talking to it."""

    def __init__(self, manifest: Path, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        command = [sys.executable, "-m", "colorize_backend.tools.cli", "--manifest", str(manifest)]
        command += ["serve", "--endpoint", self.endpoint, "--log-file", str(log)]
        self.process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        sys.path.insert(0, str(PLUGIN_CLIENT))
        module = importlib.import_module("colorize_client")
        config = dict(module.DEFAULTS, endpoint=self.endpoint)
        self.shared, self.socket = module.Client(config), module.Client(config)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.shared.hello(timeout_s=1.0)
                break
            except module.BackendError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the daemon did not start") from None
        self.socket.limits = self.shared.limits  # no hello on this one: it keeps the socket

    def colorize(self, client, size: tuple[int, int], data: bytes) -> None:
        """As the GIMP plug-in does: the layer's bytes in, the result used, then released."""
        client.colorize(size[0], size[1], "gray", data)
        client.release()

    def peak_bytes(self, client, size: tuple[int, int], data: bytes) -> int:
        """The daemon's peak resident memory during one request, above its level before (once
        it has handed back what earlier requests freed)."""
        time.sleep(TRIM_AFTER_S + 0.5)
        status = Path(f"/proc/{self.process.pid}/status")
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        before = _kb(status, "VmRSS")
        self.colorize(client, size, data)
        return (_kb(status, "VmHWM") - before) * 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _kb(status: Path, field: str) -> int:
    line = next(x for x in status.read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def photo_times(colorizer: Colorizer, daemon: DaemonUnderTest, megapixels: float, repeat: int):
    pixels = synthetic_photo(megapixels)
    size, data = (pixels.shape[1], pixels.shape[0]), pixels.tobytes()  # what GIMP hands over
    runs = {
        "direct": lambda: colorizer.colorize(pixels),
        "daemon_shared_memory": lambda: daemon.colorize(daemon.shared, size, data),
        "daemon_socket": lambda: daemon.colorize(daemon.socket, size, data),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeat):  # interleaved: A B C A B C ...
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    direct = statistics.median(times["direct"])
    report: dict[str, Any] = {"size": f"{pixels.shape[1]}x{pixels.shape[0]}"}
    for name, values in times.items():
        report[name] = spread(values)
        if name != "direct":
            report[name]["overhead_pct"] = round(100 * (statistics.median(values) / direct - 1), 1)
    if Path("/proc/self/clear_refs").exists():
        for name, client in (("shared_memory", daemon.shared), ("socket", daemon.socket)):
            peak = daemon.peak_bytes(client, size, data)
            report[f"daemon_peak_bytes_per_pixel_{name}"] = round(peak / pixels[..., 0].size, 2)
    return report


def cli_batch(manifest: Path, photos: int) -> dict[str, Any]:
    """`colorize-backend colorize FOLDER -o FOLDER` on 1-MP JPEG photos, as a user runs it;
    the same command on one photo tells the start-up time, the rest is the steady rate."""
    from PIL import Image

    base = synthetic_photo(1.0)[..., 0]
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in (1, photos):
            source = Path(folder) / f"in{count}"
            source.mkdir()
            for i in range(count):
                image = Image.fromarray(np.roll(base, i * 7, axis=1))
                image.save(source / f"{i:03d}.jpg", quality=90)
            command = [
                sys.executable,
                "-m",
                "colorize_backend.tools.cli",
                "--manifest",
                str(manifest),
            ]
            command += ["colorize", str(source), "-o", str(Path(folder) / f"out{count}")]
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds[count] = time.perf_counter() - started
    steady = (photos - 1) / (seconds[photos] - seconds[1])
    return {
        "photos": photos,
        "seconds": round(seconds[photos], 2),
        "photos_per_s": round(photos / seconds[photos], 2),
        "start_up_s": round(seconds[1], 2),
        "photos_per_s_after_start_up": round(steady, 2),
    }


def run_bench(colorizer: Colorizer, args: argparse.Namespace) -> dict:
    entry = colorizer.manifest.resolve(args.model, ModelKind.AUTO)
    engine: Engine = colorizer.engine
    report: dict[str, Any] = {
        "backend": __version__,
        "machine": machine(),
        "model": entry.name,
        "runtime": engine.provider_of(entry),
        "threads": engine.threads,
        "repeat": args.repeat,
        "network": network_times(entry, engine.threads, args.repeat),
        "photos": {},
    }
    report["runtime_check"] = runtime_check(report, entry)
    with tempfile.TemporaryDirectory() as folder:
        daemon = DaemonUnderTest(Path(args.manifest), Path(folder) / "daemon.log")
        try:
            for megapixels in args.megapixels:
                repeat = args.repeat if megapixels <= 12 else max(3, args.repeat // 2)
                report["photos"][f"{megapixels:g}MP"] = photo_times(
                    colorizer, daemon, megapixels, repeat
                )
        finally:
            daemon.stop()
    if args.batch:
        report["cli_batch_1MP"] = cli_batch(Path(args.manifest), args.batch)
    if args.cold:
        photo = synthetic_photo(1.0)
        report["cold_start"] = cold_start_rows(Path(args.manifest), photo, args.cold)
    yardstick = eccv16_ms(engine.threads, args.repeat)
    if yardstick:
        report["eccv16_like_256_ms"] = yardstick
        report["ratios_to_eccv16"] = ratios(report, yardstick)
    return report


def eccv16_ms(threads: int, repeat: int) -> float | None:
    """Median ms of one pass of the ECCV16-shaped yardstick at 256² (onnxruntime, CPU)."""
    try:
        from colorize_backend.tools.yardstick import write_eccv16_like
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = write_eccv16_like(Path(folder) / "eccv16-like.onnx")
        except ImportError:  # the onnx package (a development dependency) is missing
            return None
        entry = ModelEntry("eccv16-like", path, ModelKind.AUTO, 256)
        runner = OrtRunner(entry, ["CPUExecutionProvider"], threads)
        inputs = example_inputs(ModelKind.AUTO, 256, 256)
        return spread(timed(lambda: runner.run(inputs), max(repeat, 3)))["median_ms"]


def ratios(report: dict[str, Any], eccv16: float) -> dict[str, float]:
    """The speed targets' measures as fractions of one yardstick pass."""
    found = {}
    one_mp = report["photos"].get("1MP")
    if one_mp:
        found["daemon_1MP_shared_memory"] = one_mp["daemon_shared_memory"]["median_ms"] / eccv16
    batch = report.get("cli_batch_1MP")
    if batch:
        found["cli_batch_per_photo"] = 1000 * batch["seconds"] / batch["photos"] / eccv16
    return {name: round(value, 3) for name, value in found.items()}


def write_report(report: dict, output: str | None, as_json: bool = False) -> None:
    """The report as a table for people (or JSON with as_json); JSON into `output` too."""
    text = json.dumps(report, indent=2)
    print(text if as_json else table(report))
    if output:
        Path(output).write_text(text + "\n")


def table(report: dict[str, Any]) -> str:
    """The report's figures as aligned lines: one per measured row, medians first."""
    lines = [
        f"colorize-backend {report['backend']} on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores); model {report['model']} on "
        f"{report['runtime']}, {report['threads']} threads, {report['repeat']} runs each",
        f"runtime check: {report['runtime_check']}",
        "",
        f"{'what':<44}{'median ms':>10}{'min':>9}{'max':>9}  note",
    ]

    def row(name: str, values: dict[str, Any]) -> None:
        note = f"{values['overhead_pct']:+.1f} % over direct" if "overhead_pct" in values else ""
        lines.append(
            f"{name:<44}{values['median_ms']:>10.1f}{values['min_ms']:>9.1f}"
            f"{values['max_ms']:>9.1f}  {note}"
        )

    for name, values in report["network"].items():
        row(f"network {name}", values)
    for size, photo in report["photos"].items():
        for name, values in photo.items():
            if isinstance(values, dict):
                row(f"{size} ({photo['size']}) {name}", values)
            elif name.startswith("daemon_peak"):
                lines.append(f"{size} {name:<40}{values:>10} bytes/pixel")
    for name, cold in report.get("cold_start", {}).items():
        lines.append(f"cold start: {name:<44}{cold['median_s']:>7.2f} s (median)")
    if "eccv16_like_256_ms" in report:
        lines.append(f"yardstick: ECCV16-shaped network at 256²: {report['eccv16_like_256_ms']} ms")
        for name, ratio in report["ratios_to_eccv16"].items():
            lines.append(f"  {name}: {ratio:.3f} of one yardstick pass")
    batch = report.get("cli_batch_1MP")
    if batch:
        lines.append(
            f"CLI batch of {batch['photos']} 1-MP photos: {batch['photos_per_s']} photos/s, "
            f"start-up {batch['start_up_s']} s, {batch['photos_per_s_after_start_up']} "
            "photos/s after it"
        )
    return "\n".join(lines)
