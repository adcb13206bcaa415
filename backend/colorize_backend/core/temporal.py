"""Film without flicker: colour carried along the motion from one frame to the next.

Colorizing frames one by one flickers: a small change in a frame changes its predicted
colour. Here every frame's prediction is blended with the previous frame's colour, warped
along the optical flow between the two frames (OpenCV's DIS flow, fast on a CPU), on a
working grid of the frame's lightness:

    ab_t = c · warp(ab_t-1) + (1 - c) · predicted_t,    c = carry × confidence

The confidence of each pixel falls where the flow cannot be trusted: where the backward and
forward flows disagree (occlusions, things appearing) or where the warped lightness differs
from the frame's (the surface is not the same). When most of the frame loses confidence at
once, the scene was cut: the colour restarts from the prediction. A key frame (a frame a
person coloured) sets the colour with full confidence, and its shot carries colour more
strongly, so the chosen colours stay until the next cut.

Needs OpenCV, a core dependency: the GIMP plug-in's animations use this as films do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from colorize_backend.core.color import rgb_to_lab, to_unit
from colorize_backend.core.options import ColorizeOptions
from colorize_backend.core.planes import as_rgb, colour_channels, lightness_at, resize_planes

WORKING_SIDE = 256  # short side of the grid flow and colour are carried on
MAX_SEQUENCES = 8  # sequences remembered at once (each holds two small planes)


@dataclass(frozen=True)
class TemporalSettings:
    carry: float = 0.9  # how much of the previous colour a confident pixel keeps
    key_carry: float = 0.98  # the same within a shot that starts from a key frame
    lightness_sigma: float = 6.0  # L units: warped lightness this far off halves confidence
    flow_tolerance: float = 1.0  # working-grid pixels: forward-backward disagreement allowed
    cut_share: float = 0.6  # a frame whose share of unconfident pixels exceeds this is a cut


@dataclass
class Step:
    ab: np.ndarray  # [2, h, w] the colour to compose this frame with
    cut: bool  # the colour restarted here (first frame, scene cut, or key frame)


def dis_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow [h, w, 2] such that target(x) ≈ source(x + flow(x)) (both grey u8)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
    return dis.calc(target, source, None)


def warp(planes: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """[C, h, w] planes sampled at x + flow(x) (bilinear, edges replicated)."""
    import cv2

    height, width = flow.shape[:2]
    grid = np.indices((height, width), dtype=np.float32)
    map_x, map_y = grid[1] + flow[..., 0], grid[0] + flow[..., 1]
    return np.stack(
        [cv2.remap(p, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
         for p in planes.astype(np.float32)]
    )  # fmt: skip


def grey_u8(lightness: np.ndarray) -> np.ndarray:
    return np.clip(lightness * 2.55, 0, 255).astype(np.uint8)


def motion_confidence(
    previous_l: np.ndarray, current_l: np.ndarray, settings: TemporalSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(flow from the current frame into the previous one, confidence [h, w] in 0..1)."""
    previous, current = grey_u8(previous_l), grey_u8(current_l)
    back = dis_flow(previous, current)  # current(x) ≈ previous(x + back(x))
    forth = dis_flow(current, previous)  # previous(y) ≈ current(y + forth(y))
    round_trip = back + warp(forth.transpose(2, 0, 1), back).transpose(1, 2, 0)
    disagreement = np.linalg.norm(round_trip, axis=-1)
    warped_l = warp(previous_l[None], back)[0]
    difference = np.abs(warped_l - current_l)
    confidence = np.exp(-((difference / settings.lightness_sigma) ** 2))
    confidence *= np.exp(-((disagreement / settings.flow_tolerance) ** 2))
    return back, confidence.astype(np.float32)


