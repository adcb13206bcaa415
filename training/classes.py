"""What each training photo shows, as a class label: pairs of *different* photos of the same
class teach the exemplar network to match by content.

The extra photos are named by `../shared/datasets/extra/build.py` after a hash of their path
in the source repository (and their ImageNet WordNet id, where the source gives one), so
their classes are read back from the repositories' own layout: a class folder (Caltech-101,
PACS, popular animals), a room in the file name (houses), a label table (clothing). In the
shared datasets a folder holds one kind of photo where its name says so (faces, pets,
flowers, streets, work sites). Salient-object and mixed-scene photos have no class.

python -m training.classes MIRRORS OUT.json
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

WNID = re.compile(r"^(n\d{8})_")  # build.py names ImageNet-derived photos "nXXXXXXXX_hash"
FOLDER_CLASSES = {
    "lfw": "face",
    "utkface": "face",
    "people": "people",
    "pets": "pets",
    "flowers": "flower",
    "streets": "street",
    "worksites": "worksite",
}


def _parent(path: str) -> str | None:
    return path.split("/")[-2].lower() if "/" in path else None


def _first(path: str) -> str | None:
    return path.split("/")[0].lower() if "/" in path else None


def _room(path: str) -> str | None:
    match = re.search(r"_([a-z]+)\.jpe?g$", path.lower())
    return match.group(1) if match else None


# source name as build.py writes it → (mirror folder, how a path names its class)
RULES: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "animals": ("InputBlackBoxOutput+popular-animals-dataset", _first),
    "pacs": ("MachineLearning2020+Homework3-PACS", _parent),
    "caltech101": ("TomislavZupanovic+Caltech101", _parent),
    "houses": ("emanhamed+Houses-dataset", _room),
}
CLOTHING = "alexeygrigorev+clothing-dataset"


def _git_dir(mirrors: Path, folder: str) -> Path:
    root = mirrors / folder / "repo"
    return root / ".git" if (root / ".git").is_dir() else root


def _paths(git_dir: Path) -> Iterator[str]:
    listed = subprocess.run(
        ["git", "-C", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    yield from listed.splitlines()


def _stem(path: str) -> str:
    """The name build.py gives the photo from `path` (without its WordNet prefix)."""
    return hashlib.sha1(path.encode()).hexdigest()[:16]


def _clothing(mirrors: Path) -> dict[str, str]:
    git_dir = _git_dir(mirrors, CLOTHING)
    table = subprocess.run(
        ["git", "-C", str(git_dir), "show", "HEAD:images.csv"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = csv.DictReader(io.StringIO(table))
    labels = {row["image"]: row["label"].lower() for row in rows if row["label"] != "Not sure"}
    return {
        f"clothing/{_stem(path)}": f"clothing:{labels[Path(path).stem]}"
        for path in _paths(git_dir)
        if path.startswith("images/") and Path(path).stem in labels
    }


def extra_classes(mirrors: Path) -> dict[str, str]:
    """{"source/stem": class} for the extra photos whose source gives a class."""
    classes = _clothing(mirrors) if (mirrors / CLOTHING).is_dir() else {}
    for source, (folder, rule) in RULES.items():
        if not (mirrors / folder).is_dir():
            continue
        for path in _paths(_git_dir(mirrors, folder)):
            label = rule(path)
            if label and path.lower().endswith((".jpg", ".jpeg", ".png")):
                classes[f"{source}/{_stem(path)}"] = f"{source}:{label}"
    return classes


def wordnet_id(photo: Path) -> str | None:
    """The ImageNet WordNet id a photo's file name starts with, if any."""
    match = WNID.match(photo.name)
    return match.group(1) if match else None


def class_of(photo: Path, extra: dict[str, str]) -> str | None:
    """The class of a photo file (extra or shared dataset), None when it has none."""
    source = photo.parent.name
    wnid = wordnet_id(photo)
    if wnid:
        return wnid
    if source in FOLDER_CLASSES:
        return FOLDER_CLASSES[source]
    return extra.get(f"{source}/{photo.stem}")


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    classes = extra_classes(Path(argv[0]))
    Path(argv[1]).write_text(json.dumps(classes, indent=0, sort_keys=True))
    print(f"{len(classes)} extra photo paths with a class -> {argv[1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
