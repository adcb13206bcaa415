"""Export a trained checkpoint to ONNX following the model contract and list it in the manifest.

python -m models.export CHECKPOINT --name NAME [--fp16]

The exported graph takes `L` (CIE L, 0..100) and returns `ab`: bin decoding
and the annealed mean live inside it, so the backend runs every model alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn as nn

from backend.manifest import MANIFEST_PATH, sha256_of
from models.arch import ARCHITECTURES
from models.bins import AnnealedMean


class AutoColorizerGraph(nn.Module):
    """The exported auto model: L → bin logits → annealed-mean ab."""

    def __init__(self, network: nn.Module, centres: torch.Tensor, temperature: float = 0.38):
        super().__init__()
        self.network = network
        self.decode = AnnealedMean(centres, temperature)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.decode(self.network(lightness))


def load_graph(checkpoint: Path, temperature: float = 0.38) -> tuple[AutoColorizerGraph, dict]:
    state = torch.load(checkpoint, weights_only=False, map_location="cpu")
    arch = ARCHITECTURES[state["arch"]]
    centres = torch.from_numpy(state["centres"])
    network = arch.build(len(centres))
    network.load_state_dict(state["model"])
    return AutoColorizerGraph(network, centres, temperature).eval(), state


def export_onnx(graph: nn.Module, path: Path, fp16: bool = False) -> None:
    example = torch.full((1, 1, 256, 256), 50.0)
    torch.onnx.export(
        graph,
        (example,),
        str(path),
        input_names=["L"],
        output_names=["ab"],
        dynamic_axes={"L": {0: "N", 2: "H", 3: "W"}, "ab": {0: "N", 2: "h", 3: "w"}},
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
    data = json.loads(manifest.read_text()) if manifest.exists() else {"version": 1, "models": []}
    data["models"] = [m for m in data["models"] if m["name"] != entry["name"]] + [entry]
    if make_default or not data.get("default"):
        data["default"] = entry["name"]
    manifest.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--fp16", action="store_true")
    p.add_argument(
        "--temperature",
        type=float,
        default=0.38,
        help="annealed-mean temperature baked into the graph (lower = more vivid)",
    )
    p.add_argument("--default", action="store_true", help="make it the default auto model")
    p.add_argument("--training-data", default="../shared/datasets/train (see its README)")
    p.add_argument(
        "--license",
        default="Research artifact: trained on research-only photos "
        "(LFW, UTKFace, Cats vs Dogs, ...); see ../shared/datasets/README.md",
    )
    args = p.parse_args(argv)
    graph, state = load_graph(args.checkpoint, args.temperature)
    target = MANIFEST_PATH.parent / f"{args.name}.onnx"
    export_onnx(graph, target, args.fp16)
    arch = ARCHITECTURES[state["arch"]]
    update_manifest(
        {
            "name": args.name,
            "file": target.name,
            "sha256": sha256_of(target),
            "kind": arch.kind,
            "input_size": 256,
            "multiple": 32,
            "architecture": arch.name,
            "description": arch.description,
            "training_data": args.training_data,
            "epochs": state["epoch"],
            "annealed_mean_temperature": args.temperature,
            "precision": "fp16" if args.fp16 else "fp32",
            "license": args.license,
            "metrics": {},
        },
        make_default=args.default,
    )
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
