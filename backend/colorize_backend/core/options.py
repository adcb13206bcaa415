"""What a user chose for one colorization, as one value.

The same settings reach the pipeline from the GIMP dialog (over the wire), the command line
and the batch; they travel whole as a ColorizeOptions, so a new setting is one field here,
one on the wire (daemon.protocol) and one in each user interface, and nothing in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from colorize_backend.core.contract import ReferenceMode

STRENGTH_RANGE = (0.0, 1.0)
SATURATION_RANGE = (0.0, 2.0)
DETAIL_SIZE_RANGE = (64, 2048)


@dataclass(frozen=True)
class ColorizeOptions:
    model: str | None = None  # a model name; None: the right default for the reference
    # How far a reference steers the automatic colour: 0 none, 1 fully (painted hint pixels
    # then keep their exact colour). Without a reference it has no effect.
    strength: float = 1.0
    saturation: float = 1.0  # the result's colour amount: 0 grey, 1 as predicted, 2 doubled
    detail_size: int | None = None  # short side the network looks at; None: the model's own
    reference_mode: ReferenceMode = ReferenceMode.DETECT  # how to read a reference layer
    # A frame of a film or an animation: its colour is carried from the previous frame of
    # the same sequence along the motion (core.temporal); frame 0 starts the sequence.
    sequence: str | None = None
    frame: int = 0
