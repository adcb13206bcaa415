"""Does the colour help recognise what a photo shows? Pretrained ImageNet classifiers' top-1
accuracy on the true colour photo, its grey version and the colorized one.

Colour that misleads (a green dog, a red banana) makes a classifier worse than on the grey
photo; believable colour helps it. Only photos whose file name starts with their ImageNet
class (WordNet id, as the extra datasets name them) are scored. Two judges: EfficientNet-Lite0
(the teacher of the semantic-consistency loss) and EfficientNet-Lite2 (never trained against),
so that colour which fools one network only shows as such.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.classes import wordnet_id

WNIDS_FILE = Path(__file__).with_name("imagenet_wnids.txt")
INPUT_SIDE = 224
JUDGES = ("lite0", "lite2")


def imagenet_class(path: Path, wnids: list[str]) -> int | None:
    """The ImageNet-1k class index a photo's name gives, if it gives one of the 1000."""
    wnid = wordnet_id(path)
    return wnids.index(wnid) if wnid in wnids else None


def load_wnids() -> list[str]:
    lines = WNIDS_FILE.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


class Recogniser:
    """Top-1 class of RGB u8 photos by each judge (pretrained EfficientNet-Lite, PyTorch), on
    `threads` CPU threads: left to torch, the judges take every core beside a training run."""

    def __init__(self, threads: int, judges: tuple[str, ...] = JUDGES):
        import torch

        from training.teacher import ImageNetTeacher

        self.torch = torch
        self.threads = threads
        self.judges = {name: ImageNetTeacher(name) for name in judges}

    def top1(self, rgb: np.ndarray) -> dict[str, int]:
        torch = self.torch
        torch.set_num_threads(self.threads)  # the backend's parallel kernels reset OpenMP's count
        tensor = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        tensor = torch.nn.functional.interpolate(
            tensor, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", antialias=True
        )
        return {name: int(judge(tensor).argmax(dim=1)) for name, judge in self.judges.items()}
