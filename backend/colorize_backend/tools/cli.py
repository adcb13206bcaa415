"""colorize-backend: serve the daemon, colorize files, list models, diagnose, benchmark."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorize_backend import __version__
from colorize_backend.core.contract import ReferenceMode
from colorize_backend.core.errors import ColorizeError, ErrorCode
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest, ModelEntry, user_model_files
from colorize_backend.core.options import (
    DETAIL_SIZE_RANGE,
    SATURATION_RANGE,
    STRENGTH_RANGE,
    ColorizeOptions,
)
from colorize_backend.daemon.lifecycle import user_models_dir
from colorize_backend.daemon.protocol import DEFAULT_ENDPOINT, DEFAULT_MAX_PIXELS, Limits

if TYPE_CHECKING:
    from colorize_backend.core.pipeline import Colorizer

LOG = logging.getLogger("colorize")
FEW_PHOTOS = 16  # below this many photos, the CLI does not load OpenVINO
FEW_PHOTOS_FOR_KERNELS = 2  # up to this many, the numpy path does it all (no numba import)


def make_colorizer(
    args: argparse.Namespace,
    daemon_model_dirs: list[Path] | None = None,
    photos: int | None = None,
) -> Colorizer:
    """The colorizer a command uses; a daemon's finds models in daemon_model_dirs only, the
    command line's the user's own by name and any file by path. For a few photos the CPU
    runtime is onnxruntime (importing OpenVINO alone costs more than it saves on them)."""
    from colorize_backend.core.engine import Engine  # the runtimes: only where they run
    from colorize_backend.core.pipeline import Colorizer

    manifest = Manifest.load(Path(args.manifest))
    providers = ["CPUExecutionProvider"] if getattr(args, "cpu", False) else None
    openvino = {"onnxruntime": "off", "openvino": "on"}.get(getattr(args, "runtime", ""), "auto")
    if openvino == "auto" and photos is not None and photos < FEW_PHOTOS:
        openvino = "off"
    engine = Engine(
        providers,
        threads=getattr(args, "threads", None),
        openvino=openvino,
        upgrade_in_background=daemon_model_dirs is not None,  # a daemon: the first photo at once
    )
    if daemon_model_dirs is not None:
        return Colorizer(manifest, engine, model_dirs=daemon_model_dirs, any_model_path=False)
    return Colorizer(manifest, engine, model_dirs=[user_models_dir()])


def cmd_serve(args: argparse.Namespace) -> int:
    from colorize_backend.daemon.serve import model_dirs, serve

    return serve(args, make_colorizer(args, model_dirs(args)))


def cmd_stop(args: argparse.Namespace) -> int:
    from colorize_backend.daemon.lifecycle import stop_daemon

    record = stop_daemon(args.endpoint)
    if record is None:
        print(f"no daemon is running at {args.endpoint}")
        return 1
    print(f"stopped the daemon at {args.endpoint} (pid {record.pid}, {record.install})")
    return 0


def cmd_colorize(args: argparse.Namespace) -> int:
    from colorize_backend.core import compiled
    from colorize_backend.core.reference import Reference
    from colorize_backend.tools import batch
    from colorize_backend.tools.files import expand_inputs
    from colorize_backend.tools.film import is_video
    from colorize_backend.tools.images import WriteOptions, read_photo

    if args.sequence or (len(args.inputs) == 1 and is_video(Path(args.inputs[0]))):
        return colorize_film(args)
    inputs = expand_inputs(args.inputs)
    tasks = batch.plan(args.inputs, inputs, Path(args.output), f".{args.format}")
    summary = batch.Summary()
    tasks = batch.keep_safe(tasks, args.overwrite, summary)
    reference = None
    if args.reference or args.hints:
        reference = read_photo(Path(args.hints or args.reference)).pixels
    write = WriteOptions(png_compression=args.png_compression, quality=args.quality)
    if args.cluster:
        return colorize_on_cluster(args, tasks, summary, write, reference, len(inputs))
    if len(tasks) > FEW_PHOTOS_FOR_KERNELS:  # worth the compiler: load it while photos flow
        compiled.load_in_background()  # the first photos take the numpy path meanwhile
    else:
        compiled.not_needed()
    colorizer = make_colorizer(args, photos=len(tasks))
    steering = Reference(reference) if reference is not None else None
    colorize = batch.colorize_photos(colorizer, colorize_options(args), steering)
    batch.run(tasks, colorize, write, summary)
    return batch.report(summary, len(inputs))


def colorize_film(args: argparse.Namespace) -> int:
    """A video file, or (--sequence) a folder of numbered frames, as one film."""
    from colorize_backend.tools import film
    from colorize_backend.tools.files import expand_inputs
    from colorize_backend.tools.images import WriteOptions

    settings = film.FilmSettings(
        temporal=not args.per_frame, key_frames=key_frames(args.key_frame), codec=args.codec,
        crf=args.crf,
    )  # fmt: skip
    colorizer = make_colorizer(args)
    movie = film.FilmColorizer(colorizer, colorize_options(args), settings)
    source, target = Path(args.inputs[0]), Path(args.output)
    if not args.sequence:
        summary = film.colorize_video(movie, source, target, args.overwrite)
    else:
        write = WriteOptions(png_compression=args.png_compression, quality=args.quality)
        frames = expand_inputs(args.inputs)
        summary = film.colorize_frames(movie, frames, target, write, args.overwrite)
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    print(
        f"colorized {summary.frames} frame(s) in {summary.seconds:.1f} s ({rate:.1f}/s)"
        + (f"; {summary.skipped} already done" if summary.skipped else ""),
        file=sys.stderr,
    )
    return 0


def key_frames(specs: list[str]) -> dict[int, Path]:
    """--key-frame N=coloured.png, repeated."""
    found = {}
    for spec in specs:
        index, _, path = spec.partition("=")
        if not index.isdigit() or not path:
            raise ColorizeError(
                ErrorCode.BAD_REQUEST, f"--key-frame {spec!r}: write N=coloured.png (N from 0)"
            )
        found[int(index)] = Path(path)
    return found


def colorize_on_cluster(args, tasks, summary, write, reference, total: int) -> int:
    """The batch on a Dask cluster (tools.cluster); the same summary, and who did what."""
    from colorize_backend.tools import batch, cluster

    workers = cluster.local_workers(args.cluster)
    threads = args.threads or (max(1, (os.cpu_count() or 1) // workers) if workers else None)
    manifest = None if Path(args.manifest) == MANIFEST_PATH else str(Path(args.manifest).resolve())
    engine = cluster.EngineSettings(args.cpu, threads, args.runtime, manifest)
    job = cluster.ClusterJob(colorize_options(args), write, reference)
    report = cluster.run(tasks, args.cluster, job, engine, summary, args.transfer)
    status = batch.report(summary, total)
    for line in cluster.describe(report, summary):
        print(line, file=sys.stderr)
    return status


def colorize_options(args: argparse.Namespace) -> ColorizeOptions:
    """The command line's settings as the pipeline takes them."""
    mode = ReferenceMode.HINTS if args.hints else ReferenceMode(args.reference_mode)
    return ColorizeOptions(
        model=args.model,
        strength=args.strength,
        saturation=args.saturation,
        detail_size=args.detail_size,
        reference_mode=mode,
    )


