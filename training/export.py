"""Export a trained checkpoint to ONNX following the model contract and list it in the manifest.

python -m training.export CHECKPOINT --name NAME [--fp16]

The exported graph takes `L` (CIE L, 0..100) and returns `ab`: bin decoding
and the annealed mean live inside it, so the backend runs every model alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from colorize_backend.core.atomic_file import write_text_atomically
from colorize_backend.core.contract import AUTO_AB, OUTPUT, REFERENCE_LAB, ModelKind, example_inputs
from colorize_backend.core.manifest import MANIFEST_PATH, Manifest, sha256_of

from training.arch import ARCHITECTURES
from training.bins import AnnealedMean


class ExportedColorizer(nn.Module):
    """The exported graph: the contract's inputs → network → ab (bins decoded by annealed mean)."""

    def __init__(
        self, network: nn.Module, centres: torch.Tensor, objective: str, temperature: float
    ):
        super().__init__()
        self.network = network
        self.decode = AnnealedMean(centres, temperature) if objective == "bins" else nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.decode(self.network(*inputs))


def judged_weights(state: dict, average: bool = True) -> dict:
    """The moving average of the weights when the run kept one (--ema-decay), else the last
    step's: the weights its validation judged. `average=False` takes the last step's (A/B)."""
    if "ema" not in state or not average:
        return state["model"]
    prefix = "module."
    return {k.removeprefix(prefix): v for k, v in state["ema"].items() if k.startswith(prefix)}


def load_graph(
    checkpoint: Path, temperature: float, average: bool = True
) -> tuple[ExportedColorizer, dict]:
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    arch = ARCHITECTURES[state["arch"]]
    centres = torch.from_numpy(state["centres"])
    network = arch.build(len(centres))
    network.load_state_dict(judged_weights(state, average))
    return ExportedColorizer(network, centres, arch.objective, temperature).eval(), state


def export_onnx(
    graph: nn.Module,
    kind: ModelKind,
    path: Path,
    fp16: bool = False,
    optional: tuple[str, ...] = (),
) -> None:
    names = list(kind.inputs) + list(optional)
    inputs = example_inputs(kind, 256, 256, optional=optional)
    examples = tuple(torch.from_numpy(inputs[name]) for name in names)
    dynamic = {name: {0: "N", 2: "H", 3: "W"} for name in names}
    if REFERENCE_LAB in dynamic:
        dynamic[REFERENCE_LAB] = {0: "N", 2: "Hr", 3: "Wr"}  # the exemplar has its own size
    if AUTO_AB in dynamic:
        dynamic[AUTO_AB] = {0: "N", 2: "h", 3: "w"}  # the output grid
    dynamic[OUTPUT] = {0: "N", 2: "h", 3: "w"}
    torch.onnx.export(
        graph,
        examples,
        str(path),
        input_names=names,
        output_names=[OUTPUT],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    if fp16:
        import onnx
        from onnxconverter_common import float16

        model = float16.convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
        onnx.save(model, str(path))


def update_manifest(
    entry: dict, manifest: Path = MANIFEST_PATH, make_default: bool = False
) -> None:
    """Insert or replace a model entry (by name) in the manifest."""
    data: dict[str, Any] = (
        json.loads(manifest.read_text()) if manifest.exists() else {"version": 1, "models": []}
    )
    data["models"] = [m for m in data["models"] if m["name"] != entry["name"]] + [entry]
    if make_default or not data.get("default"):
        data["default"] = entry["name"]
    write_text_atomically(manifest, json.dumps(data, indent=2) + "\n")


def shipped_temperature(manifest: Path = MANIFEST_PATH) -> float:
    """The default model's annealed-mean temperature: candidates are judged at the shipped one."""
    shipped = Manifest.load(manifest)
    return float(shipped.entries[str(shipped.default)].extra["annealed_mean_temperature"])


def manifest_entry(args: argparse.Namespace, state: dict, target: Path) -> dict:
    """The exported model's manifest entry: what it is, how it was trained, its file's sha256."""
    arch = ARCHITECTURES[state["arch"]]
    return {
        "name": args.name,
        "file": target.name,
        "sha256": sha256_of(target),
        "kind": arch.kind.value,
        "input_size": args.input_size,
        "multiple": 32,
        "architecture": arch.name,
        "description": arch.description,
        "training_data": args.training_data,
        "training": {
            "steps": state["progress"]["step"],
            "photos_seen": state["progress"]["photos_seen"],
            "hours": round(state["progress"]["train_seconds"] / 3600, 2),
        },
        **({"annealed_mean_temperature": args.temperature} if arch.objective == "bins" else {}),
        "precision": "fp16" if args.fp16 else "fp32",
        "license": args.license,
        "metrics": {},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--fp16", action="store_true")
    p.add_argument(
        "--temperature",
        type=float,
        help="annealed-mean temperature baked into the graph (lower = more vivid; "
        "default: the shipped default model's)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        default=256,
        help="short side the backend runs the network at (the field of view it learnt)",
    )
    p.add_argument(
        "--last-step",
        action="store_true",
        help="the last step's weights even where the run kept a moving average (for the A/B)",
    )
    p.add_argument("--default", action="store_true", help="make it the default auto model")
    p.add_argument(
        "--manifest",
        type=Path,
        default=MANIFEST_PATH,
        help="manifest to update; the ONNX file goes beside it",
    )
    p.add_argument("--training-data", default="../shared/datasets/train (see its README)")
    p.add_argument(
        "--license",
        default="Research artifact: trained on research-only photos "
        "(LFW, UTKFace, Cats vs Dogs, ...); see ../shared/datasets/README.md",
    )
    args = p.parse_args(argv)
    if args.temperature is None:
        args.temperature = shipped_temperature()
    graph, state = load_graph(args.checkpoint, args.temperature, not args.last_step)
    target = args.manifest.parent / f"{args.name}.onnx"
    arch = ARCHITECTURES[state["arch"]]
    export_onnx(graph, arch.kind, target, args.fp16, arch.optional_inputs)
    update_manifest(
        manifest_entry(args, state, target),
        manifest=args.manifest,
        make_default=args.default,
    )
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
