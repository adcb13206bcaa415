"""`colorize-backend serve`: the daemon as a process — its config, log, pid file and signals."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
from pathlib import Path

import zmq

from colorize_backend.core.errors import ColorizeError
from colorize_backend.core.pipeline import Colorizer
from colorize_backend.daemon.front import Daemon, DaemonConfig
from colorize_backend.daemon.lifecycle import DaemonRecord, PidFile, user_models_dir
from colorize_backend.daemon.protocol import Limits
from colorize_backend.daemon.stuck import EXIT_STUCK

LOG = logging.getLogger("colorize")
LOG_BYTES, LOG_BACKUPS = 5_000_000, 3


def log_to_file(path: Path, verbose: bool) -> None:
    """Send all logging to a rotated file (at most LOG_BACKUPS + 1 files of LOG_BYTES)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def daemon_config(args: argparse.Namespace) -> DaemonConfig:
    limits = Limits(
        max_pixels=args.max_pixels,
        queue_size=args.queue_size,
        max_queued_per_client=args.max_per_client,
    )
    return DaemonConfig(
        endpoint=args.endpoint,
        workers=args.workers,
        limits=limits,
        curve_secret_key=args.curve_secret_key,
        idle_timeout_s=args.idle_timeout * 60,
        stage_timeout_s=args.stage_timeout,
        max_connections=args.max_connections,
        memory_budget=args.memory_budget_mb * 1_000_000,
    )


def model_dirs(args: argparse.Namespace) -> list[Path]:
    """The folders a daemon finds models in, beyond its manifest: the user's own models folder
    and any --models-dir (a CLI user may name any file; a client only these)."""
    return [user_models_dir(), *args.models_dir]


def serve(args: argparse.Namespace, colorizer: Colorizer) -> int:
    if args.log_file:
        log_to_file(args.log_file, args.verbose)
    try:
        daemon = Daemon(colorizer, daemon_config(args))
        pid_file = PidFile(
            DaemonRecord(
                daemon.identity.pid,
                args.endpoint,
                daemon.identity.install,
                daemon.identity.instance,
                time.time(),
            )
        )
    except (ValueError, ColorizeError) as exc:
        LOG.error("%s", exc)
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: daemon.request_stop())
    # Threads hand the interpreter to each other on every message; the 5 ms default would
    # add up to several milliseconds to a request that takes 20.
    sys.setswitchinterval(0.0005)
    try:
        daemon.serve_forever()
    except zmq.ZMQError as exc:
        LOG.error("cannot serve on %s: %s (is another program using it?)", args.endpoint, exc)
        return 1
    except KeyboardInterrupt:
        LOG.info("stopped")
    finally:
        pid_file.release()
    if daemon.gave_up:
        exit_now(daemon)
    LOG.info("stopped serving %s", args.endpoint)
    return 0


def exit_now(daemon: Daemon) -> None:
    """End a daemon whose worker is stuck: the replies telling clients to retry go out
    (within a bound), then the process ends without running the runtimes' teardown, which
    could wait for the stuck thread forever."""
    flush = threading.Thread(target=daemon.context.destroy, kwargs={"linger": 2000}, daemon=True)
    flush.start()
    flush.join(5)
    LOG.error("stopped serving %s: a request was stuck (exit status %d)", daemon.config.endpoint,
              EXIT_STUCK)  # fmt: skip
    logging.shutdown()
    os._exit(EXIT_STUCK)