class TemporalColour:
    """The colour of one sequence of frames, carried from frame to frame."""

    def __init__(self, settings: TemporalSettings = TemporalSettings()):
        self.settings = settings
        self.lightness: np.ndarray | None = None
        self.ab: np.ndarray | None = None
        self.keyed = False  # this shot started from a key frame

    def step(
        self, lightness: np.ndarray, predicted: np.ndarray, key_ab: np.ndarray | None = None
    ) -> Step:
        """The next frame: its lightness [h, w] and predicted ab [2, h, w] on the working
        grid, and the colour a person gave it if it is a key frame."""
        if key_ab is not None:
            return self._restart(lightness, key_ab, keyed=True)
        if self.lightness is None or self.ab is None or self.lightness.shape != lightness.shape:
            return self._restart(lightness, predicted, keyed=False)  # a new size: a new shot
        flow, confidence = motion_confidence(self.lightness, lightness, self.settings)
        if float(np.mean(confidence < 0.5)) > self.settings.cut_share:
            return self._restart(lightness, predicted, keyed=False)
        carry = self.settings.key_carry if self.keyed else self.settings.carry
        weight = carry * confidence
        ab = weight * warp(self.ab, flow) + (1 - weight) * predicted
        self.lightness, self.ab = lightness, ab.astype(np.float32)
        return Step(self.ab, cut=False)

    def _restart(self, lightness: np.ndarray, ab: np.ndarray, keyed: bool) -> Step:
        self.lightness, self.ab, self.keyed = lightness, ab.astype(np.float32), keyed
        return Step(self.ab, cut=True)


@dataclass
class Sequence:
    colour: TemporalColour = field(default_factory=TemporalColour)
    next_frame: int = 0
    key: np.ndarray | None = None  # the coloured key frame steering the current shot


class Sequences:
    """The colour of the sequences being colorized (a film's frames, an animation's layers),
    by name; frames of one sequence come in order, frame 0 (or a gap) starts it afresh."""

    def __init__(self) -> None:
        self._sequences: OrderedDict[str, Sequence] = OrderedDict()
        self._keys: dict[tuple[str, int], tuple[np.ndarray, bool]] = {}
        self._lock = threading.Lock()

    def set_key(self, name: str, frame: int, coloured: np.ndarray, steers: bool = True) -> None:
        """A frame a person coloured (RGB pixels, any sample type): it keeps that colour, its
        shot carries it on, and (steers) it is the exemplar of the shot's later frames."""
        self._keys[(name, frame)] = (coloured, steers)

    def active_key(self, name: str) -> np.ndarray | None:
        """The key frame steering the shot the sequence is in (None after a scene cut)."""
        sequence = self._sequences.get(name)
        return sequence.key if sequence is not None else None

    def carry(self, options: ColorizeOptions, pixels: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """The predicted ab [2, h, w] of a frame, carried along the motion from the sequence's
        previous frame when the request is a frame of a sequence (else as it is)."""
        if options.sequence is None:
            return ab
        with self._lock:
            sequence = self._sequences.pop(options.sequence, None)
            if sequence is None or options.frame == 0 or options.frame != sequence.next_frame:
                sequence = Sequence()
            self._sequences[options.sequence] = sequence
            while len(self._sequences) > MAX_SEQUENCES:
                self._sequences.popitem(last=False)
            key, steers = self._keys.pop((options.sequence, options.frame), (None, False))
        lightness = lightness_at(pixels, WORKING_SIDE)
        height, width = lightness.shape
        key_ab = None
        if key is not None:
            lab = rgb_to_lab(to_unit(as_rgb(colour_channels(key))))
            key_ab = resize_planes(lab[..., 1:].transpose(2, 0, 1), width, height)
        step = sequence.colour.step(lightness, resize_planes(ab, width, height), key_ab)
        if key is not None:
            sequence.key = key if steers else None
        elif step.cut:
            sequence.key = None
        sequence.next_frame = options.frame + 1
        return step.ab


def flicker(lightness: list[np.ndarray], ab: list[np.ndarray], stable: float = 2.0) -> float:
    """Mean |Δa*b*| between consecutive frames on the pixels whose lightness is stable after
    motion compensation (|ΔL| < `stable` once warped, and a consistent flow): how much the
    colour of the same surface changes from frame to frame."""
    settings = TemporalSettings()
    changes = []
    for t in range(1, len(lightness)):
        flow, _ = motion_confidence(lightness[t - 1], lightness[t], settings)
        warped_l = warp(lightness[t - 1][None], flow)[0]
        mask = np.abs(warped_l - lightness[t]) < stable
        if not mask.any():
            continue
        warped_ab = warp(ab[t - 1], flow)
        delta = np.linalg.norm(ab[t] - warped_ab, axis=0)
        changes.append(float(delta[mask].mean()))
    return float(np.mean(changes)) if changes else 0.0