def cmd_models(args: argparse.Namespace) -> int:
    if args.verify:  # every model loaded: its kind, where it runs here, its checksum
        colorizer = make_colorizer(args)
        entries, problems = colorizer.manifest.catalogue(colorizer.model_dirs)
        for entry in entries:
            colorizer.manifest.check(entry)
        rows = [model_row(colorizer, entry) for entry in entries]
    else:  # the manifest and the user's folder as they are: nothing loaded, nothing compiled
        manifest = Manifest.load(Path(args.manifest))
        rows = [dict(manifest.describe(e), runtime=None) for e in manifest.entries.values()]
        rows += [unchecked_row(path) for path in user_model_files(user_models_dir())]
        problems = []
    for problem in problems:
        LOG.warning("%s", problem)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [(" NAME", "KIND", "INPUT", "SIZE", "RUNTIME", "DESCRIPTION")] + [
        (
            ("*" if r["default"] else " ") + str(r["name"]),
            str(r["kind"]),
            f"{r['input_size']}px" if r["input_size"] else "?",
            f"{r['size_mb']} MB" if r["size_mb"] is not None else "missing",
            str(r["runtime"] or "not yet checked"),
            str(r.get("path") or r["description"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)), row[5])
    return 0


def unchecked_row(path: Path) -> dict[str, Any]:
    """A user's model file, not yet loaded (`models --verify` tells its kind)."""
    size = round(path.stat().st_size / 1e6, 1)
    return {"name": path.stem, "default": False, "kind": "?", "input_size": None,
            "size_mb": size, "description": "your own model", "path": str(path),
            "runtime": None}  # fmt: skip


def model_row(colorizer: Colorizer, entry: ModelEntry) -> dict[str, Any]:
    """What `models` tells about one model; `runtime` is where it runs here."""
    row = colorizer.manifest.describe(entry)
    row["runtime"] = colorizer.engine.provider_of(entry) if entry.path.exists() else None
    return row


def cmd_doctor(args: argparse.Namespace) -> int:
    from colorize_backend.tools.doctor import diagnose

    problems = diagnose(Path(args.manifest), args.endpoint, args.json)
    return 1 if problems else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from colorize_backend.tools.bench import run_bench, write_report

    write_report(run_bench(make_colorizer(args), args), args.output, args.json)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    import zmq.auth

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("server", "client"):
        public, secret = zmq.auth.create_certificates(str(folder), name)
        Path(secret).chmod(0o600)
        print(f"{name}: public {public}, secret {secret}")
    print(
        "Serve with --curve-secret-key",
        folder / "server.key_secret",
        "and put the server's public key and the client certificate in the plug-in config.",
    )
    return 0


def engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu", action="store_true", help="never use the GPU")
    p.add_argument("--threads", type=number_in(1, 256, int), help="threads the network runs on")
    p.add_argument(
        "--runtime",
        choices=("auto", "onnxruntime", "openvino"),
        default="auto",
        help="on the CPU: OpenVINO where it is faster and matches onnxruntime (auto)",
    )


def add_serve_commands(sub) -> None:
    serve = sub.add_parser("serve", help="run the ZeroMQ daemon")
    serve.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--queue-size", type=int, default=Limits.queue_size)
    serve.add_argument(
        "--max-per-client",
        type=int,
        default=Limits.max_queued_per_client,
        help="queued jobs per client",
    )
    serve.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    serve.add_argument(
        "--idle-timeout", type=float, default=0, help="exit after so many minutes idle (0: never)"
    )
    serve.add_argument(
        "--stage-timeout",
        type=float,
        default=300,
        help="seconds a request may spend in one stage; past it the daemon is stuck: it "
        "answers every client, logs every thread's stack and exits with status 3",
    )
    serve.add_argument("--log-file", type=Path, help="log here (rotated) instead of stderr")
    serve.add_argument(
        "--max-connections", type=int, default=256, help="idle connections beyond are closed"
    )
    serve.add_argument(
        "--memory-budget-mb",
        type=int,
        default=1024,
        help="memory held outside any job (unfinished messages) before stalled peers are cut",
    )
    serve.add_argument(
        "--models-dir",
        type=Path,
        action="append",
        default=[],
        help="a folder from which clients may name .onnx models by path (repeatable)",
    )
    serve.add_argument(
        "--curve-secret-key",
        type=Path,
        help="server certificate (from `keys`); required off loopback",
    )
    engine_options(serve)
    serve.set_defaults(func=cmd_serve)

    stop = sub.add_parser("stop", help="stop the daemon serving an endpoint")
    stop.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    stop.set_defaults(func=cmd_stop)

    keys = sub.add_parser("keys", help="create CURVE certificates for serving other machines")
    keys.add_argument("folder")
    keys.set_defaults(func=cmd_keys)


def number_in(low: float, high: float, kind: type = float):
    """An argparse type: a number of `kind` within [low, high], or a clear message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value

    return parse


def add_colorize_command(sub) -> None:
    colorize = sub.add_parser("colorize", help="colorize files, folders or globs")
    colorize.add_argument("inputs", nargs="+")
    colorize.add_argument(
        "-o", "--output", required=True, help="a file for one photo, else a folder"
    )
    colorize.add_argument("--model", help="model name or path to an .onnx file")
    colorize.add_argument("--reference", help="exemplar colour photo (or hint image)")
    colorize.add_argument(
        "--reference-mode", choices=[m.value for m in ReferenceMode], default="detect"
    )
    colorize.add_argument("--hints", help="transparent PNG with painted colour hints")
    colorize.add_argument(
        "--strength",
        type=number_in(*STRENGTH_RANGE),
        default=1.0,
        help="how far the reference or hints steer the colour, 0..1",
    )
    colorize.add_argument(
        "--saturation",
        type=number_in(*SATURATION_RANGE),
        default=1.0,
        help="colour amount, 0..2 (0: grey, 1: as predicted)",
    )
    colorize.add_argument(
        "--detail-size",
        type=number_in(*DETAIL_SIZE_RANGE, int),
        help="short side the network works at (default: the model's own)",
    )
    colorize.add_argument(
        "--format",
        choices=("png", "jpg", "tif", "webp"),
        default="png",
        help="file type of the results in an output folder",
    )
    colorize.add_argument(
        "--png-compression", type=number_in(0, 9, int), default=1, help="0..9 (1: fast)"
    )
    colorize.add_argument("--quality", type=number_in(1, 100, int), default=92, help="JPEG/WebP")
    colorize.add_argument(
        "--overwrite", action="store_true", help="replace existing results (never an input)"
    )
    add_film_and_cluster_options(colorize)
    engine_options(colorize)
    colorize.set_defaults(func=cmd_colorize)


def add_film_and_cluster_options(colorize: argparse.ArgumentParser) -> None:
    film = colorize.add_argument_group("films (a video file, or --sequence for numbered frames)")
    film.add_argument("--sequence", action="store_true", help="the inputs are frames of a film")
    film.add_argument(
        "--key-frame", action="append", default=[], metavar="N=COLOURED",
        help="frame N as a person coloured it: it keeps that colour and its shot follows it",
    )  # fmt: skip
    film.add_argument(
        "--per-frame", action="store_true", help="each frame on its own (no colour carried)"
    )
    film.add_argument("--codec", help="video codec of the result (default H.264 where present)")
    film.add_argument("--crf", type=number_in(0, 51, int), default=18, help="H.264 quality")
    colorize.add_argument(
        "--cluster",
        help="run on a Dask cluster: tcp://HOST:8786 (a `dask scheduler`), or local:N worker "
        "processes here (needs the `dask` extra)",
    )
    colorize.add_argument(
        "--transfer",
        choices=("auto", "paths", "bytes"),
        default="auto",
        help="with --cluster: workers read and write the files themselves (paths, when they "
        "all see them) or the photos travel as bytes; auto checks",
    )


def add_inspection_commands(sub) -> None:
    models = sub.add_parser("models", help="list installed models")
    models.add_argument("--json", action="store_true")
    models.add_argument(
        "--verify",
        action="store_true",
        help="load every model: its kind, checksum and the runtime it gets here",
    )
    engine_options(models)
    models.set_defaults(func=cmd_models)

    doctor = sub.add_parser("doctor", help="report what is installed and what is wrong")
    doctor.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    doctor.set_defaults(func=cmd_doctor)

    bench = sub.add_parser("bench", help="time the network, the pipeline and the daemon")
    bench.add_argument("--model")
    bench.add_argument("--repeat", type=int, default=7)
    bench.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 12.0, 48.0])
    bench.add_argument("--batch", type=int, default=60, help="1-MP photos for the CLI (0: skip)")
    bench.add_argument("--output", help="also write the JSON report here")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument(
        "--cold", type=int, default=3, help="rounds of the cold-start rows (0: skip them)"
    )
    engine_options(bench)
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorize-backend", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--manifest", default=str(MANIFEST_PATH), help="model manifest to use")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_commands(sub)
    add_colorize_command(sub)
    add_inspection_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.command != "serve"  # only the daemon's log is of interest as it runs
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (ColorizeError, FileNotFoundError) as exc:
        LOG.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
