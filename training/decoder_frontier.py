"""Do other ways of decoding the bins buy PSNR at equal colour? (models/README.md, issue 16)

python -m training.decoder_frontier --model models/fusion-effnet.onnx --data DIR [--limit 300]

Every checkpoint of the long run has landed on the same PSNR–colourfulness line as the
shipped default, moved along it by the annealed-mean temperature. A decoder that lifts the
line would lift every model at no training cost. This reads an exported model's bin logits
(the input of its annealed mean), decodes them with each candidate and composes the result
with the backend's own `compose`, so the annealed mean at the graph's temperature reproduces
`training.evaluate` exactly; each line prints mean PSNR and colourfulness.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import scipy.special
from colorize_backend.core.contract import LIGHTNESS
from colorize_backend.core.planes import compose, network_lightness
from colorize_backend.tools.files import list_images
from onnx import helper, numpy_helper
from scipy.ndimage import gaussian_filter

from training.metrics import colorfulness, psnr
from training.photos import grey_version, ground_truth, spread_subset

Decoder = Callable[[np.ndarray], np.ndarray]  # bin logits [Q, h, w] → ab [2, h, w]


class BinGraph:
    """An exported bin model whose annealed mean (Div by T → Softmax → Einsum with the bin
    centres) is read back: the logits become a second output."""

    def __init__(self, path: Path, threads: int = 1):
        model = onnx.load(str(path))
        nodes = {out: node for node in model.graph.node for out in node.output}
        einsum = nodes[model.graph.output[0].name]
        softmax = nodes[einsum.input[0]]
        divide = nodes[softmax.input[0]]
        if (einsum.op_type, softmax.op_type, divide.op_type) != ("Einsum", "Softmax", "Div"):
            raise ValueError(f"{path} does not end in an annealed mean over bins")
        initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.centres = initializers[einsum.input[1]].astype(np.float32)
        self.temperature = float(_constant(nodes, initializers, divide.input[1]))
        self.logits_name = divide.input[0]
        model.graph.output.append(
            helper.make_tensor_value_info(self.logits_name, onnx.TensorProto.FLOAT, None)
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), options)

    def run(self, lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the graph's own ab [2, h, w], its bin logits [Q, h, w]) for [1, 1, H, W] lightness."""
        ab, logits = self.session.run(None, {LIGHTNESS: lightness})
        return ab[0], logits[0]


def _constant(nodes: dict, initializers: dict, name: str) -> np.ndarray:
    if name in initializers:
        return initializers[name]
    return numpy_helper.to_array(nodes[name].attribute[0].t)


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Each pixel's distribution over the bins [Q, h, w] at a temperature."""
    return scipy.special.softmax(logits / temperature, axis=0)


def expected_ab(probabilities: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.einsum("qhw,qc->chw", probabilities, centres)


def annealed_mean(centres: np.ndarray, temperature: float) -> Decoder:
    """The exported graph's decoder (Zhang et al. 2016)."""
    return lambda logits: expected_ab(softmax(logits, temperature), centres)


def blurred_probabilities(centres: np.ndarray, sigma: float, temperature: float) -> Decoder:
    """Neighbouring pixels vote before annealing, so a mode is chosen for a region, not a
    pixel: fewer blotches of a wrong hue."""

    def decode(logits: np.ndarray) -> np.ndarray:
        smooth = gaussian_filter(softmax(logits, 1.0), (0, sigma, sigma))
        return expected_ab(softmax(np.log(smooth + 1e-8), temperature), centres)

    return decode


def image_prior(centres: np.ndarray, weight: float, temperature: float) -> Decoder:
    """Each pixel's distribution times the whole image's to a power: ambiguous pixels lean
    towards the colours the rest of the photo is sure of."""

    def decode(logits: np.ndarray) -> np.ndarray:
        probabilities = softmax(logits, 1.0)
        prior = probabilities.mean(axis=(1, 2), keepdims=True)
        tilted = np.log(probabilities + 1e-8) + weight * np.log(prior + 1e-8)
        return expected_ab(softmax(tilted, temperature), centres)

    return decode


def mean_hue_expected_chroma(centres: np.ndarray, strength: float) -> Decoder:
    """The plain mean's hue with its chroma raised towards the expected chroma, E|ab|: the
    mean's greyness comes from hue disagreement, so give the chroma back, not a mode."""
    norms = np.linalg.norm(centres, axis=1, keepdims=True)

    def decode(logits: np.ndarray) -> np.ndarray:
        probabilities = softmax(logits, 1.0)
        mean = expected_ab(probabilities, centres)
        chroma = expected_ab(probabilities, norms)
        gain = ((chroma + 1.0) / (np.linalg.norm(mean, axis=0, keepdims=True) + 1.0)) ** strength
        return mean * gain

    return decode


def candidates(centres: np.ndarray) -> Iterator[tuple[str, Decoder]]:
    for t in (0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        yield f"annealed mean T={t}", annealed_mean(centres, t)
    for sigma, t in ((0.7, 0.3), (1.0, 0.3), (1.5, 0.3), (1.5, 0.4), (2.0, 0.2)):
        yield f"blurred probabilities sigma={sigma} T={t}", blurred_probabilities(centres, sigma, t)
    for weight, t in ((0.5, 0.4), (1.0, 0.6)):
        yield f"image prior weight={weight} T={t}", image_prior(centres, weight, t)
    for strength in (0.5, 1.0):
        yield f"mean hue, expected chroma^{strength}", mean_hue_expected_chroma(centres, strength)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="an exported bin model (.onnx)")
    p.add_argument("--data", type=Path, required=True, help="held-out photo root")
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    graph = BinGraph(args.model, args.threads)
    photos = []
    for path in spread_subset(list_images(args.data), args.limit):
        truth = ground_truth(path)
        grey = grey_version(truth)
        photos.append((truth, grey, graph.run(network_lightness(grey, 256, 32))[1]))
    print(f"{len(photos)} photos; the graph decodes at T={graph.temperature:g}")
    for name, decode in candidates(graph.centres):
        results = [compose(grey, decode(logits)) for _, grey, logits in photos]
        quality = np.mean([psnr(r, truth) for r, (truth, _, _) in zip(results, photos)])
        colour = np.mean([colorfulness(r) for r in results])
        print(f"{name:45s} PSNR {quality:6.3f} dB  colourfulness {colour:5.2f}", flush=True)


if __name__ == "__main__":
    main()
