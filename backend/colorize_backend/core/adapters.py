"""Bring-your-own colorizers that do not follow the contract, adapted to it.

ONNX exports of the best-known colorizers read the photo as a grey RGB image and return
either a*b* (DDColor's export: `input` [N, 3, H, W] RGB in 0..1 → `output` [N, 2, H, W])
or a colour RGB image (DeOldify's). The adapter is chosen from the graph's single input
(3 channels) and single output (2 channels: a*b*; 3: RGB), and a graph with a fixed input
size gets its input resized to it. The rest of the backend sees a contract model: L in,
a*b* out. docs/models.md describes the kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from colorize_backend.core.color import lab_to_rgb, rgb_to_lab
from colorize_backend.core.contract import LIGHTNESS
from colorize_backend.core.planes import resize_plane


class AdapterKind(StrEnum):
    RGB_TO_AB = "rgb-to-ab"  # grey RGB in, CIE a*b* out (DDColor)
    RGB_TO_RGB = "rgb-to-rgb"  # grey RGB in, colour RGB out (DeOldify)


@dataclass(frozen=True)
class Adapter:
    kind: AdapterKind
    input: str
    size: tuple[int, int] | None  # (height, width) the graph insists on, if any

    def inputs(self, lightness: np.ndarray) -> dict[str, np.ndarray]:
        """Contract lightness [1, 1, h, w] → the graph's grey RGB [1, 3, H, W] in 0..1."""
        plane = lightness[0, 0]
        if self.size is not None:
            plane = resize_plane(plane, self.size[1], self.size[0])
        zeros = np.zeros(plane.shape, np.float32)
        rgb = lab_to_rgb(np.stack([plane, zeros, zeros], axis=-1))
        return {self.input: np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], np.float32)}

    def ab(self, output: np.ndarray) -> np.ndarray:
        """The graph's output [C, h, w] → a*b* [2, h, w]."""
        if self.kind is AdapterKind.RGB_TO_AB:
            return output.astype(np.float32)
        rgb = output.transpose(1, 2, 0).astype(np.float32)
        if float(rgb.max(initial=0.0)) > 1.5:  # some exports answer in 0..255
            rgb = rgb / 255.0
        return np.ascontiguousarray(rgb_to_lab(np.clip(rgb, 0, 1))[..., 1:].transpose(2, 0, 1))

    def run(self, run: Callable[[dict[str, np.ndarray]], np.ndarray], inputs: dict) -> np.ndarray:
        return self.ab(run(self.inputs(inputs[LIGHTNESS])))


def _static(dimension) -> int | None:
    return dimension if isinstance(dimension, int) and dimension > 0 else None


def detect(inputs: list, outputs: list) -> Adapter | None:
    """The adapter for a graph with these onnxruntime NodeArgs, if one fits."""
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    shape_in, shape_out = inputs[0].shape, outputs[0].shape
    if len(shape_in) != 4 or len(shape_out) != 4 or shape_in[1] != 3:
        return None
    kinds = {2: AdapterKind.RGB_TO_AB, 3: AdapterKind.RGB_TO_RGB}
    kind = kinds.get(shape_out[1]) if isinstance(shape_out[1], int) else None
    if kind is None:
        return None
    height, width = _static(shape_in[2]), _static(shape_in[3])
    size = (height, width) if height and width else None
    return Adapter(kind, inputs[0].name, size)
