"""`colorize-backend colorize`: many photos, both cores busy, nothing lost or overwritten.

Photos are decoded ahead on one thread and encoded behind on two, while the pipeline
colorizes the current one, so decoding, colorizing and encoding overlap. Where each
result goes is decided before anything runs: `-o FILE` for one photo, `-o FOLDER`
otherwise (the inputs' layout kept under it). No input is ever overwritten, an existing
result only with --overwrite. A photo that fails is reported and the batch goes on; the
summary says what failed, and the exit status is non-zero if anything did.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.pipeline import Colorizer, Result
from colorize_backend.core.reference import Reference
from colorize_backend.tools.files import IMAGE_SUFFIXES
from colorize_backend.tools.images import (
    OUTPUT_FORMATS,
    Photo,
    WriteOptions,
    read_photo,
    write_photo,
)
from colorize_backend.tools.images import refused as refused_error

LOG = logging.getLogger("colorize")
READ_AHEAD = 2
WRITES_IN_FLIGHT = 3


@dataclass(frozen=True)
class Task:
    source: Path
    target: Path


@dataclass
class Summary:
    done: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def is_file_name(output: Path) -> bool:
    return output.suffix.lower() in IMAGE_SUFFIXES


def plan(patterns: list[str], inputs: list[Path], output: Path, suffix: str) -> list[Task]:
    """Where each result goes: OUTPUT itself for one photo named as a file; else a file in the
    OUTPUT folder, keeping the layout below a folder that was given."""
    single = len(inputs) == 1 and len(patterns) == 1 and Path(patterns[0]).is_file()
    if is_file_name(output):
        if not single:
            raise refused_error(
                f"-o {output} names one file but {len(inputs)} photos were given; "
                "give a folder instead"
            )
        if output.suffix.lower() not in OUTPUT_FORMATS:
            raise refused_error(
                f"cannot write {output.suffix} files: use .png, .jpg, .tif or .webp"
            )
        return [Task(inputs[0], output)]
    root = Path(patterns[0]) if len(patterns) == 1 and Path(patterns[0]).is_dir() else None
    tasks = []
    for source in inputs:
        relative = source.relative_to(root) if root else Path(source.name)
        tasks.append(Task(source, output / relative.with_suffix(suffix)))
    return tasks


def keep_safe(tasks: list[Task], overwrite: bool, summary: Summary) -> list[Task]:
    """Drop the tasks that would overwrite an input, or an existing file without --overwrite,
    or that two inputs would both write."""
    inputs = {t.source.resolve() for t in tasks}
    claimed: dict[Path, Path] = {}
    safe = []
    for task in tasks:
        target = task.target.resolve()
        if target in inputs:
            summary.failed.append(f"{task.source}: its result would overwrite an input ({target})")
        elif target in claimed:
            summary.failed.append(
                f"{task.source}: its result {target} is also {claimed[target]}'s; rename one"
            )
        elif target.exists() and not overwrite:
            summary.skipped.append(f"{task.target} exists (--overwrite replaces it)")
        else:
            claimed[target] = task.source
            safe.append(task)
    return safe


def _decoded(tasks: list[Task], pool: ThreadPoolExecutor) -> Iterator[tuple[Task, Future]]:
    """The tasks with their photos being decoded READ_AHEAD ahead."""
    pending: deque[tuple[Task, Future]] = deque()
    for task in tasks:
        pending.append((task, pool.submit(read_photo, task.source)))
        if len(pending) > READ_AHEAD:
            yield pending.popleft()
    yield from pending


def run(
    tasks: list[Task],
    colorize: Callable[[Photo], Result],
    options: WriteOptions,
    summary: Summary,
) -> Summary:
    """Decode, colorize and encode every task, overlapped; failures are counted, not raised."""
    started = time.perf_counter()
    writes: deque[tuple[Task, Future]] = deque()
    bar = tqdm(total=len(tasks), unit="photo", file=sys.stderr, disable=not tasks)
    with (
        logging_redirect_tqdm(),
        bar,
        ThreadPoolExecutor(1) as readers,
        ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as writers,
    ):
        for task, decoded in _decoded(tasks, readers):
            try:
                photo = decoded.result()
                result = colorize(photo)
                photo.pixels = result.pixels
                writes.append((task, writers.submit(write_photo, task.target, photo, options)))
                LOG.debug("%s -> %s (%s)", task.source, task.target, result.model)
            except (ColorizeError, OSError, ValueError, MemoryError) as exc:
                _fail(summary, task, exc, bar)
            while len(writes) >= WRITES_IN_FLIGHT or (writes and writes[0][1].done()):
                _finish_write(summary, *writes.popleft(), bar)
        while writes:
            _finish_write(summary, *writes.popleft(), bar)
    summary.seconds = time.perf_counter() - started
    return summary


def _finish_write(summary: Summary, task: Task, write: Future, bar) -> None:
    try:
        write.result()
        summary.done += 1
        bar.update(1)
    except (ColorizeError, OSError, ValueError, MemoryError) as exc:
        _fail(summary, task, exc, bar)


def _fail(summary: Summary, task: Task, exc: Exception, bar) -> None:
    if isinstance(exc, MemoryError):
        message = "it does not fit in the memory this machine has free; scale it down"
    else:
        message = exc.message if isinstance(exc, ColorizeError) else str(exc)
    summary.failed.append(f"{task.source}: {message}")
    LOG.error("%s: %s", task.source, message)
    bar.update(1)


def colorize_photos(
    colorizer: Colorizer, options: ColorizeOptions, reference: Reference | None
) -> Callable[[Photo], Result]:
    """The per-photo call: the same options and reference for every photo."""

    def colorize(photo: Photo) -> Result:
        return colorizer.colorize(photo.pixels, options, reference)

    return colorize


def report(summary: Summary, total: int) -> int:
    """Print the summary; the exit status (1 when anything failed)."""
    rate = summary.done / summary.seconds if summary.seconds else 0.0
    print(
        f"colorized {summary.done} of {total} photo(s) in {summary.seconds:.1f} s ({rate:.1f}/s)",
        file=sys.stderr,
    )
    for line in summary.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    for line in summary.failed:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if summary.failed else 0
