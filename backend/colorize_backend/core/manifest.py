"""The model catalogue: the shipped manifest's entries, checksums, and user models by path."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorize_backend.core.contract import ModelKind, kind_of_inputs
from colorize_backend.core.errors import ColorizeError, ErrorCode, without_paths

if TYPE_CHECKING:
    from colorize_backend.core.adapters import Adapter


def _models_dir() -> Path:
    """The shipped models: the installed package data, or a source checkout's models/ (when
    only backend/ is on the path, as on a machine that just trains)."""
    try:
        return Path(str(importlib.resources.files("colorize_backend.models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[3] / "models"


MODELS_DIR = _models_dir()
MANIFEST_PATH = MODELS_DIR / "manifest.json"
MODEL_NAME = re.compile(r"[\w][\w.\- ]{0,127}")  # a user's model: its file name without .onnx


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    kind: ModelKind
    input_size: int
    multiple: int = 32
    sha256: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    adapter: Adapter | None = None  # a graph outside the contract, adapted to it


class ManifestError(ColorizeError):
    """The manifest or a model file is missing, malformed or corrupted, or no such model."""

    def __init__(self, message: str):
        super().__init__(ErrorCode.BAD_REQUEST, message)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """Models by name, with the default one; entries can be checked against their sha256."""

    def __init__(
        self, entries: dict[str, ModelEntry], default: str | None, folder: Path = MODELS_DIR
    ):
        self.entries = entries
        self.default = default
        self.folder = folder
        self._verified: dict[Path, tuple[int, float]] = {}

    @classmethod
    def load(cls, path: Path = MANIFEST_PATH) -> Manifest:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"cannot read model manifest {path}: {exc}") from None
        entries = {}
        for raw in data.get("models", []):
            entry = entry_from_dict(raw, Path(path).parent)
            entries[entry.name] = entry
        default = data.get("default")
        if default is not None and default not in entries:
            raise ManifestError(f"manifest default {default!r} is not a listed model")
        return cls(entries, default, Path(path).parent)

    def resolve(
        self,
        name_or_path: str | None,
        kind: ModelKind = ModelKind.AUTO,
        model_dirs: Sequence[Path] = (),
        any_path: bool = True,
    ) -> ModelEntry:
        """A model by manifest name, by the name of a user's ONNX file in one of model_dirs,
        by path to an ONNX file, or the default of a kind.

        Without any_path (a daemon's clients), a path counts only inside model_dirs; a missing
        file and a forbidden one get the same answer, so the daemon reveals nothing about
        other files.
        """
        if name_or_path is None:
            if kind is ModelKind.AUTO and self.default:
                return self.entries[self.default]
            entry = self.find_kind(kind)
            if entry is None:
                raise ManifestError(f"no {kind.value!r} model is installed")
            return entry
        if name_or_path in self.entries:
            return self.entries[name_or_path]
        if MODEL_NAME.fullmatch(name_or_path):
            for folder in model_dirs:
                if (folder / f"{name_or_path}.onnx").is_file():
                    return user_model((folder / f"{name_or_path}.onnx").resolve(), name_or_path)
        candidate = Path(name_or_path).expanduser()
        if candidate.suffix == ".onnx" and _allowed(candidate, None if any_path else model_dirs):
            return user_model(candidate.resolve())
        shown = name_or_path if len(name_or_path) <= 60 else name_or_path[:57] + "..."
        where = "" if any_path else " (your own: .onnx files in the model folders, by name)"
        raise ManifestError(f"unknown model {shown!r}; installed: {sorted(self.entries)}{where}")

    def check(self, entry: ModelEntry) -> None:
        """Refuse a shipped model whose file differs from its sha256 (checked once per file
        version: size and modification time)."""
        if not entry.sha256:
            return
        try:
            stat = entry.path.stat()
        except OSError:
            raise ManifestError(f"model {entry.name}: its file is missing") from None
        stamp = (stat.st_size, stat.st_mtime)
        if self._verified.get(entry.path) == stamp:
            return
        if sha256_of(entry.path) != entry.sha256:
            raise ManifestError(
                f"model {entry.name}: its file does not match the manifest's sha256 (damaged or "
                "replaced); re-run install.py to restore it"
            )
        self._verified[entry.path] = stamp

    def catalogue(self, model_dirs: Sequence[Path] = ()) -> tuple[list[ModelEntry], list[str]]:
        """Every model that can be named: the manifest's, then the user's own in model_dirs;
        and why any of the user's files cannot be used."""
        entries, problems = list(self.entries.values()), []
        for folder in model_dirs:
            own, unusable = user_models(folder)
            entries += [e for e in own if e.name not in self.entries]
            problems += [f"{problem} (in {folder})" for problem in unusable]
        return entries, problems

    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """What a model listing tells about one model (the CLI's `models`, the wire's)."""
        present = entry.path.exists()
        row = {
            "name": entry.name,
            "default": entry.name == self.default,
            "kind": entry.kind.value,
            "input_size": entry.input_size,
            "size_mb": round(entry.path.stat().st_size / 1e6, 1) if present else None,
            "description": entry.description,
        }
        if entry.name not in self.entries:  # a user's own: where it lies
            row["path"] = str(entry.path)
        return row

    def find_kind(self, kind: ModelKind) -> ModelEntry | None:
        """The first listed model of a kind, if any."""
        return next((e for e in self.entries.values() if e.kind is kind), None)

    def verify(self) -> list[str]:
        """Problems with the shipped files: missing, or sha256 differing from the manifest."""
        problems = []
        for entry in self.entries.values():
            if not entry.path.is_file():
                problems.append(f"{entry.name}: file {entry.path} is missing")
            elif entry.sha256 and sha256_of(entry.path) != entry.sha256:
                problems.append(f"{entry.name}: sha256 of {entry.path} differs from the manifest")
        return problems


def _allowed(path: Path, allowed_dirs: Sequence[Path] | None) -> bool:
    """An existing file, inside one of allowed_dirs when they are given."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    if not resolved.is_file():
        return False
    return allowed_dirs is None or any(
        resolved.is_relative_to(folder.resolve()) for folder in allowed_dirs
    )


def entry_from_dict(raw: dict[str, Any], base: Path) -> ModelEntry:
    try:
        try:
            kind = ModelKind(raw["kind"])
        except ValueError:
            raise ManifestError(
                f"model {raw.get('name')!r} has unknown kind {raw['kind']!r}"
            ) from None
        known = {"name", "file", "kind", "input_size", "multiple", "sha256", "description"}
        return ModelEntry(
            name=raw["name"],
            path=base / raw["file"],
            kind=kind,
            input_size=int(raw["input_size"]),
            multiple=int(raw.get("multiple", 32)),
            sha256=raw.get("sha256"),
            description=raw.get("description", ""),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except KeyError as exc:
        raise ManifestError(f"manifest entry {raw!r} lacks {exc}") from None


def user_model_files(folder: Path) -> list[Path]:
    """The .onnx files a user put in a folder (not opened)."""
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []


def user_models(folder: Path) -> tuple[list[ModelEntry], list[str]]:
    """The ONNX colorizers a user put in a folder, and why any of them cannot be used."""
    entries, problems = [], []
    for path in user_model_files(folder):
        try:
            entries.append(user_model(path.resolve()))
        except ManifestError as exc:
            problems.append(str(exc))
    return entries, problems


def user_model(path: Path, name: str | None = None) -> ModelEntry:
    """A user's own ONNX colorizer, named `name` (default: its file's stem): its kind read
    from its input names (the contract), or an adapter for a graph that takes a grey RGB
    image (see adapters.py)."""
    import onnxruntime as ort

    from colorize_backend.core.adapters import detect

    name = name or path.stem
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # not ONNX, or an operator this onnxruntime lacks
        reason = without_paths(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise ManifestError(f"model {name} cannot be loaded as an ONNX model: {reason}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    kind = kind_of_inputs(i.name for i in inputs)
    if kind is not None:
        described = f"your own {kind.value} model"
        return ModelEntry(name, path, kind, 256, 32, description=described)
    adapter = detect(inputs, outputs)
    if adapter is None:
        names = sorted(i.name for i in inputs)
        raise ManifestError(
            f"model {name}: inputs {names} follow neither the model contract nor a known "
            "colorizer export (a grey RGB image in, a*b* or RGB out); see docs/models.md"
        )
    size = adapter.size[0] if adapter.size else 256
    described = f"your own model, through the {adapter.kind.value} adapter"
    return ModelEntry(name, path, ModelKind.AUTO, size, 32, description=described, adapter=adapter)
