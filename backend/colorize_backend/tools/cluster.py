"""`colorize-backend colorize SRC -o DST --cluster ADDRESS`: a collection on a Dask cluster.

The same plan as the local batch (core of `tools.batch`: layout kept, nothing overwritten,
finished results skipped, so a run started again resumes), carried out by the workers of a
Dask cluster (`dask scheduler` + `dask worker` on each machine, or `local:N` worker
processes on this one):
- every worker process loads the models once (a worker plugin holds its Colorizer) and
  picks its own execution provider (a GPU worker its GPU; one worker per GPU with
  CUDA_VISIBLE_DEVICES);
- where every worker sees the files (a shared folder), tasks carry paths and workers read
  and write themselves; otherwise the client sends each photo's bytes and writes the
  results. Either way a result is written under a temporary name and renamed, so a killed
  worker leaves no partial result;
- a task carries a few photos (`photos_per_task`), so Dask's own work per task and the
  scheduler's load are shared among them;
- at most IN_FLIGHT_PER_THREAD tasks per worker thread are submitted at a time, so a million
  files never become a million futures;
- a worker killed mid-run loses nothing: Dask runs its tasks elsewhere (the job every
  task needs is itself a task, made again when lost), each result is written once (a
  rerun task writes the same file again, atomically), and the summary says which workers
  were lost.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dask
import numpy as np
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker

from colorize_backend.core.atomic_file import replaced_on_success
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.tools.batch import Summary, Task
from colorize_backend.tools.images import WriteOptions

PLUGIN_NAME = "gimp-colorize"
IN_FLIGHT_PER_THREAD = 2
MAX_PHOTOS_PER_TASK = 8
TASKS_PER_THREAD = 4  # at least, so that no thread waits long for the others at the end
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class EngineSettings:
    """How each worker runs the networks (the CLI's --cpu, --threads, --runtime)."""

    cpu: bool = False
    threads: int | None = None
    runtime: str = "auto"
    manifest: str | None = None  # None: the manifest installed on each worker


@dataclass(frozen=True)
class ClusterJob:
    """Everything a task needs besides its photo: it travels to the workers whole."""

    options: ColorizeOptions
    write: WriteOptions
    reference: np.ndarray | None = None  # the exemplar or hint layer's pixels


@dataclass
class TaskResult:
    source: str
    worker: str
    provider: str
    seconds: float
    error: str | None = None


@dataclass
class ClusterReport:
    """What the summary says beyond the batch's: who did what, how fast, who was lost."""

    photos_per_worker: Counter = field(default_factory=Counter)
    busy_seconds: Counter = field(default_factory=Counter)  # time inside tasks, per worker
    providers: dict[str, str] = field(default_factory=dict)
    workers_seen: set[str] = field(default_factory=set)
    workers_lost: set[str] = field(default_factory=set)
    transfer: str = "paths"


class ColorizerPlugin(WorkerPlugin):
    """A Dask worker plugin: the worker's Colorizer, built once when the worker starts, and
    an allocator that reuses freed photo buffers (`daemon.memory.keep_freed_blocks`)."""

    name = PLUGIN_NAME

    def __init__(self, engine: EngineSettings):
        self.engine = engine
        self.colorizer: Any = None

    def setup(self, worker: Any) -> None:
        from colorize_backend.core import compiled
        from colorize_backend.core.engine import Engine
        from colorize_backend.core.manifest import MANIFEST_PATH, Manifest
        from colorize_backend.core.pipeline import Colorizer
        from colorize_backend.daemon.memory import keep_freed_blocks

        keep_freed_blocks()
        compiled.load_in_background()
        settings = self.engine
        providers = ["CPUExecutionProvider"] if settings.cpu else None
        openvino = {"onnxruntime": "off", "openvino": "on"}.get(settings.runtime, "auto")
        manifest = Manifest.load(Path(settings.manifest) if settings.manifest else MANIFEST_PATH)
        engine = Engine(providers, threads=settings.threads, openvino=openvino)
        self.colorizer = Colorizer(manifest, engine)

    def teardown(self, worker: Any) -> None:
        self.colorizer = None


def _worker_colorizer() -> tuple[Any, str]:
    worker = get_worker()
    plugin = worker.plugins[PLUGIN_NAME]
    assert isinstance(plugin, ColorizerPlugin)
    return plugin.colorizer, worker.address


def _colorized(photo: Any, job: ClusterJob) -> tuple[Any, str, str]:
    from colorize_backend.core.reference import Reference

    colorizer, address = _worker_colorizer()
    reference = Reference(job.reference) if job.reference is not None else None
    result = colorizer.colorize(photo.pixels, job.options, reference)
    photo.pixels = result.pixels
    return photo, address, result.provider


def colorize_files(pairs: list[tuple[str, str]], job: ClusterJob) -> list[TaskResult]:
    """On a worker that sees the files: each (source, target) read, colorized, written."""
    return [colorize_file(source, target, job) for source, target in pairs]


def colorize_file(source: str, target: str, job: ClusterJob) -> TaskResult:
    """Read, colorize, write atomically (write_photo's temporary name, then rename)."""
    from colorize_backend.tools.images import read_photo, write_photo

    started = time.perf_counter()
    address, provider = "", ""
    try:
        photo, address, provider = _colorized(read_photo(Path(source)), job)
        write_photo(Path(target), photo, job.write)
    except (ColorizeError, OSError, ValueError, MemoryError) as exc:
        message = exc.message if isinstance(exc, ColorizeError) else str(exc)
        return TaskResult(source, address, provider, time.perf_counter() - started, message)
    return TaskResult(source, address, provider, time.perf_counter() - started)


def colorize_many_bytes(
    photos: list[tuple[str, bytes, str]], job: ClusterJob
) -> list[tuple[TaskResult, bytes]]:
    """On a worker that does not see the files: each (name, bytes, result suffix) colorized."""
    return [colorize_bytes(source, data, suffix, job) for source, data, suffix in photos]


def colorize_bytes(
    source: str, data: bytes, suffix: str, job: ClusterJob
) -> tuple[TaskResult, bytes]:
    """One photo's bytes in, the encoded result's bytes out."""
    from colorize_backend.tools.images import decode_photo, write_photo

    started = time.perf_counter()
    address, provider = "", ""
    try:
        photo, address, provider = _colorized(decode_photo(Path(source).name, data), job)
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / f"result{suffix}"
            write_photo(result, photo, job.write)
            encoded = result.read_bytes()
    except (ColorizeError, OSError, ValueError, MemoryError) as exc:
        message = exc.message if isinstance(exc, ColorizeError) else str(exc)
        return TaskResult(source, address, provider, time.perf_counter() - started, message), b""
    return TaskResult(source, address, provider, time.perf_counter() - started), encoded


def local_workers(address: str) -> int | None:
    """N of `local:N`, None for another address."""
    if not address.startswith("local:"):
        return None
    try:
        workers = int(address.split(":", 1)[1])
    except ValueError:
        workers = 0
    if workers < 1:
        raise ColorizeError(ErrorCode.BAD_REQUEST, f"--cluster {address}: use local:N, N ≥ 1")
    return workers


def cores_each(workers: int) -> int:
    """This machine's cores shared among `workers` local worker processes."""
    return max(1, (os.cpu_count() or 1) // workers)


def quiet_dask() -> None:
    """Dask's own progress lines (cluster started, worker joined) only with -v: the summary
    says what matters; local worker processes read the setting from the environment."""
    if logging.getLogger().level > logging.INFO:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
        logging.getLogger("distributed").setLevel(logging.WARNING)


@contextlib.contextmanager
def connected(address: str) -> Iterator[Any]:
    """A Dask client for `tcp://HOST:PORT` (a running scheduler) or `local:N` (N worker
    processes started here sharing this machine's cores as task threads, so that a worker
    decodes and encodes one photo while another is in its network, closed afterwards); a
    clear error within seconds when the scheduler cannot be reached."""
    quiet_dask()
    workers = local_workers(address)
    if workers is not None:
        with (
            # Dask's worker samples every thread's stack every 10 ms for its dashboard
            # profile: CPU the photos need (a local worker takes this process's settings).
            dask.config.set({"distributed.worker.profile.enabled": False}),
            LocalCluster(
                n_workers=workers,
                threads_per_worker=cores_each(workers),
                processes=True,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ColorizeError(
            ErrorCode.UNREACHABLE,
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
            f"({exc}): is `dask scheduler` running there, and the address right?",
        ) from None
    with client:
        yield client


def workers_see(client: Any, tasks: list[Task]) -> bool:
    """Whether every worker sees the first photo and can write where its result goes."""
    if not tasks:
        return True
    source, target_dir = str(tasks[0].source.resolve()), str(tasks[0].target.parent.resolve())

    def sees() -> bool:
        folder = Path(target_dir)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return os.path.isfile(source) and os.access(folder, os.W_OK)

    answers = client.run(sees)
    return bool(answers) and all(answers.values())


def photos_per_task(photos: int, threads: int) -> int:
    """How many photos one Dask task carries: Dask's own work (about 7.5 ms of CPU per task
    here, docs/cluster.md) is shared among them, while every worker thread still gets at
    least TASKS_PER_THREAD tasks."""
    return max(1, min(MAX_PHOTOS_PER_TASK, photos // (TASKS_PER_THREAD * threads)))


def _the_job(job: ClusterJob) -> ClusterJob:
    """The job as a task's result rather than scattered data: the scheduler keeps the task,
    so a job lost with its worker is made again. (Scattered data is lost for good when the
    workers holding it die, and Dask's memory manager drops broadcast copies down to one.)"""
    return job


def submissions(
    client: Any, tasks: list[Task], job: ClusterJob, by_path: bool, per_task: int
) -> Iterator[tuple[list[Task], Any]]:
    """One future per group of `per_task` photos, made only when asked for (the caller
    bounds how many exist, and so how many photos' bytes are read ahead)."""
    shared_job = client.submit(_the_job, job, pure=False)
    for first in range(0, len(tasks), per_task):
        group = tasks[first : first + per_task]
        if by_path:
            pairs = [(str(t.source.resolve()), str(t.target.resolve())) for t in group]
            yield group, client.submit(colorize_files, pairs, shared_job, pure=False)
        else:
            photos = [(str(t.source), t.source.read_bytes(), t.target.suffix) for t in group]
            yield group, client.submit(colorize_many_bytes, photos, shared_job, pure=False)


class WorkerView:
    """The scheduler's list of workers, asked at most every `every_s` seconds: asking after
    every finished task is a round trip carrying every worker's details, a load on the
    scheduler that grows with the cluster."""

    def __init__(self, client: Any, every_s: float = 1.0):
        self.client = client
        self.every_s = every_s
        self.asked = -math.inf
        self.known: dict[str, dict] = {}

    def workers(self, fresh: bool = False) -> dict[str, dict]:
        if fresh or time.monotonic() - self.asked > self.every_s:
            self.known = self.client.scheduler_info()["workers"]
            self.asked = time.monotonic()
        return self.known

    def threads(self) -> int:
        return max(1, sum(w.get("nthreads", 1) for w in self.workers().values()))


def run(
    tasks: list[Task], address: str, job: ClusterJob, engine: EngineSettings, summary: Summary,
    transfer: str = "auto",
) -> ClusterReport:  # fmt: skip
    """Colorize every task on the cluster; failures are counted in summary, not raised."""
    from tqdm import tqdm

    report = ClusterReport()
    started = time.perf_counter()
    workers = local_workers(address)
    if workers is not None and engine.threads is None:  # N local networks share the cores
        engine = replace(engine, threads=cores_each(workers))
    with connected(address) as client:
        client.register_plugin(ColorizerPlugin(engine), name=PLUGIN_NAME)
        by_path = transfer == "paths" or (transfer == "auto" and workers_see(client, tasks))
        report.transfer = "paths" if by_path else "bytes"
        view = WorkerView(client)
        report.workers_seen |= set(view.workers())
        per_task = photos_per_task(len(tasks), view.threads())
        pending = submissions(client, tasks, job, by_path, per_task)
        bar = tqdm(total=len(tasks), unit="photo", file=sys.stderr, disable=not tasks)
        running: as_completed = as_completed()
        owners: dict[Any, list[Task]] = {}
        _top_up(view, pending, running, owners)
        with bar:
            for future in running:
                group = owners.pop(future)
                _finish(future, group, summary, report)
                bar.update(len(group))
                report.workers_seen |= set(view.workers())
                _top_up(view, pending, running, owners)
        report.workers_lost = report.workers_seen - set(view.workers(fresh=True))
    summary.seconds = time.perf_counter() - started
    return report


def _top_up(view: WorkerView, pending: Iterator, running: Any, owners: dict) -> None:
    """Submit tasks until IN_FLIGHT_PER_THREAD per worker thread are in flight
    (backpressure: every thread has its next photos waiting, and no more)."""
    while len(owners) < IN_FLIGHT_PER_THREAD * view.threads():
        try:
            group, future = next(pending)
        except StopIteration:
            return
        owners[future] = group
        running.add(future)


def _finish(future: Any, group: list[Task], summary: Summary, report: ClusterReport) -> None:
    """Count one finished task's photos; in bytes mode write their results here."""
    try:
        outcomes = future.result()
    except Exception as exc:  # the task itself failed (e.g. a worker died three times)
        for task in group:
            summary.failed.append(f"{task.source}: {type(exc).__name__}: {exc}")
        return
    for task, outcome in zip(group, outcomes, strict=True):
        _finish_photo(task, outcome, summary, report)


def _finish_photo(task: Task, outcome: Any, summary: Summary, report: ClusterReport) -> None:
    """Count one photo; in bytes mode write its result here, atomically."""
    result, encoded = outcome if isinstance(outcome, tuple) else (outcome, None)
    if result.error:
        summary.failed.append(f"{task.source}: {result.error}")
        return
    if encoded is not None:
        task.target.parent.mkdir(parents=True, exist_ok=True)
        with replaced_on_success(task.target) as partial:
            partial.write_bytes(encoded)
    summary.done += 1
    report.photos_per_worker[result.worker] += 1
    report.busy_seconds[result.worker] += result.seconds
    report.providers[result.worker] = result.provider


def describe(report: ClusterReport, summary: Summary) -> list[str]:
    """The cluster part of the summary, as lines."""
    lines = [f"cluster: {len(report.workers_seen)} worker(s), files sent as {report.transfer}"]
    for worker, count in sorted(report.photos_per_worker.items()):
        rate = count / summary.seconds if summary.seconds else 0.0
        inside = 1000 * report.busy_seconds[worker] / count
        lines.append(
            f"  {worker}: {count} photo(s), {rate:.1f}/s, {inside:.0f} ms per photo in its "
            f"tasks, {report.providers[worker]}"
        )
    for worker in sorted(report.workers_lost):
        lines.append(f"  {worker}: LOST during the run (its photos were done elsewhere)")
    return lines
