"""Training photos packed into one small file, to travel to a GPU machine (at most 64 MiB
travels with a run there, code and models included).

python -m training.pack pack ROOT [ROOT ...] --out photos.npz [--side 160] [--megabytes 12]
        [--part 0]
python -m training.pack unpack photos.npz FOLDER

`pack` re-encodes a spread of the photos (every subject group represented, the same
shares as training draws them) as JPEGs of `--side` px on the short side until
`--megabytes` are reached; `--part K` takes the K-th such spread, so several packs carry
different photos. `unpack` writes them back as FOLDER/<source>/<n>.jpg, a training root.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import is_grey, source_folders
from training.sources import sampling_probabilities


def encoded(path: Path, side: int, quality: int) -> bytes | None:
    """The photo at `side` px on its short side as JPEG bytes; None for a grey photo."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
        scale = side / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)),
                                 Image.Resampling.BICUBIC)  # fmt: skip
        if is_grey(np.asarray(image)):
            return None
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()


def pack(roots: list[Path], out: Path, side: int, quality: int, budget: int, part: int) -> int:
    """Write the pack; returns how many photos it holds."""
    files, sources, names = [], [], []
    for root in roots:
        for name, paths in source_folders(root).items():
            names.append(name)
            files += paths
            sources += [len(names) - 1] * len(paths)
    probabilities = sampling_probabilities(np.array(sources), names)
    order = np.random.default_rng(1000 + part).choice(
        len(files), size=len(files), replace=False, p=probabilities
    )
    blobs, kept, total = [], [], 0
    for index in order:
        data = encoded(files[index], side, quality)
        if data is None:
            continue
        if total + len(data) > budget:
            break
        blobs.append(data)
        kept.append(sources[index])
        total += len(data)
    lengths = np.array([len(b) for b in blobs], np.int64)
    np.savez(
        out,
        data=np.frombuffer(b"".join(blobs), np.uint8),
        lengths=lengths,
        sources=np.array(kept, np.int32),
        names=np.array(names),
    )
    return len(blobs)


def unpack(packed: Path, folder: Path) -> int:
    """Write a pack's photos as FOLDER/<source>/<n>.jpg; returns how many."""
    with np.load(packed) as arrays:
        data, lengths = arrays["data"].tobytes(), arrays["lengths"]
        sources, names = arrays["sources"], [str(n) for n in arrays["names"]]
    ends = np.cumsum(lengths)
    for n, (end, length, source) in enumerate(zip(ends, lengths, sources)):
        target = folder / names[source] / f"{n:06d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[end - length : end])
    return len(lengths)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    packing = sub.add_parser("pack")
    packing.add_argument("roots", type=Path, nargs="+")
    packing.add_argument("--out", type=Path, required=True)
    packing.add_argument("--side", type=int, default=160)
    packing.add_argument("--quality", type=int, default=85)
    packing.add_argument("--megabytes", type=float, default=12.0)
    packing.add_argument("--part", type=int, default=0)
    unpacking = sub.add_parser("unpack")
    unpacking.add_argument("pack", type=Path)
    unpacking.add_argument("folder", type=Path)
    args = p.parse_args(argv)
    if args.command == "pack":
        budget = int(args.megabytes * 1e6)
        count = pack(args.roots, args.out, args.side, args.quality, budget, args.part)
        print(f"packed {count} photos into {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    else:
        print(f"unpacked {unpack(args.pack, args.folder)} photos into {args.folder}")


if __name__ == "__main__":
    main()
