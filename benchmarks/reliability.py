"""Figures for docs/reliability.md, measured on a real daemon process with the plug-in's client.

python benchmarks/reliability.py [--output FILE] [--megapixels 1 12 48]

- time from `kill -9` of the daemon mid-request to the client's error (5 runs);
- the daemon's peak memory above its baseline for the thin strips of the issue
  (20000 x 50 and 100000 x 10 grey) and for grey photos of 1, 12 and 48 MP, read from
  outside the daemon: /proc/PID/clear_refs resets the peak, VmHWM reads it;
- what the daemon still holds after the largest request;
- a crowd: 32 GIMP-like clients (the plug-in's own client, which retries `busy`) sending
  20 requests of 1 MP each at once: how many succeed, latency p50/p99, how evenly the
  clients are served, and the daemon's memory after.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugin" / "colorize"))
from colorize_client import DEFAULTS, BackendError, Client  # noqa: E402
from report import emit  # noqa: E402


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def start_daemon(endpoint: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "colorize_backend.tools.cli", "serve", "--endpoint", endpoint]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
    client = Client(dict(DEFAULTS, endpoint=endpoint))
    for _ in range(120):
        try:
            client.hello(timeout_s=0.5)
            return process
        except BackendError:
            time.sleep(0.25)
    raise RuntimeError("daemon did not start")


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def grey(width: int, height: int) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    return (128 + 100 * np.sin(x / 50.0) * np.cos(y / 40.0)).astype(np.uint8).tobytes()


def time_to_error_after_kill(runs: int) -> list[float]:
    """The daemon is killed 0.2 s into a 48 MP request; how long until the client says so."""
    width, height = 8000, 6000
    pixels = grey(width, height)
    times = []
    for _ in range(runs):
        endpoint = free_endpoint()
        daemon = start_daemon(endpoint)
        killed: list[float] = []

        def kill(daemon=daemon, killed=killed) -> None:
            os.kill(daemon.pid, signal.SIGKILL)
            killed.append(time.monotonic())

        timer = threading.Timer(0.2, kill)
        timer.start()
        try:
            Client(dict(DEFAULTS, endpoint=endpoint)).colorize(width, height, "gray", pixels)
        except BackendError as exc:
            assert exc.code == "dead", exc.message
            times.append(round(time.monotonic() - killed[0], 2))
        timer.cancel()
        daemon.wait()
    return times


def peak_above_baseline(pid: int, client: Client, width: int, height: int) -> dict:
    pixels = grey(width, height)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak := current
    baseline = status_kb(pid, "VmRSS")
    started = time.perf_counter()
    client.colorize(width, height, "gray", pixels)
    seconds = time.perf_counter() - started
    peak = status_kb(pid, "VmHWM") - baseline
    time.sleep(0.3)
    return {
        "size": f"{width}x{height}",
        "seconds": round(seconds, 2),
        "peak_above_baseline_mb": round(peak / 1024, 1),
        "bytes_per_pixel": round(peak * 1024 / (width * height), 2),
        "held_after_mb": round((status_kb(pid, "VmRSS") - baseline) / 1024, 1),
    }


def memory_figures(megapixels: list[float]) -> list[dict]:
    endpoint = free_endpoint()
    daemon = start_daemon(endpoint)
    client = Client(dict(DEFAULTS, endpoint=endpoint))
    try:
        client.colorize(640, 480, "gray", grey(640, 480))  # warm-up: model loaded
        sizes = [(20000, 50), (100000, 10)]
        sizes += [
            (int((m * 1e6 * 4 / 3) ** 0.5), int((m * 1e6 * 3 / 4) ** 0.5)) for m in megapixels
        ]
        return [peak_above_baseline(daemon.pid, client, w, h) for w, h in sizes]
    finally:
        daemon.terminate()
        daemon.wait(30)


def crowd(clients: int, requests: int, megapixels: float) -> dict:
    """`clients` threads, each its own plug-in client, `requests` colorizations each, at once."""
    width, height = int((megapixels * 1e6 * 4 / 3) ** 0.5), int((megapixels * 1e6 * 3 / 4) ** 0.5)
    pixels = grey(width, height)
    endpoint = free_endpoint()
    daemon = start_daemon(endpoint)
    latencies: list[float] = []
    finished: list[float] = []
    failures: list[str] = []
    start = threading.Event()

    def one_client() -> None:
        client = Client(dict(DEFAULTS, endpoint=endpoint))
        start.wait()
        for _ in range(requests):
            began = time.perf_counter()
            try:
                client.colorize(width, height, "gray", pixels)
                client.release()
                latencies.append(time.perf_counter() - began)
            except BackendError as exc:
                failures.append(exc.code)
        finished.append(time.perf_counter() - started)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    start.set()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - started
    time.sleep(2.0)  # the daemon hands freed memory back once idle
    held = status_kb(daemon.pid, "VmRSS") / 1024
    daemon.terminate()
    daemon.wait(30)
    ms = sorted(t * 1000 for t in latencies)
    return {
        "clients": clients,
        "requests_each": requests,
        "size": f"{width}x{height}",
        "succeeded": len(latencies),
        "failed": len(failures),
        "failure_codes": sorted(set(failures)),
        "seconds": round(total, 1),
        "latency_ms": {
            "p50": round(ms[len(ms) // 2], 1) if ms else None,
            "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1) if ms else None,
        },
        "client_finish_s": {"first": round(min(finished), 1), "last": round(max(finished), 1)},
        "daemon_rss_after_mb": round(held, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 12.0, 48.0])
    parser.add_argument("--kill-runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--only-crowd", action="store_true")
    args = parser.parse_args()
    report: dict = {"machine": f"{os.cpu_count()} cores, {os.uname().machine}"}
    if not args.only_crowd:
        kills = time_to_error_after_kill(args.kill_runs)
        report["kill_9_to_client_error_s"] = {"runs": kills, "median": statistics.median(kills)}
        report["memory"] = memory_figures(args.megapixels)
    report["crowd"] = crowd(args.clients, args.requests, 1.0)
    emit(report, args.output)


if __name__ == "__main__":
    main()
