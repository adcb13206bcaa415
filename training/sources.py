"""Where training photos come from, which group of subjects each source shows, and how often
training draws from each group.

A source is a folder directly under a data root (`train/lfw`, `extra/train/duts`, ...). Faces,
pets and flowers outnumber everything else in the original photos while objects dominate the
extra set, so an epoch draws photos by group share rather than by count: people stay well
represented (old photographs are mostly of people) while animals, objects and scenes are all
covered. Within a group every photo is equally likely.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

LOG = logging.getLogger(__name__)

GROUPS = ("people", "animals", "objects", "scenes")

SOURCE_GROUP = {
    # ../shared/datasets/{train,val}
    "lfw": "people",
    "utkface": "people",
    "people": "people",
    "worksites": "people",
    "pets": "animals",
    "flowers": "objects",
    "scenes": "scenes",
    "streets": "scenes",
    "bsds": "scenes",
    "sunhays": "scenes",
    "wikipedia": "scenes",
    # ../shared/datasets/extra/{train,val}
    "imagewoof": "animals",
    "animals": "animals",
    "duts": "objects",
    "imagenette": "objects",
    "caltech101": "objects",
    "pacs": "objects",
    "clothing": "objects",
    "ecssd": "scenes",
    "houses": "scenes",
}

# Share of each epoch's draws. The photos' own proportions (train + extra/train) are about
# people 17 %, animals 15 %, objects 53 %, scenes 15 %.
GROUP_SHARE = {"people": 0.30, "animals": 0.20, "objects": 0.30, "scenes": 0.20}


def group_of(source: str) -> str:
    """The subject group of a source folder; unknown folders count as objects."""
    return SOURCE_GROUP.get(source, "objects")


def by_group(rows: list[dict], summarise: Callable[[list[dict]], dict]) -> dict[str, dict]:
    """summarise() of the rows of each subject group present (rows carry a "group")."""
    return {
        group: summarise([r for r in rows if r["group"] == group])
        for group in GROUPS
        if any(r["group"] == group for r in rows)
    }


def sampling_probabilities(sources: np.ndarray, names: list[str]) -> np.ndarray:
    """Per-photo draw probability from each photo's source index into `names`.

    Groups with no photos give their share to the others in proportion.
    """
    groups = np.array([GROUPS.index(group_of(n)) for n in names])[sources]
    counts = np.bincount(groups, minlength=len(GROUPS))
    share = np.array([GROUP_SHARE[g] if counts[i] else 0.0 for i, g in enumerate(GROUPS)])
    share /= share.sum()
    probabilities = share[groups] / counts[groups]
    unknown = sorted({n for n in names if n not in SOURCE_GROUP})
    if unknown:
        LOG.warning("sources not in SOURCE_GROUP, counted as objects: %s", ", ".join(unknown))
    return probabilities / probabilities.sum()


def group_counts(sources: np.ndarray, names: list[str]) -> Mapping[str, int]:
    """How many photos each group has."""
    groups = [group_of(names[s]) for s in sources]
    return {g: groups.count(g) for g in GROUPS}
